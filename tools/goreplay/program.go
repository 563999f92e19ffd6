// program.go owns the Go side of the replay program file: mapping the file the parent
// passed (read-only, populated) and checking its header exactly as ReplayProgram.parseHeader
// in Sources/HeapLabReplay/ReplayProgram.swift does, in the same order and with the same
// messages, then checking every op so that a corrupt program is an error, never a crash.
//
// Invariants after openProgram succeeds: magic and version match; 1 <= workers <= 256;
// every stream lies inside the mapping, 16-byte aligned; the peak point names a real op;
// slotCount <= 2^32 - 1. After checkOps succeeds (programs lowered for the collector only):
// every op is a collector kind; every slot an op names is < slotCount; a gcRealloc is always
// followed by its reallocOldSize; sizes are 1...2^40 and pointer slots fit the size; a wait
// names another worker and a count that worker's stream has.
package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"syscall"
	"unsafe"
)

const (
	programMagic      uint64 = 0x5941_4c50_4552_4c48 // "HLREPLAY" read little-endian
	programVersion    uint64 = 1
	fixedFields              = 18
	maxProfileSamples        = 512
	opBytes                  = 16
	maxSlot                  = math.MaxUint32 - 1
	maxSize           uint64 = 1 << 40
	gcSizeMask        uint64 = 1<<41 - 1
)

// Op kinds (ReplayOp.swift).
const (
	kindAllocScan      = 0
	kindAllocNoscan    = 1
	kindFree           = 2
	kindRealloc        = 3
	kindStore          = 4
	kindStoreNil       = 5
	kindWait           = 6
	kindReallocOldSize = 7
	kindGCAlloc        = 8
	kindHold           = 9
	kindDrop           = 10
	kindGCRealloc      = 11
)

// op is one 16-byte ReplayOp, in the file's (native) layout.
type op struct {
	kind   uint8
	extra  uint8
	worker uint16
	slot   uint32
	arg    uint64
}

func (o *op) gcSize() uint64 { return o.arg & gcSizeMask }
func (o *op) gcPointerSlots() uint64 {
	return (o.arg>>41)<<16 | uint64(o.worker)
}
func (o *op) wordIndex() uint64   { return o.arg>>32 | uint64(o.extra)<<32 }
func (o *op) destination() uint32 { return uint32(o.arg) }

type streamInfo struct {
	offset, opCount, nullBytes int
}

type programInfo struct {
	workers, slotCount, records, traceThreads   int
	peakLiveBytes, peakWorker, peakOpEnd        int
	finalLiveBytes, totalAllocatedBytes         int
	allocations, frees, reallocs, stores, waits int
	streams                                     []streamInfo
	profileSamples                              int
	collected                                   bool
}

type programError struct{ message string }

func (e *programError) Error() string { return e.message }

func fail(format string, args ...interface{}) error {
	return &programError{fmt.Sprintf(format, args...)}
}

func roundUpToPage(n, page int) int { return (n + page - 1) &^ (page - 1) }

func headerBytes(workers, profileSamples, page int) int {
	return roundUpToPage((fixedFields+3*workers+2*profileSamples)*8, page)
}

