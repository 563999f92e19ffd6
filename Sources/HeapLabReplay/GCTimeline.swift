// `heaplab replay --allocator gc --timeline FILE`: the collector's activity as a Chrome
// trace-event file (the JSON object form: {"traceEvents": [...]}), which Perfetto
// (ui.perfetto.dev) and chrome://tracing open.
//
// One process ("heaplab gc replay"), one lane (tid) per:
//   tid 1          collector: per cycle a "GC n" span (sweep termination to the end of mark
//                  termination) holding "mark setup (STW)", "concurrent mark" and
//                  "mark termination (STW)" spans
//   tid 10 + w     replay worker w: a "replay" span (its first op to the end of its stream)
//                  holding its "assist" spans
//   tid 100 + k    background mark worker k (numbered in order of first slice): "mark" spans
// and counters "heap" (heap at cycle start, at mark end, marked; goal) per cycle.
// Every event is a complete event ("ph": "X") with "ts" and "dur" in microseconds from the
// start of the replay, or a counter ("C") or metadata ("M") event; spans on one lane nest.

import HeapLabAllocator

enum GCTimeline {
    static let collectorLane = 1
    static let firstWorkerLane = 10
    static let firstMarkWorkerLane = 100

    static func render(events: [RecordedGCEvent], workerThreads: [UInt: Int], workerSpans: [(Int, Double, Double)],
                       cycles: [GCCycleRecord], collectorStart: Double, replayStart: Double, replayEnd: Double) -> String {
        func us(_ t: Double) -> JSONValue { .double(((t - replayStart) * 1e6 * 1000).rounded() / 1000) }
        func dur(_ a: Double, _ b: Double) -> JSONValue { .double((max(0, b - a) * 1e6 * 1000).rounded() / 1000) }
        func complete(_ name: String, _ category: String, tid: Int, _ a: Double, _ b: Double, _ args: [JSONMember] = []) -> JSONValue {
            var m = [JSONMember("name", .string(name)), JSONMember("cat", .string(category)), JSONMember("ph", .string("X")),
                     JSONMember("ts", us(a)), JSONMember("dur", dur(a, b)), JSONMember("pid", .int(1)), JSONMember("tid", .int(tid))]
            if !args.isEmpty { m.append(JSONMember("args", .object(args))) }
            return .object(m)
        }
        func metadata(_ kind: String, tid: Int?, _ args: [JSONMember]) -> JSONValue {
            var m = [JSONMember("name", .string(kind)), JSONMember("ph", .string("M")), JSONMember("pid", .int(1))]
            if let tid { m.append(JSONMember("tid", .int(tid))) }
            m.append(JSONMember("args", .object(args)))
            return .object(m)
        }
        var out: [JSONValue] = [
            metadata("process_name", tid: nil, [JSONMember("name", .string("heaplab gc replay"))]),
            metadata("thread_name", tid: collectorLane, [JSONMember("name", .string("collector"))]),
            metadata("thread_sort_index", tid: collectorLane, [JSONMember("sort_index", .int(0))]),
        ]
        for (w, a, b) in workerSpans {
            let tid = firstWorkerLane + w
            out.append(metadata("thread_name", tid: tid, [JSONMember("name", .string("replay worker \(w)"))]))
            out.append(metadata("thread_sort_index", tid: tid, [JSONMember("sort_index", .int(tid))]))
            out.append(complete("replay", "mutator", tid: tid, a, b))
        }
        // Cycles: the span from the cycle record's start to the end of its last pause.
        var cycleEnd: [Int: Double] = [:]
        for e in events where e.event.kind == .markTermination || e.event.kind == .markSetup {
            cycleEnd[e.event.cycle] = max(cycleEnd[e.event.cycle] ?? e.event.end, e.event.end)
        }
        for r in cycles {
            let a = collectorStart + r.start
            let b = cycleEnd[r.cycle] ?? (a + r.stw1 + r.concurrent + r.stw2)
            out.append(complete("GC \(r.cycle)", "gc", tid: collectorLane, a, b, [
                JSONMember("heap_at_start_bytes", .int(r.heapAtStart)), JSONMember("heap_at_mark_end_bytes", .int(r.heapAtMarkEnd)),
                JSONMember("heap_marked_bytes", .int(r.heapMarked)), JSONMember("goal_bytes", .int(r.goal)),
                JSONMember("gctrace", .string(r.gctraceLine)),
            ]))
            func counter(_ t: Double, heap: Int) -> JSONValue {
                .object([JSONMember("name", .string("heap")), JSONMember("ph", .string("C")), JSONMember("ts", us(t)),
                         JSONMember("pid", .int(1)),
                         JSONMember("args", .object([JSONMember("heap MiB", .double(Double(heap) / 1_048_576)),
                                                     JSONMember("goal MiB", .double(Double(r.goal) / 1_048_576))]))])
            }
            out.append(counter(a, heap: r.heapAtStart))
            out.append(counter(max(a, b - r.stw2), heap: r.heapAtMarkEnd))
            out.append(counter(b, heap: r.heapMarked))
        }
        var markWorkerLanes: [UInt: Int] = [:]
        for e in events {
            let ev = e.event
            let cycleArgs = [JSONMember("cycle", .int(ev.cycle))]
            switch ev.kind {
            case .markSetup:
                out.append(complete("mark setup (STW)", "pause", tid: collectorLane, ev.start, ev.end, cycleArgs))
            case .markTermination:
                out.append(complete("mark termination (STW)", "pause", tid: collectorLane, ev.start, ev.end, cycleArgs))
            case .concurrentMark:
                out.append(complete("concurrent mark", "gc", tid: collectorLane, ev.start, ev.end, cycleArgs))
            case .assist:
                let w = workerThreads[e.thread] ?? -1
                out.append(complete("assist", "assist", tid: w >= 0 ? firstWorkerLane + w : collectorLane, ev.start, ev.end, cycleArgs))
            case .markWorker:
                let lane: Int
                if let known = markWorkerLanes[e.thread] {
                    lane = known
                } else {
                    lane = firstMarkWorkerLane + markWorkerLanes.count
                    markWorkerLanes[e.thread] = lane
                    out.append(metadata("thread_name", tid: lane, [JSONMember("name", .string("mark worker \(lane - firstMarkWorkerLane)"))]))
                    out.append(metadata("thread_sort_index", tid: lane, [JSONMember("sort_index", .int(lane))]))
                }
                out.append(complete("mark", "worker", tid: lane, ev.start, ev.end, cycleArgs))
            }
        }
        return JSONValue.object([
            JSONMember("traceEvents", .array(out)),
            JSONMember("displayTimeUnit", .string("ms")),
            JSONMember("otherData", .object([
                JSONMember("generator", .string("heaplab replay --allocator gc --timeline")),
                JSONMember("replay_seconds", .double(replayEnd - replayStart)),
            ])),
        ]).serialized(pretty: false) + "\n"
    }
}
