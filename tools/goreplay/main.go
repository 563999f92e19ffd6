// goreplay replays a HeapLab replay program on Go's own runtime: Go's allocator and Go's
// concurrent collector, for `heaplab replay --allocator go` (docs/replay.md). It is the Go
// side of the child protocol of Sources/HeapLabReplay/ChildReplay.swift:
//
//	goreplay -program-fd 3 -result-fd 4 [-gogc N|off] [-memlimit BYTES|off]
//	         [-fixed-heap BYTES] [-gctrace]
//
// maps the program (fd 3), checks it (program.go), replays it (replay.go) and writes one
// JSON object to the result fd: the measurement in the shape ChildReplay.decodeMeasurement
// reads, with a `gc` object in GCReport's shape, or {"error": "..."} and exit status 1.
//
// main owns the order of events; everything before the start gate and after the last
// worker is untimed:
//  1. GODEBUG must hold gctrace=1 (the runtime reads it at start-up): if not, goreplay
//     executes itself again with it added;
//  2. fd 2 to the gctrace capture (figures.go), for good; map and check the program; set
//     GOGC and the memory limit (runtime/debug);
//  3. build the types and side arrays, map the name table and hold counts, make the roots;
//  4. one forced collection, then the baselines: Go's heap (the harness's), RSS, cycle
//     count, MemStats; with -fixed-heap, the memory limit is set here (see below);
//  5. the heap sampler, the gate: wall and CPU time run from the gate opening to the last
//     worker's finish; then GOGC off, so that no cycle runs after the replay;
//  6. the figures (figures.go) and the result.
//
// -fixed-heap BYTES (the bench's heap sweep): GOGC off and a memory limit of BYTES plus the
// runtime memory in use at step 4 that is not free heap (the harness's heap, stacks,
// metadata): Go's nearest expression of a fixed-size heap (Go has no heap-minimum knob).
//
// -check (`heaplab replay --allocator go --verify`): GODEBUG also gets clobberfree=1, and
// every op that names an object first checks it was not swept (replay.go); not for timing.
//
// Invariant: no panic reaches the user for bad input; every failure is an "error" result.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

type options struct {
	programFD, resultFD int
	gogc                int // -1: off
	memoryLimit         int64
	hasLimit            bool
	fixedHeap           int64
	gctrace             bool
	check               bool
}

func parseOptions(args []string) (options, error) {
	o := options{gogc: 100}
	fs := flag.NewFlagSet("goreplay", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.IntVar(&o.programFD, "program-fd", -1, "file descriptor of the replay program")
	fs.IntVar(&o.resultFD, "result-fd", -1, "file descriptor the JSON result is written to")
	gogc := fs.String("gogc", "100", "GOGC, or off")
	limit := fs.String("memlimit", "off", "soft memory limit in bytes, or off")
	fs.Int64Var(&o.fixedHeap, "fixed-heap", 0, "fixed heap size in bytes (GOGC off and a memory limit)")
	fs.BoolVar(&o.gctrace, "gctrace", false, "copy Go's gctrace lines to stderr")
	fs.BoolVar(&o.check, "check", false, "stop at an op that names an object Go has freed (needs GODEBUG=clobberfree=1; not for timing)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.programFD < 0 || o.resultFD < 0 {
		return o, fmt.Errorf("-program-fd and -result-fd are required")
	}
	if *gogc == "off" {
		o.gogc = -1
	} else if v, err := strconv.Atoi(*gogc); err == nil && v >= 0 {
		o.gogc = v
	} else {
		return o, fmt.Errorf("-gogc takes a percentage or off, not %q", *gogc)
	}
	if *limit != "off" {
		v, err := strconv.ParseInt(*limit, 10, 64)
		if err != nil || v < 0 {
			return o, fmt.Errorf("-memlimit takes bytes or off, not %q", *limit)
		}
		o.memoryLimit, o.hasLimit = v, true
	}
	if o.fixedHeap < 0 || (o.fixedHeap > 0 && (o.hasLimit || o.gogc != 0 && o.gogc != 100)) {
		return o, fmt.Errorf("-fixed-heap sets GOGC and the memory limit itself")
	}
	return o, nil
}

// ensureGODEBUG re-executes goreplay with gctrace=1 (and, for -check, clobberfree=1) added
// to GODEBUG when missing: the runtime reads GODEBUG once, at start-up.
func ensureGODEBUG(check bool) error {
	current := os.Getenv("GODEBUG")
	want := []string{"gctrace=1"}
	if check {
		want = append(want, "clobberfree=1")
	}
	have := map[string]bool{}
	for _, kv := range strings.Split(current, ",") {
		have[kv] = true
	}
	value := current
	for _, kv := range want {
		if !have[kv] {
			if value != "" {
				value += ","
			}
			value += kv
		}
	}
	if value == current {
		return nil
	}
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "GODEBUG=") {
			env = append(env, e)
		}
	}
	env = append(env, "GODEBUG="+value)
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return syscall.Exec(exe, os.Args, env)
}

