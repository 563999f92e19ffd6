// Verify mode: after every concurrent mark, with the world stopped, re-mark the heap from the
// roots into a separate set and fail loudly on any reachable object the concurrent mark left
// white (which the sweep would free while live). The failure names the object, its span and
// a path to it from a root. Swept memory is poisoned (Sweeping.swift) so a use after free
// shows too. The check is independent of the marker: its own traversal, its own visited set.

#if canImport(Glibc)
import Glibc
#endif

extension Collector {
    /// Base address of the allocated object containing `addr`, or nil.
    func objectBase(_ addr: UInt) -> (base: UInt, span: UnsafeMutablePointer<MSpan>, index: Int)? {
        guard let span = heap.state.spanOf(addr), span.pointee.state == SpanState.inUse.rawValue else { return nil }
        if span.pointee.divMul == 0 { return (span.pointee.startAddr, span, 0) }
        let index = Int(span.objectIndex(ofOffset: addr - span.pointee.startAddr))
        if index >= Int(span.pointee.nelems) { return nil }
        if span.isFree(index) { return nil }
        return (span.pointee.startAddr + UInt(index * Int(span.pointee.elemSize)), span, index)
    }

    /// Whether `p` is (inside) an object the heap still holds: false once it was swept.
    public func isAllocated(_ p: UnsafeRawPointer) -> Bool { objectBase(UInt(bitPattern: p)) != nil }

    func verifyMark(_ ms: [Mutator]) {
        var parent: [UInt: UInt] = [:]
        var rootThread: [UInt: Int] = [:]
        var queue: [UInt] = []
        for (t, m) in ms.enumerated() {
            m.forEachRootAddress { object, _ in
                guard let (base, _, _) = objectBase(object), parent[base] == nil else { return }
                parent[base] = 0
                rootThread[base] = t
                queue.append(base)
            }
        }
        var missed: [UInt] = []
        var head = 0
        let heapBase = heap.state.pointee.arenaBase
        let reserved = heap.state.pointee.reservedBytes
        while head < queue.count {
            let base = queue[head]
            head += 1
            guard let (_, span, index) = objectBase(base) else { continue }
            if !span.isMarked(index) { missed.append(base) }
            if span.pointee.noscan { continue }
            let size = span.pointee.divMul == 0 ? Int(span.pointee.npages) << AllocatorConstants.pageShift : Int(span.pointee.elemSize)
            bits.forEachPointerWord(base, sizeWords: size >> 3) { word in
                let value = UnsafeRawPointer(bitPattern: word)!.load(as: UInt.self)
                guard value &- heapBase < reserved, let (target, _, _) = objectBase(value), parent[target] == nil else { return }
                parent[target] = base
                queue.append(target)
            }
        }
        guard !missed.isEmpty else { return }
        var messages: [String] = []
        for object in missed.prefix(3) {
            var path: [UInt] = [object]
            var cursor = object
            while let p = parent[cursor], p != 0 { path.append(p); cursor = p }
            let (_, span, _) = objectBase(object)!
            let end = span.pointee.startAddr + UInt(Int(span.pointee.npages) << AllocatorConstants.pageShift)
            let pathText = path.reversed().map { "0x" + String($0, radix: 16) }.joined(separator: " -> ")
            messages.append("gc verify: cycle \(cycleNumber.load(ordering: .relaxed) + 1): object 0x\(String(object, radix: 16)) "
                + "(span 0x\(String(span.pointee.startAddr, radix: 16))-0x\(String(end, radix: 16)), size class \(span.pointee.sizeClass)) "
                + "is reachable but was not marked; path: root of mutator \(rootThread[cursor] ?? -1) -> \(pathText)"
                + (missed.count > 1 ? " (\(missed.count) objects missed in all)" : ""))
        }
        statsLock.withLock { failures.append(contentsOf: messages) }
        if heap.configuration.onFault == .trap {
            fatalError(messages.joined(separator: "\n"))
        }
    }
}
