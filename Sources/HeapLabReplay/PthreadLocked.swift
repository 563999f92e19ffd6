// A value behind a pthread mutex, for the state a replay's threads share (the collector back
// end's events and worker times, the snapshot writer's queue).
//
// Not Synchronization.Mutex: on Linux that waits on a raw futex, whose ordering
// ThreadSanitizer cannot see, so every access through it would be reported as a race and
// scripts/tsan.sh could not check the multi-thread replays. Invariant: `value` is only
// touched inside `withLock`.

#if canImport(Glibc)
import Glibc
#endif

final class PthreadLocked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
