// The page allocator: which 8 KiB pages of the heap are free, and which of those the OS has
// taken back. Modelled on Go 1.14+'s pageAlloc (runtime/mpagealloc.go), without its radix tree.
//
// The heap's address range is cut into chunks of 512 pages (4 MiB). Each chunk has
//   - an in-use bitmap (512 bits: 1 = page allocated to a span),
//   - a scavenged bitmap (512 bits: 1 = free page whose memory was returned to the OS),
//   - a summary (start, max, end): the free run at the chunk's start, its longest free run,
//     and the free run at its end, as in Go's pallocSum.
// Allocation is address-ordered first fit: chunks are scanned from a search hint (the lowest
// chunk that may have a free page), carrying the free run at the end of one chunk into the
// next so that runs cross chunk boundaries; a chunk whose summary shows a long enough run is
// searched bit by bit (word at a time). Go adds radix levels of summaries above the chunks so
// that a search is O(log heap); we scan the chunk summaries linearly, which costs one 8-byte
// read per 4 MiB of heap (2,048 reads for an 8 GiB heap) on the span slow path only, never on
// the object fast path. First fit by address keeps the heap dense at low addresses, so that
// the scavenger, which works from the top, finds long free runs.
//
// Invariants: below `chunkLimit` (chunks of mapped arenas), a chunk's summary always matches
// its bitmap; the hint is <= the lowest chunk with a free page; only chunks below chunkLimit
// are searched, freed or scavenged; scavenged bits are set only on free pages.
// Not thread-safe: the heap lock protects it.

@usableFromInline
struct PageAllocator {
    static let pagesPerChunk = 512
    static let wordsPerChunk = pagesPerChunk / 64

    let maxChunks: Int
    /// In-use bits, wordsPerChunk words per chunk.
    let inUse: UnsafeMutablePointer<UInt64>
    /// Scavenged bits, wordsPerChunk words per chunk.
    let scavenged: UnsafeMutablePointer<UInt64>
    /// Per chunk: start | max << 16 | end << 32 (each 0...512).
    let summaries: UnsafeMutablePointer<UInt64>
    /// Chunks below this are in mapped arenas and may be allocated from.
    var chunkLimit = 0
    /// No chunk below the hint has a free page.
    var searchHint = 0
    /// Free pages whose memory the OS holds (not scavenged), and scavenged free pages.
    var freeUnscavengedPages = 0
    var scavengedPages = 0
    let metadataBytes: Int

    init?(maxChunks: Int) {
        self.maxChunks = maxChunks
        let bitmapBytes = maxChunks * Self.wordsPerChunk * 8
        let total = bitmapBytes * 2 + maxChunks * 8
        guard case .success(let p) = OSMemory.mapFresh(total) else { return nil }
        inUse = p.bindMemory(to: UInt64.self, capacity: maxChunks * Self.wordsPerChunk)
        scavenged = (p + bitmapBytes).bindMemory(to: UInt64.self, capacity: maxChunks * Self.wordsPerChunk)
        summaries = (p + 2 * bitmapBytes).bindMemory(to: UInt64.self, capacity: maxChunks)
        metadataBytes = total
        // Chunks at or above chunkLimit are never searched, freed or scavenged, so their
        // (zero) bits are never read: the mapping stays untouched until arenas are mapped,
        // and costs nothing resident.
    }

    /// Makes `chunks` more chunks available (a newly mapped arena). Their pages are free
    /// and fresh (zero, not scavenged).
    mutating func grow(chunks: Int) {
        for c in chunkLimit..<(chunkLimit + chunks) {
            for w in 0..<Self.wordsPerChunk {
                inUse[c * Self.wordsPerChunk + w] = 0
                scavenged[c * Self.wordsPerChunk + w] = 0
            }
            summaries[c] = Self.pack(512, 512, 512)
        }
        searchHint = min(searchHint, chunkLimit)
        chunkLimit += chunks
        freeUnscavengedPages += chunks * Self.pagesPerChunk
    }

