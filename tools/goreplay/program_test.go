// program_test.go checks the header parser against ReplayProgram.parseHeader's rules (one
// valid program, then one violation at a time, each with the Swift side's message) and
// checkOps against ops a collector program may not hold.
package main

import (
	"encoding/binary"
	"strings"
	"testing"
	"unsafe"
)

const testPage = 4096

// validProgram is a one-worker collector program: gcAlloc #0 (64 bytes, 1 pointer slot),
// store #0[0] = #0, drop #0.
func validProgram() []byte {
	b := make([]byte, testPage+3*opBytes)
	words := []uint64{programMagic, programVersion, 1, 4, 4, 1, 64, 0, 1, 0, 64, 1, 0, 0, 1, 0, 0, 1,
		testPage, 3, 64}
	for i, w := range words {
		binary.LittleEndian.PutUint64(b[i*8:], w)
	}
	ops := unsafe.Slice((*op)(unsafe.Pointer(&b[testPage])), 3)
	ops[0] = op{kind: kindGCAlloc, worker: 1, slot: 0, arg: 64}
	ops[1] = op{kind: kindStore, slot: 0, arg: 0}
	ops[2] = op{kind: kindDrop, slot: 0}
	return b
}

func setWord(b []byte, i int, v uint64) { binary.LittleEndian.PutUint64(b[i*8:], v) }

func TestValidHeader(t *testing.T) {
	info, err := parseHeader(validProgram(), testPage)
	if err != nil {
		t.Fatal(err)
	}
	if info.workers != 1 || info.slotCount != 4 || !info.collected || info.streams[0] != (streamInfo{testPage, 3, 64}) ||
		info.peakWorker != 0 || info.peakOpEnd != 1 || info.allocations != 1 || info.stores != 1 {
		t.Fatalf("unexpected header %+v", info)
	}
	p := &mappedProgram{data: validProgram(), info: info}
	if err := checkOps(p); err != nil {
		t.Fatal(err)
	}
}

func TestHeaderViolations(t *testing.T) {
	cases := []struct {
		name   string
		mutate func([]byte) []byte
		want   string
	}{
		{"short file", func(b []byte) []byte { return b[:testPage-1] }, "file of 4095 bytes is too short"},
		{"magic", func(b []byte) []byte { setWord(b, 0, 1); return b }, "bad magic number"},
		{"version", func(b []byte) []byte { setWord(b, 1, 2); return b }, "unsupported version 2"},
		{"no workers", func(b []byte) []byte { setWord(b, 2, 0); return b }, "bad worker or profile count"},
		{"too many workers", func(b []byte) []byte { setWord(b, 2, 257); return b }, "bad worker or profile count"},
		{"negative workers", func(b []byte) []byte { setWord(b, 2, 1<<63); return b }, "header field 2 out of range"},
		{"profile", func(b []byte) []byte { setWord(b, 16, 513); return b }, "bad worker or profile count"},
		{"header past the file", func(b []byte) []byte { setWord(b, 2, 200); return b }, "header larger than file"},
		{"stream before the header", func(b []byte) []byte { setWord(b, 18, 0); return b }, "stream 0 lies outside the file"},
		{"stream unaligned", func(b []byte) []byte { setWord(b, 18, testPage+8); return b }, "stream 0 lies outside the file"},
		{"stream too long", func(b []byte) []byte { setWord(b, 19, 4); return b }, "stream 0 lies outside the file"},
		{"stream count overflow", func(b []byte) []byte { setWord(b, 19, 1<<62); return b }, "stream 0 lies outside the file"},
		{"peak worker", func(b []byte) []byte { setWord(b, 7, 1); return b }, "peak point outside the program"},
		{"peak op", func(b []byte) []byte { setWord(b, 8, 4); return b }, "peak point outside the program"},
		{"slots", func(b []byte) []byte { setWord(b, 3, 1<<32); return b }, "too many slots"},
		{"records", func(b []byte) []byte { setWord(b, 4, 1<<63); return b }, "header field 4 out of range"},
		{"waits", func(b []byte) []byte { setWord(b, 15, 1<<63); return b }, "header field 15 out of range"},
	}
	for _, c := range cases {
		_, err := parseHeader(c.mutate(validProgram()), testPage)
		if err == nil || err.Error() != "replay program: "+c.want {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}

func TestOpViolations(t *testing.T) {
	cases := []struct {
		name   string
		mutate func([]op, []byte)
		want   string
	}{
		{"not collected", func(_ []op, b []byte) { setWord(b, 17, 0) }, "not lowered for the collector"},
		{"malloc op", func(o []op, _ []byte) { o[2].kind = kindFree }, "op kind 2 is not a collector op"},
		{"unknown op", func(o []op, _ []byte) { o[2].kind = 99 }, "unknown op kind 99"},
		{"slot", func(o []op, _ []byte) { o[2].slot = 4 }, "slot outside the object table"},
		{"destination", func(o []op, _ []byte) { o[1].arg = 7 }, "slot outside the object table"},
		{"pointers past the size", func(o []op, _ []byte) { o[0].worker = 9 }, "bad size or pointer count"},
		{"size 0", func(o []op, _ []byte) { o[0].arg = 0; o[0].worker = 0 }, "bad size or pointer count"},
		{"lone resize", func(o []op, _ []byte) { o[2] = op{kind: kindGCRealloc, arg: 8} }, "a resize without its old size"},
		{"wait for itself", func(o []op, _ []byte) { o[2] = op{kind: kindWait, worker: 0, arg: 1} }, "a wait for a worker"},
	}
	for _, c := range cases {
		b := validProgram()
		c.mutate(unsafe.Slice((*op)(unsafe.Pointer(&b[testPage])), 3), b)
		info, err := parseHeader(b, testPage)
		if err != nil {
			t.Fatalf("%s: header: %v", c.name, err)
		}
		err = checkOps(&mappedProgram{data: b, info: info})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}

func TestGctraceLine(t *testing.T) {
	line := "gc 12 @0.416s 9%: 0.037+1.2+0.004 ms clock, 0.074+0.10/0.95/0.31+0.009 ms cpu, 4->5->2 MB, 5 MB goal, 0 MB stacks, 0 MB globals, 2 P"
	c, ok := parseGctrace(line)
	if !ok || c.n != 12 || c.at != 0.416 || c.stw1 != 0.037e-3 || c.mark != 1.2e-3 || c.stw2 != 0.004e-3 ||
		c.assist != 0.10e-3 || c.background != 0.95e-3 || c.idle != 0.31e-3 || c.heap0 != 4 || c.heap1 != 5 || c.heap2 != 2 ||
		c.goal != 5 || c.procs != 2 {
		t.Fatalf("parsed %+v", c)
	}
	if _, ok := parseGctrace("panic: something else"); ok {
		t.Fatal("a line that is not gctrace parsed")
	}
}
