// Heap bits: which words of the heap hold pointers (Go's heap bitmap, one bit per word as in
// Go 1.22's; Go 1.19 kept two bits per word).
//
// The bitmap covers the whole reservation, one bit per 8-byte word, in a NORESERVE mapping
// (1/64 of the reservation, touched only where scan spans live: 1.6% of scan-span bytes).
// A scan object's first `ptrs` words are pointer slots (the trace's PTRS); allocation in GC
// mode sets their bits and clears the rest of the object's words, so the bits of a slot's
// previous occupant never leak. The marker scans exactly the set bits of an object.
// Noscan spans are never scanned and their bits are never read.

#if canImport(Glibc)
import Glibc
#endif
import Synchronization

struct HeapBits {
    let base: UInt
    let words: UnsafeMutablePointer<UInt64>
    let bytes: Int

    init?(heapBase: UInt, reservedBytes: Int) {
        bytes = reservedBytes / 64
        guard case .success(let p) = OSMemory.mapFresh(bytes) else { return nil }
        base = heapBase
        words = p.bindMemory(to: UInt64.self, capacity: bytes / 8)
    }

    /// Marks words [0, ptrs) of the object at `addr` as pointers and [ptrs, sizeWords) not.
    ///
    /// One load and one store per bitmap word (64 heap words), not atomic read-modify-writes:
    /// a bitmap word covers 512 bytes, inside one span (spans are page-aligned), and only the
    /// span's owner allocates in it, so each word has a single writer at a time (handed on
    /// through the mcentral's lock); markers only read. Relaxed atomics keep those reads
    /// defined; on x86 they are plain moves.
    @inline(__always)
    func setObject(_ addr: UInt, ptrs: Int, sizeWords: Int) {
        let first = Int((addr &- base) &>> 3)
        let inWord = first & 63
        if inWord &+ sizeWords <= 64 {
            // The object's bits are in one bitmap word (every object under 512 bytes whose
            // slot does not straddle a 512-byte boundary): one masked update. Objects have
            // 1...64 words here and 0...sizeWords pointer slots; masks without branches.
            let shift = UInt64(truncatingIfNeeded: inWord)
            let objectMask = (UInt64.max &>> UInt64(truncatingIfNeeded: 64 &- sizeWords)) &<< shift
            let pointerMask = ptrs == 0 ? 0 : (UInt64.max &>> UInt64(truncatingIfNeeded: 64 &- ptrs)) &<< shift
            let word = UnsafeMutableRawPointer(words + (first &>> 6)).assumingMemoryBound(to: Atomic<UInt64>.self)
            word.pointee.store((word.pointee.load(ordering: .relaxed) & ~objectMask) | pointerMask, ordering: .relaxed)
            return
        }
        setObjectSpanningWords(first, ptrs: ptrs, sizeWords: sizeWords)
    }

    /// setObject for an object whose bits span bitmap words.
    @inline(never)
    func setObjectSpanningWords(_ first: Int, ptrs: Int, sizeWords: Int) {
        var bit = first
        let end = bit &+ sizeWords
        let pointerEnd = bit &+ ptrs
        while bit < end {
            let inWord = bit & 63
            let n = min(64 &- inWord, end &- bit)
            let p = max(0, min(pointerEnd &- bit, n))
            let objectMask: UInt64 = (n == 64 ? ~0 : ((UInt64(1) &<< UInt64(n)) &- 1)) &<< UInt64(inWord)
            let pointerMask: UInt64 = (p == 64 ? ~0 : ((UInt64(1) &<< UInt64(p)) &- 1)) &<< UInt64(inWord)
            let word = UnsafeMutableRawPointer(words + (bit &>> 6)).assumingMemoryBound(to: Atomic<UInt64>.self)
            let old = word.pointee.load(ordering: .relaxed)
            word.pointee.store((old & ~objectMask) | pointerMask, ordering: .relaxed)
            bit &+= n
        }
    }

    /// Calls `body` with the address of each pointer word of [addr, addr + sizeWords*8).
    @inline(__always)
    func forEachPointerWord(_ addr: UInt, sizeWords: Int, _ body: (UInt) -> Void) {
        var bit = Int((addr &- base) &>> 3)
        let end = bit + sizeWords
        while bit < end {
            let inWord = bit & 63
            let n = min(64 - inWord, end - bit)
            var w = UnsafeMutableRawPointer(words + (bit >> 6)).assumingMemoryBound(to: Atomic<UInt64>.self)
                .pointee.load(ordering: .relaxed) >> UInt64(inWord)
            if n < 64 { w &= (UInt64(1) << UInt64(n)) - 1 }
            while w != 0 {
                let i = w.trailingZeroBitCount
                body(base &+ UInt(bit + i) &<< 3)
                w &= w &- 1
            }
            bit += n
        }
    }
}
