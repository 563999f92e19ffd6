// figures.go owns what goreplay measures besides the timed loop, and the result's JSON:
//
//	process    RSS now (/proc/self/statm), peak RSS (VmHWM in /proc/self/status), process
//	           CPU time (getrusage: the workers and Go's own GC workers)
//	gctrace    Go's per-cycle line (GODEBUG=gctrace=1, which main makes sure is set): from
//	           the start of the work on, fd 2 is an unlinked temporary file the runtime
//	           writes the lines into; they are parsed after the replay (clock and CPU phases,
//	           heap sizes in MiB, goal) and the replay's are copied to the real stderr when
//	           -gctrace asks
//	placement  each cycle's pauses in replay time: the second pause ends at MemStats.PauseEnd
//	           (exact, the last 256 cycles); the rest is laid out backwards from it with the
//	           gctrace phase lengths. Older cycles use gctrace's start time (millisecond
//	           resolution), shifted by the offset measured on a cycle that has both
//	heap       a sampler goroutine reads Go's heap-object bytes every millisecond; the peak
//	           is the larger of its high-water mark and the heap at each mark termination
//	           (gctrace), less the harness's own Go heap measured before timing (the roots
//	           array, the types), so that it counts the trace's objects
//
// Invariants: only cycles that completed between the start gate and the end of the last
// worker are reported (the forced cycle before timing is not); every figure comes from Go
// (runtime, runtime/metrics, runtime/debug, gctrace) or the kernel; what Go does not give
// (the number of assists, the time spent stopping the world) is null, never zero.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime/metrics"
	"strings"
	"syscall"
	"time"
)

// residentBytes reads /proc/self/statm (resident pages) without allocating on Go's heap.
func residentBytes() int {
	var buf [128]byte
	fd, err := syscall.Open("/proc/self/statm", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	n, _ := syscall.Read(fd, buf[:])
	syscall.Close(fd)
	if n <= 0 {
		return 0
	}
	fields := bytes.Fields(buf[:n])
	if len(fields) < 2 {
		return 0
	}
	pages := 0
	for _, c := range fields[1] {
		if c < '0' || c > '9' {
			return 0
		}
		pages = pages*10 + int(c-'0')
	}
	return pages * os.Getpagesize()
}

// peakResidentBytes is VmHWM, else ru_maxrss.
func peakResidentBytes() int {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "VmHWM:") {
				var kib int
				if _, err := fmt.Sscanf(strings.TrimSpace(line[6:]), "%d kB", &kib); err == nil {
					return kib * 1024
				}
			}
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		return int(ru.Maxrss) * 1024
	}
	return 0
}

func processCPUNanos() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// gctraceCycle is one parsed gctrace line.
type gctraceCycle struct {
	n                                 int
	at                                float64 // seconds since the runtime started
	stw1, mark, stw2                  float64 // seconds, clock
	cpuStw1, assist, background, idle float64 // seconds, CPU
	cpuStw2                           float64
	heap0, heap1, heap2, goal         int // MiB
	procs                             int
	line                              string
}

// parseGctrace reads one line of Go 1.19's gctrace; ok is false for any other line.
func parseGctrace(line string) (c gctraceCycle, ok bool) {
	var util int
	var ms [8]float64
	_, err := fmt.Sscanf(line, "gc %d @%fs %d%%: %f+%f+%f ms clock, %f+%f/%f/%f+%f ms cpu, %d->%d->%d MB, %d MB goal,",
		&c.n, &c.at, &util, &ms[0], &ms[1], &ms[2], &ms[3], &ms[4], &ms[5], &ms[6], &ms[7],
		&c.heap0, &c.heap1, &c.heap2, &c.goal)
	if err != nil {
		return c, false
	}
	c.stw1, c.mark, c.stw2 = ms[0]/1e3, ms[1]/1e3, ms[2]/1e3
	c.cpuStw1, c.assist, c.background, c.idle, c.cpuStw2 = ms[3]/1e3, ms[4]/1e3, ms[5]/1e3, ms[6]/1e3, ms[7]/1e3
	if i := strings.LastIndex(line, ", "); i >= 0 {
		fmt.Sscanf(line[i+2:], "%d P", &c.procs)
	}
	c.line = line
	return c, true
}

// stderrCapture points fd 2 at an unlinked temporary file for the rest of the process: the
// runtime prints a gctrace line in several writes, at the end of a cycle, so fd 2 never
// goes back (a line under way would be split); what is meant for the real stderr is written
// to a copy of it (saved).
type stderrCapture struct {
	saved *os.File
	file  *os.File
}

// The runtime writes through its own open of the file, in append mode: fd 2 and the reader
// must not share a file offset (a read seeking back to the start would make the runtime's
// next write land in the middle of earlier lines).
func captureStderr() (*stderrCapture, error) {
	f, err := os.CreateTemp("", "goreplay-gctrace-")
	if err != nil {
		return nil, fail("gctrace capture: %v", err)
	}
	defer os.Remove(f.Name())
	w, err := os.OpenFile(f.Name(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		f.Close()
		return nil, fail("gctrace capture: %v", err)
	}
	defer w.Close()
	saved, err := syscall.Dup(2)
	if err != nil {
		f.Close()
		return nil, fail("gctrace capture: dup: %v", err)
	}
	syscall.CloseOnExec(saved)
	if err := syscall.Dup2(int(w.Fd()), 2); err != nil {
		f.Close()
		syscall.Close(saved)
		return nil, fail("gctrace capture: dup2: %v", err)
	}
	return &stderrCapture{saved: os.NewFile(uintptr(saved), "stderr"), file: f}, nil
}

// stop copies to the real stderr the captured lines that are not gctrace (a panic's, say)
// and, with forward, the gctrace lines of cycles from+1...to (the replay's). A line that
// starts like gctrace but does not parse is one still being written: not copied.
func (s *stderrCapture) stop(forward bool, from, to uint64) {
	scanCaptured(s.file, func(line string, c gctraceCycle, ok bool) {
		if (!ok && !strings.HasPrefix(line, "gc ")) || (ok && forward && uint64(c.n) > from && uint64(c.n) <= to) {
			s.saved.WriteString(line + "\n")
		}
	})
}

// readCaptured parses the gctrace lines captured so far.
func readCaptured(f *os.File) []gctraceCycle {
	var cycles []gctraceCycle
	scanCaptured(f, func(_ string, c gctraceCycle, ok bool) {
		if ok {
			cycles = append(cycles, c)
		}
	})
	return cycles
}

func scanCaptured(f *os.File, each func(line string, c gctraceCycle, ok bool)) {
	if _, err := f.Seek(0, 0); err != nil {
		return
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		c, ok := parseGctrace(line)
		each(line, c, ok)
	}
}

// heapSampler tracks the high-water mark of Go's heap-object bytes.
type heapSampler struct {
	stop chan struct{}
	done chan struct{}
	peak uint64
}

const heapObjectsMetric = "/memory/classes/heap/objects:bytes"

func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		samples := []metrics.Sample{{Name: heapObjectsMetric}}
		ticker := time.NewTicker(time.Millisecond)
		defer ticker.Stop()
		defer close(h.done)
		for {
			select {
			case <-h.stop:
				return
			case <-ticker.C:
				metrics.Read(samples)
				if v := samples[0].Value.Uint64(); v > h.peak {
					h.peak = v
				}
			}
		}
	}()
	return h
}

// finish stops the sampler; its peak is read after this.
func (h *heapSampler) finish() {
	close(h.stop)
	<-h.done
}