    static func pack(_ start: Int, _ max: Int, _ end: Int) -> UInt64 {
        UInt64(start) | UInt64(max) << 16 | UInt64(end) << 32
    }

    @inline(__always) static func start(_ s: UInt64) -> Int { Int(s & 0xFFFF) }
    @inline(__always) static func max(_ s: UInt64) -> Int { Int((s >> 16) & 0xFFFF) }
    @inline(__always) static func end(_ s: UInt64) -> Int { Int((s >> 32) & 0xFFFF) }

    /// Recomputes chunk `c`'s summary from its bitmap: per word, the free runs at its two
    /// ends come from bit counts, and the longest run inside it is looked for only when it
    /// could beat the longest so far (a fragmented chunk, as single-page spans leave, was
    /// walked run by run before: a seventh of a replay thread's time on gen-lru).
    mutating func summarize(_ c: Int) {
        let bits = inUse + c * Self.wordsPerChunk
        var start = 0, longest = 0, run = 0
        var sawUsed = false
        for w in 0..<Self.wordsPerChunk {
            let word = bits[w]
            if word == 0 {
                run += 64
                continue
            }
            // Page i of the word is bit i: free pages below the first used one continue the
            // current run; those above the last used one start the next.
            let head = word.trailingZeroBitCount
            let tail = word.leadingZeroBitCount
            if !sawUsed { start = run + head; sawUsed = true }
            longest = Swift.max(longest, run + head)
            let inside = 64 - head - tail                     // from first to last used page
            if inside - word.nonzeroBitCount > longest {
                // Longest run of free pages between them: ones of the complement, shrunk by
                // one per step until none is left.
                var free = ~(word >> UInt64(head))
                if inside < 64 { free &= (UInt64(1) << UInt64(inside)) - 1 }
                var length = 0
                while free != 0 {
                    free &= free >> 1
                    length += 1
                }
                longest = Swift.max(longest, length)
            }
            run = tail
        }
        if !sawUsed { start = run }
        longest = Swift.max(longest, run)
        summaries[c] = Self.pack(start, longest, run)
    }

    /// First run of `n` free pages inside chunk `c`, as a page index within the chunk.
    func findInChunk(_ c: Int, _ n: Int) -> Int? {
        let bits = inUse + c * Self.wordsPerChunk
        var run = 0
        var page = 0
        while page < Self.pagesPerChunk {
            let word = bits[page >> 6]
            let rest = word >> UInt64(page & 63)
            let remainingInWord = 64 - (page & 63)
            if rest & 1 == 0 {
                let free = rest == 0 ? remainingInWord : Swift.min(rest.trailingZeroBitCount, remainingInWord)
                run += free
                page += free
                if run >= n { return page - run }
            } else {
                run = 0
                page += Swift.min((~rest).trailingZeroBitCount, remainingInWord)
            }
        }
        return nil
    }

    /// Allocates `n` contiguous pages, first fit by address. Returns the first page index
    /// (relative to the heap base) and how many of the pages had been scavenged.
    mutating func alloc(_ n: Int) -> (page: Int, scavenged: Int)? {
        var carry = 0  // free pages running into chunk c from below
        var c = searchHint
        var advancedHint = false
        while c < chunkLimit {
            let s = summaries[c]
            if !advancedHint {
                if Self.max(s) == 0 { searchHint = c + 1 } else { advancedHint = true }
            }
            if carry + Self.start(s) >= n {
                let first = c * Self.pagesPerChunk - carry
                return (first, take(first, n))
            }
            if Self.max(s) >= n, let p = findInChunk(c, n) {
                let first = c * Self.pagesPerChunk + p
                return (first, take(first, n))
            }
            carry = Self.start(s) == Self.pagesPerChunk ? carry + Self.pagesPerChunk : Self.end(s)
            c += 1
        }
        return nil
    }