// parseHeader checks the header of a program file of len(b) bytes (at least one page).
func parseHeader(b []byte, page int) (programInfo, error) {
	var info programInfo
	word := func(i int) uint64 { return binary.LittleEndian.Uint64(b[i*8:]) }
	var err error
	integer := func(i int) int {
		v := word(i)
		if v > math.MaxInt64 {
			if err == nil {
				err = fail("replay program: header field %d out of range", i)
			}
			return 0
		}
		return int(v)
	}
	if len(b) < page || page < fixedFields*8 {
		return info, fail("replay program: file of %d bytes is too short", len(b))
	}
	if word(0) != programMagic {
		return info, fail("replay program: bad magic number")
	}
	if word(1) != programVersion {
		return info, fail("replay program: unsupported version %d", word(1))
	}
	workers := integer(2)
	if err != nil {
		return info, err
	}
	profile := integer(16)
	if err != nil {
		return info, err
	}
	if workers < 1 || workers > 256 || profile > maxProfileSamples {
		return info, fail("replay program: bad worker or profile count")
	}
	header := headerBytes(workers, profile, page)
	if header > len(b) {
		return info, fail("replay program: header larger than file")
	}
	for w := 0; w < workers; w++ {
		i := fixedFields + 3*w
		s := streamInfo{offset: integer(i), opCount: integer(i + 1), nullBytes: integer(i + 2)}
		if err != nil {
			return info, err
		}
		overflow := s.opCount > math.MaxInt64/opBytes
		if overflow || s.offset < header || s.offset%16 != 0 || s.offset > len(b) || s.opCount*opBytes > len(b)-s.offset {
			return info, fail("replay program: stream %d lies outside the file", w)
		}
		info.streams = append(info.streams, s)
	}
	for p := 0; p < profile; p++ {
		i := fixedFields + 3*workers + 2*p
		integer(i)
		integer(i + 1)
		if err != nil {
			return info, err
		}
	}
	peakWorker := int(int64(word(7)))
	peakOpEnd := integer(8)
	if err != nil {
		return info, err
	}
	if peakWorker < -1 || peakWorker >= workers ||
		(peakWorker != -1 && (peakOpEnd < 1 || peakOpEnd > info.streams[peakWorker].opCount)) {
		return info, fail("replay program: peak point outside the program")
	}
	slotCount := integer(3)
	if err != nil {
		return info, err
	}
	if slotCount > maxSlot+1 {
		return info, fail("replay program: too many slots")
	}
	info.workers = workers
	info.slotCount = slotCount
	info.peakWorker = peakWorker
	info.peakOpEnd = peakOpEnd
	info.profileSamples = profile
	fields := []*int{&info.records, &info.traceThreads, &info.peakLiveBytes}
	for k, i := range []int{4, 5, 6} {
		*fields[k] = integer(i)
	}
	rest := []*int{&info.finalLiveBytes, &info.totalAllocatedBytes, &info.allocations, &info.frees,
		&info.reallocs, &info.stores, &info.waits}
	for k, i := range []int{9, 10, 11, 12, 13, 14, 15} {
		*rest[k] = integer(i)
	}
	if err != nil {
		return info, err
	}
	info.collected = word(17) == 1
	return info, nil
}

// mappedProgram is a program file mapped read-only.
type mappedProgram struct {
	data []byte
	info programInfo
}

// openProgram maps the program in fd and checks its header.
func openProgram(fd int) (*mappedProgram, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, fail("replay program: fstat: %v", err)
	}
	page := os.Getpagesize()
	if st.Size < int64(page) {
		return nil, fail("replay program: file of %d bytes is too short", st.Size)
	}
	data, err := syscall.Mmap(fd, 0, int(st.Size), syscall.PROT_READ, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		return nil, fail("replay program: mmap: %v", err)
	}
	info, err := parseHeader(data, page)
	if err != nil {
		_ = syscall.Munmap(data)
		return nil, err
	}
	return &mappedProgram{data: data, info: info}, nil
}

// ops returns worker w's ops, a view of the mapping.
func (p *mappedProgram) ops(w int) []op {
	s := p.info.streams[w]
	if s.opCount == 0 {
		return nil
	}
	return unsafe.Slice((*op)(unsafe.Pointer(&p.data[s.offset])), s.opCount)
}

// checkOps checks every op of a collector program (see the file comment).
func checkOps(p *mappedProgram) error {
	info := &p.info
	if !info.collected {
		return fail("replay program: not lowered for the collector (the go runtime replays collector programs only)")
	}
	slots := uint64(info.slotCount)
	for w := 0; w < info.workers; w++ {
		ops := p.ops(w)
		for i := 0; i < len(ops); i++ {
			o := &ops[i]
			bad := func(what string) error {
				return fail("replay program: worker %d op %d: %s", w, i, what)
			}
			switch o.kind {
			case kindGCAlloc:
				size, ptrs := o.gcSize(), o.gcPointerSlots()
				if uint64(o.slot) >= slots {
					return bad("slot outside the object table")
				}
				if size < 1 || size > maxSize || ptrs > size/8 {
					return bad("bad size or pointer count")
				}
			case kindHold, kindDrop, kindStoreNil:
				if uint64(o.slot) >= slots {
					return bad("slot outside the object table")
				}
			case kindStore:
				if uint64(o.slot) >= slots || uint64(o.destination()) >= slots {
					return bad("slot outside the object table")
				}
			case kindGCRealloc:
				if uint64(o.slot) >= slots {
					return bad("slot outside the object table")
				}
				if o.arg < 1 || o.arg > maxSize {
					return bad("bad size")
				}
				if i+1 >= len(ops) || ops[i+1].kind != kindReallocOldSize || ops[i+1].arg < 1 || ops[i+1].arg > maxSize {
					return bad("a resize without its old size")
				}
				i++
			case kindWait:
				target := int(o.worker)
				if target >= info.workers || target == w || o.arg > uint64(info.streams[target].opCount) {
					return bad("a wait for a worker or count the program does not have")
				}
			case kindAllocScan, kindAllocNoscan, kindFree, kindRealloc:
				return bad(fmt.Sprintf("op kind %d is not a collector op", o.kind))
			default:
				return bad(fmt.Sprintf("unknown op kind %d", o.kind))
			}
		}
	}
	return nil
}