func main() {
	o, err := parseOptions(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "goreplay: %v\n", err)
		os.Exit(2)
	}
	if err := ensureGODEBUG(o.check); err != nil {
		writeResult(o.resultFD, map[string]interface{}{"error": fmt.Sprintf("goreplay: cannot set GODEBUG=gctrace=1: %v", err)})
		os.Exit(1)
	}
	result, err := replay(o)
	if err != nil {
		writeResult(o.resultFD, map[string]interface{}{"error": err.Error()})
		os.Exit(1)
	}
	writeResult(o.resultFD, result)
}

func writeResult(fd int, v interface{}) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": "goreplay: " + err.Error()})
	}
	b = append(b, '\n')
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			break
		}
		b = b[n:]
	}
	syscall.Close(fd)
}

type metricsSnapshot struct {
	cycles                uint64
	heapObjects, goal     uint64
	total, released, free uint64
	pauses                *metrics.Float64Histogram
}

func readMetrics() metricsSnapshot {
	s := []metrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"}, {Name: heapObjectsMetric}, {Name: "/gc/heap/goal:bytes"},
		{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/free:bytes"}, {Name: "/gc/pauses:seconds"},
	}
	metrics.Read(s)
	u := func(i int) uint64 {
		if s[i].Value.Kind() == metrics.KindUint64 {
			return s[i].Value.Uint64()
		}
		return 0
	}
	m := metricsSnapshot{cycles: u(0), heapObjects: u(1), goal: u(2), total: u(3), released: u(4), free: u(5)}
	if s[6].Value.Kind() == metrics.KindFloat64Histogram {
		m.pauses = s[6].Value.Float64Histogram()
	}
	return m
}

