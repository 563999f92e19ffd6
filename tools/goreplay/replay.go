// replay.go owns the timed part: one goroutine per worker stream replaying its ops on Go's
// heap, op for op as replayGCOps in Sources/HeapLabReplay/GCBackend.swift does:
//
//	gcAlloc    p = a new object of the op's type (zeroed by Go), its first word written (nil
//	           for a pointer slot, else the slot number), held (a root), named, and one byte
//	           written in every further 4 KiB page (touchPages)
//	hold/drop  the slot's hold count; while it is above zero the object is in roots[slot]
//	store      *(src + 8*word) = dst, a typed unsafe.Pointer store: Go's write barrier
//	storeNil   the same with nil
//	gcRealloc  a pointer-free copy (the op's type), min(old, new) bytes copied, a byte
//	           written at the old end and the new pages touched when it grew; the slot now
//	           names and roots the copy with one more hold (the lowering's stores re-point
//	           the pointers to the old object, then drop the extra hold)
//	wait       spin, with runtime.Gosched, until the other worker has published the count
//
// Invariants:
//   - names (slot -> object address) is off Go's heap (mmap) and holds uintptrs: Go's
//     collector never sees it, so an object lives only while a hold (roots) or a pointer
//     from a live object keeps it, as in the trace; it is read back as a pointer only for
//     objects the trace still names, which are therefore reachable;
//   - roots is on Go's heap (it must be scanned); roots[slot] != nil iff holds[slot] > 0;
//   - ops that touch a slot on different workers are ordered by waits, whose publish
//     (atomic store) and load give the happens-before the plain accesses need;
//   - a worker publishes its op count only after the ops some other worker waits for
//     (marked before timing in the side array) and at the end of its stream: a waiter waits
//     for "at least n", so the other counts are never needed;
//   - nothing in the loop allocates on Go's heap except the replayed objects.
package main

import (
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"
)

const (
	publishBit uint32 = 1 << 31
	typeMask   uint32 = publishBit - 1
)

type paddedCounter struct {
	n atomic.Int64
	_ [56]byte
}

// replayState is what the workers share.
type replayState struct {
	names    []uintptr        // off-heap: slot -> object address
	holds    []uint32         // off-heap: slot -> hold count
	roots    []unsafe.Pointer // Go heap: slot -> object while held
	types    []unsafe.Pointer // type index -> *rtype
	progress []paddedCounter
	// check (-check, with GODEBUG=clobberfree=1): every op that names an object first
	// looks for the pattern Go's sweeper writes over freed memory.
	check   bool
	sizes   []uint64 // -check: slot -> size of the object (off-heap)
	aborted atomic.Bool
}

// clobbered is what GODEBUG=clobberfree=1 writes over every word of a freed object.
const clobbered uint64 = 0xdeadbeefdeadbeef

// freed reports, under -check, whether the object in slot looks swept. The first word of a
// replayed object is never the pattern: nil or a pointer, or the slot number. Objects under
// 8 bytes are not checked (their first word is not theirs alone).
func (s *replayState) freed(slot uint32) bool {
	return s.sizes[slot] >= 8 && *(*uint64)(s.name(slot)) == clobbered
}

// stopIfFreed is freed for op i of w, and on a freed object also records the op and stops
// every worker.
func (s *replayState) stopIfFreed(w *worker, i int, slot uint32) bool {
	if !s.freed(slot) {
		return false
	}
	w.failed = i
	s.aborted.Store(true)
	return true
}

// worker is one stream and its side array (type index and publish bit per op, off-heap).
type worker struct {
	id     int
	ops    []op
	side   []uint32
	peak   int // ops to run before sampling RSS (0: not the peak worker)
	finish int64
	rss    int
	// failed is the op that named a freed object (-check), or -1.
	failed int
}

// mapAnonymous returns n zeroed bytes off Go's heap (nil for n == 0).
func mapAnonymous(n int) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	return syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_ANON|syscall.MAP_PRIVATE|syscall.MAP_POPULATE)
}

func uintptrs(b []byte) []uintptr {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*uintptr)(unsafe.Pointer(&b[0])), len(b)/8)
}

func uint64s(b []byte) []uint64 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), len(b)/8)
}

func uint32s(b []byte) []uint32 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(&b[0])), len(b)/4)
}

