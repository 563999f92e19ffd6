// Trace thread numbers for the OS thread ids found in malloc logs.
//
// A HeapLab trace names at most 256 mutator threads (0..<256); a real program may run many
// more over its life. Numbers are handed out in order of first appearance (0, 1, 2, ...).
// Once all 256 have been handed out, a new thread id gets the number of a thread that has
// finished (Android's `thread_done`, the recorder's thread-exit event), oldest finished
// first. Only when no finished number is left does the import fail.
//
// A finished thread keeps its number until the number is actually given to another thread:
// a thread still frees a little after it reports its end (later thread-local destructors),
// and Linux may reuse a thread id; those records stay on the old number while it is free.
//
// Invariants:
//   - `owner[n]` is the thread id number n was last given to; `numbers[tid] == n` counts
//     only while `owner[n] == tid`;
//   - `finishedQueue` holds each number at most once (`queued[n]`).
import HeapLabTrace

/// Maps OS thread ids to trace thread numbers, reusing the numbers of finished threads.
public struct ThreadNumbering: Sendable {
    private var numbers: [UInt64: UInt64] = [:]
    private var owner: [UInt64] = []
    private var queued: [Bool] = []
    private var finishedQueue: [UInt64] = []
    private var finishedHead = 0
    /// How many times a finished thread's number was given to a new thread id.
    public private(set) var reusedCount = 0

    public init() {}

    /// The trace thread number of OS thread `tid`, assigning one on first sight; nil when
    /// all 256 numbers belong to threads that have not finished.
    public mutating func number(for tid: UInt64) -> UInt64? {
        if let n = numbers[tid], owner[Int(n)] == tid { return n }
        let n: UInt64
        if UInt64(owner.count) < TraceLimits.maxThreads {
            n = UInt64(owner.count)
            owner.append(tid)
            queued.append(false)
        } else {
            guard finishedHead < finishedQueue.count else { return nil }
            n = finishedQueue[finishedHead]
            finishedHead += 1
            if finishedHead >= 1024 && finishedHead * 2 >= finishedQueue.count {
                finishedQueue.removeFirst(finishedHead)
                finishedHead = 0
            }
            queued[Int(n)] = false
            let previous = owner[Int(n)]
            if numbers[previous] == n { numbers.removeValue(forKey: previous) }
            owner[Int(n)] = tid
            reusedCount += 1
        }
        numbers[tid] = n
        return n
    }

    /// OS thread `tid` has ended; its number may go to a later thread. Unknown ids are
    /// ignored (a thread that never allocated).
    public mutating func finish(_ tid: UInt64) {
        guard let n = numbers[tid], owner[Int(n)] == tid, !queued[Int(n)] else { return }
        queued[Int(n)] = true
        finishedQueue.append(n)
    }
}