func replay(o options) (map[string]interface{}, error) {
	capture, err := captureStderr()
	if err != nil {
		return nil, err
	}
	forwarded := false
	defer func() {
		if !forwarded {
			capture.stop(false, 0, 0)
		}
	}()
	program, err := openProgram(o.programFD)
	if err != nil {
		return nil, err
	}
	if err := checkOps(program); err != nil {
		return nil, err
	}
	info := &program.info
	if o.fixedHeap > 0 {
		debug.SetGCPercent(-1)
	} else {
		debug.SetGCPercent(o.gogc)
		if o.hasLimit {
			debug.SetMemoryLimit(o.memoryLimit)
		} else {
			debug.SetMemoryLimit(math.MaxInt64)
		}
	}

	table := newTypeTable()
	workers, err := prepare(program, table)
	if err != nil {
		return nil, err
	}
	namesMem, err := mapAnonymous(8 * info.slotCount)
	if err != nil {
		return nil, fail("name table: mmap: %v", err)
	}
	holdsMem, err := mapAnonymous(4 * info.slotCount)
	if err != nil {
		return nil, fail("hold counts: mmap: %v", err)
	}
	state := &replayState{
		names: uintptrs(namesMem), holds: uint32s(holdsMem),
		roots: make([]unsafe.Pointer, info.slotCount), types: table.types,
		progress: make([]paddedCounter, info.workers), check: o.check,
	}
	if o.check {
		sizesMem, err := mapAnonymous(8 * info.slotCount)
		if err != nil {
			return nil, fail("object sizes: mmap: %v", err)
		}
		state.sizes = uint64s(sizesMem)
	}

	runtime.GC()
	before := readMetrics()
	harnessHeap := before.heapObjects
	effectiveLimit := int64(-1)
	if o.fixedHeap > 0 {
		effectiveLimit = o.fixedHeap + int64(before.total-before.released-before.free)
		debug.SetMemoryLimit(effectiveLimit)
	} else if o.hasLimit {
		effectiveLimit = o.memoryLimit
	}
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	before = readMetrics()
	baselineRSS := residentBytes()

	gate := make(chan struct{})
	var ready, done sync.WaitGroup
	ready.Add(len(workers))
	done.Add(len(workers))
	var start time.Time
	for _, w := range workers {
		go func(w *worker) {
			defer done.Done()
			ready.Done()
			<-gate
			if w.peak > 0 {
				if state.run(w, 0, w.peak) {
					w.rss = residentBytes()
					state.run(w, w.peak, len(w.ops))
				}
			} else {
				state.run(w, 0, len(w.ops))
			}
			if info.workers > 1 {
				state.progress[w.id].n.Store(int64(len(w.ops)))
			}
			w.finish = int64(time.Since(start))
		}(w)
	}
	ready.Wait()
	sampler := startHeapSampler()
	cpu0 := processCPUNanos()
	start = time.Now()
	close(gate)
	done.Wait()
	cpu1 := processCPUNanos()
	after := readMetrics()
	sampler.finish()
	peakRSS := peakResidentBytes()
	// No cycle after the replay: GOGC off waits for a mark under way to finish, and the
	// limit goes.
	debug.SetMemoryLimit(math.MaxInt64)
	debug.SetGCPercent(-1)

	for _, w := range workers {
		if w.failed >= 0 {
			capture.stop(false, 0, 0)
			forwarded = true
			return nil, fail("replay stopped at op %d of worker %d: the op names an object Go's collector has freed (-check)", w.failed, w.id)
		}
	}
	var wall int64
	rssAtPeak := 0
	for _, w := range workers {
		if w.finish > wall {
			wall = w.finish
		}
		if w.rss > rssAtPeak {
			rssAtPeak = w.rss
		}
	}
	// A cycle's gctrace line is printed just after its count moves on (and after GOGC off
	// stops waiting for it): wait for the lines of every cycle so far.
	last := readMetrics().cycles
	var cycles []gctraceCycle
	deadline := time.Now().Add(2 * time.Second)
	for {
		cycles = readCaptured(capture.file)
		if haveCycles(cycles, before.cycles, last) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	capture.stop(o.gctrace, before.cycles, after.cycles)
	forwarded = true
	runtime.KeepAlive(table)
	runtime.KeepAlive(state)

	figures := goFigures{
		opts: o, info: info, start: start, wall: float64(wall) / 1e9, before: before, after: after,
		ms0: &ms0, ms1: &ms1, cycles: cycles, harnessHeap: harnessHeap, sampledPeak: sampler.peak,
		effectiveLimit: effectiveLimit,
	}
	gc := figures.report()
	return map[string]interface{}{
		"workers":                info.workers,
		"wall_seconds":           float64(wall) / 1e9,
		"cpu_seconds":            float64(cpu1-cpu0) / 1e9,
		"baseline_rss_bytes":     baselineRSS,
		"rss_at_peak_live_bytes": rssAtPeak,
		"peak_rss_bytes":         peakRSS,
		"allocator_stats":        figures.allocatorStats(),
		"verified":               o.check,
		"sized_free":             false,
		"gc":                     gc,
	}, nil
}

func haveCycles(cycles []gctraceCycle, from, to uint64) bool {
	seen := map[int]bool{}
	for _, c := range cycles {
		seen[c.n] = true
	}
	for n := from + 1; n <= to; n++ {
		if !seen[int(n)] {
			return false
		}
	}
	return true
}

// goFigures turns what Go reported into the result's figures.
type goFigures struct {
	opts           options
	info           *programInfo
	start          time.Time
	wall           float64
	before, after  metricsSnapshot
	ms0, ms1       *runtime.MemStats
	cycles         []gctraceCycle
	harnessHeap    uint64
	sampledPeak    uint64
	effectiveLimit int64
}

const mib = 1 << 20

func (f *goFigures) replayCycles() []gctraceCycle {
	var out []gctraceCycle
	for _, c := range f.cycles {
		if uint64(c.n) > f.before.cycles && uint64(c.n) <= f.after.cycles {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n < out[j].n })
	return out
}

// pauseEnd is the end of cycle n's second pause in replay seconds, if MemStats still has it.
func (f *goFigures) pauseEnd(n int) (float64, bool) {
	latest := int(f.ms1.NumGC)
	if n > latest || n <= latest-256 || n < 1 {
		return 0, false
	}
	end := f.ms1.PauseEnd[(n+255)%256]
	if end == 0 {
		return 0, false
	}
	return float64(int64(end)-f.start.UnixNano()) / 1e9, true
}

type pauseInterval struct{ start, end float64 }

func (f *goFigures) positions(cycles []gctraceCycle) (starts []float64, pauses []pauseInterval) {
	offset := 0.0
	for _, c := range cycles {
		if e2, ok := f.pauseEnd(c.n); ok {
			offset = e2 - c.stw2 - c.mark - c.stw1 - c.at
			break
		}
	}
	for _, c := range cycles {
		var s1 float64
		if e2, ok := f.pauseEnd(c.n); ok {
			s1 = e2 - c.stw2 - c.mark - c.stw1
		} else {
			// haveOffset: MemStats holds the last 256 cycles, so at least the latest
			// replay cycle has its pause end.
			s1 = c.at + offset
		}
		starts = append(starts, s1)
		p1 := pauseInterval{s1, s1 + c.stw1}
		p2 := pauseInterval{s1 + c.stw1 + c.mark, s1 + c.stw1 + c.mark + c.stw2}
		for _, p := range []pauseInterval{p1, p2} {
			if p.start < f.wall && p.end > p.start {
				if p.start < 0 {
					p.start = 0
				}
				pauses = append(pauses, p)
			}
		}
	}
	sort.Slice(pauses, func(i, j int) bool { return pauses[i].start < pauses[j].start })
	var merged []pauseInterval
	for _, p := range pauses {
		if k := len(merged); k > 0 && p.start <= merged[k-1].end {
			if p.end > merged[k-1].end {
				merged[k-1].end = p.end
			}
			continue
		}
		merged = append(merged, p)
	}
	return starts, merged
}

func (f *goFigures) heapFigure(v uint64) int {
	if v < f.harnessHeap {
		return 0
	}
	return int(v - f.harnessHeap)
}

func (f *goFigures) report() map[string]interface{} {
	cycles := f.replayCycles()
	starts, pauses := f.positions(cycles)
	var background, idle, assist float64
	peak := f.sampledPeak
	if f.after.heapObjects > peak {
		peak = f.after.heapObjects
	}
	goals := []int{}
	perCycle := []map[string]interface{}{}
	procs := runtime.GOMAXPROCS(0)
	for k, c := range cycles {
		background += c.background
		idle += c.idle
		assist += c.assist
		if v := uint64(c.heap1) * mib; v > peak {
			peak = v
		}
		goals = append(goals, c.goal*mib)
		perCycle = append(perCycle, map[string]interface{}{
			"cycle":                             c.n,
			"start_seconds":                     starts[k],
			"mark_setup_seconds":                c.stw1,
			"concurrent_mark_seconds":           c.mark,
			"mark_termination_seconds":          c.stw2,
			"mark_setup_stopping_seconds":       nil,
			"mark_termination_stopping_seconds": nil,
			"heap_at_start_bytes":               c.heap0 * mib,
			"heap_at_mark_end_bytes":            c.heap1 * mib,
			"heap_marked_bytes":                 c.heap2 * mib,
			"goal_bytes":                        c.goal * mib,
			"assist_seconds":                    c.assist,
			"assists":                           nil,
			"background_cpu_seconds":            c.background,
			"idle_cpu_seconds":                  c.idle,
			"gctrace":                           c.line,
		})
	}
	intervals := [][2]float64{}
	total := 0.0
	for _, p := range pauses {
		intervals = append(intervals, [2]float64{p.start, p.end})
		total += p.end - p.start
	}
	var gogc interface{} = f.opts.gogc
	if f.opts.gogc < 0 || f.opts.fixedHeap > 0 {
		gogc = "off"
	}
	var limit interface{}
	if f.effectiveLimit >= 0 {
		limit = f.effectiveLimit
	}
	// Exact pause totals of the replay's cycles that MemStats still holds.
	var exactPause uint64
	covered := 0
	for _, c := range cycles {
		if n, latest := c.n, int(f.ms1.NumGC); n > latest-256 && n <= latest {
			exactPause += f.ms1.PauseNs[(n+255)%256]
			covered++
		}
	}
	runtimeFigures := map[string]interface{}{
		"go_version":              runtime.Version(),
		"gc_cpu_fraction":         f.ms1.GCCPUFraction,
		"pause_ns_total_memstats": exactPause,
		"pause_cycles_memstats":   covered,
		"pauses_runtime_metrics":  pauseHistogramDelta(f.before.pauses, f.after.pauses),
		"heap_goal_bytes_at_end":  f.after.goal,
		"harness_heap_bytes":      f.harnessHeap,
		"sampled_peak_heap_bytes": f.heapFigure(f.sampledPeak),
		// Cycles Go counted during the replay whose gctrace line never arrived (0 unless
		// the runtime took over 2 s to print it): they are missing from every figure above.
		"cycles_without_gctrace": int(f.after.cycles-f.before.cycles) - len(cycles),
	}
	if f.opts.fixedHeap > 0 {
		runtimeFigures["fixed_heap_bytes"] = f.opts.fixedHeap
	}
	return map[string]interface{}{
		"runtime":            "go",
		"runtime_figures":    runtimeFigures,
		"gogc":               gogc,
		"memory_limit_bytes": limit,
		"heap_minimum_bytes": nil,
		"mode":               "concurrent",
		"verified":           f.opts.check,
		"procs":              procs,
		"replay_seconds":     f.wall,
		"cycles":             len(cycles),
		"pauses": map[string]interface{}{
			"count":         len(intervals),
			"total_seconds": total,
			"intervals":     intervals,
		},
		"cpu": map[string]interface{}{
			"background_seconds": background,
			"idle_seconds":       idle,
			"assist_seconds":     assist,
		},
		"assists":          nil,
		"heap_goal_bytes":  goals,
		"peak_heap_bytes":  f.heapFigure(peak),
		"final_heap_bytes": f.heapFigure(f.after.heapObjects),
		"per_cycle":        perCycle,
	}
}

// pauseHistogramDelta is the /gc/pauses:seconds histogram of the replay: non-empty buckets
// as [lower seconds, upper seconds, count].
func pauseHistogramDelta(before, after *metrics.Float64Histogram) [][3]float64 {
	out := [][3]float64{}
	if after == nil {
		return out
	}
	for i, n := range after.Counts {
		if before != nil && i < len(before.Counts) {
			n -= before.Counts[i]
		}
		if n == 0 {
			continue
		}
		lo, hi := after.Buckets[i], after.Buckets[i+1]
		if math.IsInf(lo, 0) || math.IsInf(hi, 0) {
			continue
		}
		out = append(out, [3]float64{lo, hi, float64(n)})
	}
	return out
}

func (f *goFigures) allocatorStats() map[string]interface{} {
	m := f.ms1
	return map[string]interface{}{
		"heap_alloc":         m.HeapAlloc,
		"heap_inuse":         m.HeapInuse,
		"heap_idle":          m.HeapIdle,
		"heap_released":      m.HeapReleased,
		"heap_sys":           m.HeapSys,
		"sys_bytes":          m.Sys,
		"live_objects":       m.HeapObjects,
		"mallocs":            m.Mallocs - f.ms0.Mallocs,
		"frees":              m.Frees - f.ms0.Frees,
		"allocated_bytes":    m.TotalAlloc - f.ms0.TotalAlloc,
		"gc_cycles":          len(f.replayCycles()),
		"next_gc_bytes":      m.NextGC,
		"harness_heap_bytes": f.harnessHeap,
	}
}
