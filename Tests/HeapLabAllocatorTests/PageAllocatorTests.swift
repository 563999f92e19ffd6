// The page allocator against a plain array of pages: random runs allocated and freed across
// three chunks, checking after every step that each chunk's summary (free run at its start,
// longest free run, free run at its end) matches the array and that allocation is first fit
// by address, runs crossing chunk boundaries included.

import Testing
@testable import HeapLabAllocator

@Suite struct PageAllocatorTests {
    /// (start, max, end) of chunk `c` computed naively from the model.
    static func naiveSummary(_ used: [Bool], chunk c: Int) -> (Int, Int, Int) {
        let pages = used[(c * 512)..<((c + 1) * 512)]
        let start = pages.firstIndex(of: true).map { $0 - c * 512 } ?? 512
        let end = pages.lastIndex(of: true).map { (c + 1) * 512 - 1 - $0 } ?? 512
        var longest = 0, run = 0
        for u in pages {
            run = u ? 0 : run + 1
            longest = max(longest, run)
        }
        return (start, longest, end)
    }

    /// First index of `n` consecutive free pages in the model.
    static func firstFit(_ used: [Bool], _ n: Int) -> Int? {
        var run = 0
        for (i, u) in used.enumerated() {
            run = u ? 0 : run + 1
            if run == n { return i - n + 1 }
        }
        return nil
    }

    @Test(arguments: [1, 2, 3])
    func summariesAndFirstFitMatchAModel(seed: UInt64) throws {
        let chunks = 3
        var pa = try #require(PageAllocator(maxChunks: chunks))
        pa.grow(chunks: chunks)
        var used = [Bool](repeating: false, count: chunks * 512)
        var live: [(Int, Int)] = []
        var rng = SplitMix64(state: seed)
        for step in 0..<3_000 {
            // Mostly single pages (a fragmented bitmap), sometimes long runs.
            let allocate = live.isEmpty || rng.next() % 100 < 55
            if allocate {
                let n = rng.next() % 10 == 0 ? Int(rng.next() % 700) + 1 : Int(rng.next() % 3) + 1
                let expected = Self.firstFit(used, n)
                let got = pa.alloc(n)?.page
                #expect(got == expected, "step \(step): alloc(\(n))")
                guard let page = got, got == expected else { return }
                for p in page..<(page + n) { used[p] = true }
                live.append((page, n))
            } else {
                let (page, n) = live.remove(at: Int(rng.next() % UInt64(live.count)))
                pa.free(page, n)
                for p in page..<(page + n) { used[p] = false }
            }
            for c in 0..<chunks {
                let s = pa.summaries[c]
                let got = (PageAllocator.start(s), PageAllocator.max(s), PageAllocator.end(s))
                let want = Self.naiveSummary(used, chunk: c)
                #expect(got == want, "step \(step), chunk \(c)")
                if got != want { return }
            }
        }
    }
}