    /// Marks pages [first, first+n) in use; returns how many were scavenged.
    private mutating func take(_ first: Int, _ n: Int) -> Int {
        var scav = 0
        forEachWordRange(first, n) { word, mask in
            inUse[word] |= mask
            scav += (scavenged[word] & mask).nonzeroBitCount
            scavenged[word] &= ~mask
        }
        resummarize(first, n)
        scavengedPages -= scav
        freeUnscavengedPages -= n - scav
        return scav
    }

    /// Frees pages [first, first+n).
    mutating func free(_ first: Int, _ n: Int) {
        forEachWordRange(first, n) { word, mask in inUse[word] &= ~mask }
        resummarize(first, n)
        searchHint = Swift.min(searchHint, first / Self.pagesPerChunk)
        freeUnscavengedPages += n
    }

    private mutating func resummarize(_ first: Int, _ n: Int) {
        for c in (first / Self.pagesPerChunk)...((first + n - 1) / Self.pagesPerChunk) { summarize(c) }
    }

    /// Calls `body(wordIndex, mask)` for each bitmap word covering pages [first, first+n).
    @inline(__always)
    private func forEachWordRange(_ first: Int, _ n: Int, _ body: (Int, UInt64) -> Void) {
        var page = first
        let end = first + n
        while page < end {
            let bit = page & 63
            let count = Swift.min(64 - bit, end - page)
            let mask = count == 64 ? ~UInt64(0) : ((UInt64(1) << UInt64(count)) - 1) << UInt64(bit)
            body(page >> 6, mask)
            page += count
        }
    }

    /// Finds, from the top of the heap down, free pages that are not yet scavenged and takes
    /// up to `maxPages` of them out of the free set (marks them in use, so that no span can
    /// be made of them), reporting each run to `run(firstPage, count)`. The caller releases
    /// them to the OS without the heap lock and gives them back with `returnScavenged`, as
    /// Go's scavenger does (allocRange, unlock, sysUnused, lock, free): the madvise of a batch
    /// takes a TLB shootdown and up to a few hundred microseconds, which the heap lock must
    /// not be held for (mutators refilling spans and the collector's pauses take it).
    /// Returns the number of pages taken. (Go's scavenger also works from the highest
    /// addresses down, so the memory the allocator will reuse first stays resident.)
    mutating func takeForScavenging(maxPages: Int, _ run: (Int, Int) -> Void) -> Int {
        var done = 0
        var c = chunkLimit - 1
        while c >= 0 && done < maxPages {
            let base = c * Self.wordsPerChunk
            var w = Self.wordsPerChunk - 1
            while w >= 0 && done < maxPages {
                // Candidates: free and not scavenged.
                var candidates = ~inUse[base + w] & ~scavenged[base + w]
                while candidates != 0 && done < maxPages {
                    // Highest run of candidate bits in this word.
                    let top = 63 - candidates.leadingZeroBitCount
                    var low = top
                    while low > 0 && candidates & (UInt64(1) << UInt64(low - 1)) != 0 && (top - low + 1) < maxPages - done {
                        low -= 1
                    }
                    let count = top - low + 1
                    let mask = (count == 64 ? ~UInt64(0) : ((UInt64(1) << UInt64(count)) - 1)) << UInt64(low)
                    inUse[base + w] |= mask
                    candidates &= ~mask
                    run((base + w) * 64 + low, count)
                    done += count
                }
                w -= 1
            }
            if done > 0 { summarize(c) }
            c -= 1
        }
        freeUnscavengedPages -= done
        return done
    }

    /// Gives back pages taken by `takeForScavenging`, now released to the OS: free again,
    /// and scavenged (a span made of them needs no clearing).
    mutating func returnScavenged(_ first: Int, _ n: Int) {
        forEachWordRange(first, n) { word, mask in
            inUse[word] &= ~mask
            scavenged[word] |= mask
        }
        resummarize(first, n)
        searchHint = Swift.min(searchHint, first / Self.pagesPerChunk)
        scavengedPages += n
    }
}