// prepare builds the types and side arrays (before timing).
func prepare(p *mappedProgram, table *typeTable) ([]*worker, error) {
	info := &p.info
	workers := make([]*worker, info.workers)
	for w := range workers {
		ops := p.ops(w)
		b, err := mapAnonymous(4 * len(ops))
		if err != nil {
			return nil, fail("side array: mmap: %v", err)
		}
		side := uint32s(b)
		for i := range ops {
			o := &ops[i]
			switch o.kind {
			case kindGCAlloc:
				side[i] = table.typeFor(o.gcPointerSlots(), o.gcSize())
			case kindGCRealloc:
				side[i] = table.typeFor(0, o.arg)
			}
			if side[i]&publishBit != 0 {
				return nil, fail("replay program: too many distinct object types")
			}
		}
		workers[w] = &worker{id: w, ops: ops, side: side, failed: -1}
		if w == info.peakWorker {
			workers[w].peak = info.peakOpEnd
		}
	}
	for w, wk := range workers {
		for i := range wk.ops {
			o := &wk.ops[i]
			if o.kind != kindWait || o.arg == 0 {
				continue
			}
			target := workers[o.worker]
			n := int(o.arg)
			if target.ops[n-1].kind == kindGCRealloc {
				n++ // published after the pair (a wait never splits one)
			}
			target.side[n-1] |= publishBit
		}
		_ = w
	}
	return workers, nil
}

// name is the object in slot (the trace still names it, so it is reachable).
func (s *replayState) name(slot uint32) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&s.names[slot]))
}

// touchPages writes a zero byte at every 4 KiB page boundary inside [from, to) of p after
// its first byte (ReplayLoop.swift's touchPages): the pages are faulted in as a program that
// uses the object would. Zero keeps pointer slots nil.
func touchPages(p unsafe.Pointer, from, to uint64) {
	base := uint64(uintptr(p))
	off := ((base + from) | 4095) + 1 - base
	for ; off < to; off += 4096 {
		*(*byte)(unsafe.Add(p, off)) = 0
	}
}

// run replays entries [from, to) of w's stream; false if it stopped early (-check found a
// freed object, or another worker did).
func (s *replayState) run(w *worker, from, to int) bool {
	ops, side := w.ops, w.side
	holds, roots, types := s.holds, s.roots, s.types
	progress := &s.progress[w.id].n
	for i := from; i < to; i++ {
		o := &ops[i]
		slot := o.slot
		switch o.kind {
		case kindGCAlloc:
			size := o.gcSize()
			p := unsafeNew(types[side[i]&typeMask])
			if o.gcPointerSlots() > 0 {
				*(*unsafe.Pointer)(p) = nil
			} else if size >= 8 {
				*(*uint64)(p) = uint64(slot)
			} else {
				*(*uint8)(p) = uint8(slot)
			}
			roots[slot] = p
			holds[slot] = 1
			s.names[slot] = uintptr(p)
			if s.check {
				s.sizes[slot] = size
			}
			touchPages(p, 0, size)
		case kindHold:
			if s.check && s.stopIfFreed(w, i, slot) {
				return false
			}
			if holds[slot] == 0 {
				roots[slot] = s.name(slot)
			}
			holds[slot]++
		case kindDrop:
			holds[slot]--
			if holds[slot] == 0 {
				roots[slot] = nil
			}
		case kindStore:
			if s.check && (s.stopIfFreed(w, i, slot) || s.stopIfFreed(w, i, o.destination())) {
				return false
			}
			src := s.name(slot)
			dst := s.name(o.destination())
			*(*unsafe.Pointer)(unsafe.Add(src, o.wordIndex()*8)) = dst
		case kindStoreNil:
			if s.check && s.stopIfFreed(w, i, slot) {
				return false
			}
			src := s.name(slot)
			*(*unsafe.Pointer)(unsafe.Add(src, o.wordIndex()*8)) = nil
		case kindGCRealloc:
			if s.check && s.stopIfFreed(w, i, slot) {
				return false
			}
			old := s.name(slot)
			newSize := o.arg
			oldSize := ops[i+1].arg
			p := unsafeNew(types[side[i]&typeMask])
			n := oldSize
			if newSize < n {
				n = newSize
			}
			copy(unsafe.Slice((*byte)(p), n), unsafe.Slice((*byte)(old), n))
			if newSize > oldSize {
				*(*byte)(unsafe.Add(p, oldSize)) = 1
				touchPages(p, oldSize, newSize)
			}
			roots[slot] = p
			holds[slot]++
			s.names[slot] = uintptr(p)
			if s.check {
				s.sizes[slot] = newSize
			}
			i++
		case kindWait:
			// As replayGCOps: a short spin first, then yield on every look.
			target := &s.progress[o.worker].n
			n := int64(o.arg)
			for spins := 0; target.Load() < n; spins++ {
				if s.check && s.aborted.Load() {
					return false
				}
				if spins >= 100 {
					runtime.Gosched()
				}
			}
		}
		if side[i]&publishBit != 0 {
			progress.Store(int64(i + 1))
		}
	}
	return true
}
