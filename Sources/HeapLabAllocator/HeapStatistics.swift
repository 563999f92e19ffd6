// Heap statistics, with Go's names (runtime/mstats.go, runtime/metrics).
//
//   heapSys       bytes of arenas mapped from the OS
//   heapInUse     bytes in spans holding objects
//   heapIdle      heapSys - heapInUse: free pages, resident or released
//   heapReleased  idle bytes returned to the OS (scavenged)
//   metadata      span headers (mspanSys), bitmaps, mcaches (mcacheSys), page map and
//                 page-allocator bitmaps: memory the heap uses to describe itself
//
// Object counts come from two places: allocations are counted per mcache when a span is
// cached (all of its free slots) and corrected when it is given back (slots never handed out),
// as Go's mcache does; live objects are counted by walking the spans (allocCount, less frees
// still waiting on remote-free stacks). Frees = allocations - live. The walk reads spans that
// other threads may be using, so figures are exact when the mutators are quiescent, and
// approximate (never corrupting) otherwise; call flush first for exact allocation counts.

public struct SizeClassStatistics: Sendable, Equatable {
    public var sizeClass: Int
    public var objectSize: Int
    public var allocations: Int
    public var frees: Int
    public var liveObjects: Int
    public var spans: Int
}

public struct HeapStatistics: Sendable, Equatable {
    public var heapSys: Int
    public var heapInUse: Int
    public var heapIdle: Int
    public var heapReleased: Int
    public var metadataBytes: Int
    public var spanMetadataBytes: Int
    public var mcacheMetadataBytes: Int
    public var bitmapBytes: Int
    public var pageMapBytes: Int
    public var liveObjects: Int
    public var liveBytes: Int
    public var totalAllocs: Int
    public var totalFrees: Int
    public var tinyAllocs: Int
    public var tinyBlocks: Int
    public var largeAllocs: Int
    public var largeFrees: Int
    public var largeLiveBytes: Int
    /// Size classes 1...67 (index 0 is class 1).
    public var perClass: [SizeClassStatistics]
}

extension Heap {
    /// Reads the heap's statistics. `caches` are the live ThreadCaches whose counters should
    /// be included (those released are already folded in).
    public func statistics(including caches: [ThreadCache] = []) -> HeapStatistics {
        let s = state
        var allocs = [Int](repeating: 0, count: AllocatorConstants.numSizeClasses)
        var stacked = [Int](repeating: 0, count: AllocatorConstants.numSizeClasses)
        var live = [Int](repeating: 0, count: AllocatorConstants.numSizeClasses)
        var tinyAllocs = 0, tinyBlocks = 0
        s.pointee.lock.lock()
        for cls in 0..<AllocatorConstants.numSizeClasses {
            allocs[cls] = s.pointee.flushedStats.pointee.smallAllocCount[cls]
        }
        tinyAllocs = s.pointee.flushedStats.pointee.tinyAllocs
        tinyBlocks = s.pointee.flushedStats.pointee.tinyBlocks
        for cache in caches {
            let c = cache.c
            for cls in 0..<AllocatorConstants.numSizeClasses {
                allocs[cls] += c.pointee.stats.smallAllocCount[cls]
            }
            // Slots the cached spans have not handed out yet were counted as allocated.
            for spc in 0..<AllocatorConstants.numSpanClasses {
                let span = c.pointee.alloc[spc]
                if span != s.pointee.emptySpan { allocs[spc >> 1] -= span.unallocatedSlots() }
                // Objects on the free stacks are freed as far as the program is concerned;
                // allocations the stacks served are counted there.
                stacked[spc >> 1] += Int(c.pointee.stackCounts[spc * 2])
                allocs[spc >> 1] += Int(c.pointee.stackCounts[spc * 2 + 1])
            }
            tinyAllocs += c.pointee.stats.tinyAllocs
            tinyBlocks += c.pointee.stats.tinyBlocks
        }
        // Walk the spans through the page map.
        let mappedPages = s.pointee.mappedBytes >> AllocatorConstants.pageShift
        var page = 0
        var liveBytes = 0
        while page < mappedPages {
            guard let span = s.pointee.pageMap[page] else { page += 1; continue }
            page += Int(span.pointee.npages)
            let cls = span.pointee.sizeClass
            if cls == 0 { continue }
            var pendingFrees = 0
            var head = span.pointee.remoteFree
            while head != 0 && pendingFrees < Int(span.pointee.nelems) {
                pendingFrees += 1
                head = UnsafeRawPointer(bitPattern: head)!.load(as: UInt.self)
            }
            let n = Int(span.pointee.allocCount) - pendingFrees
            live[cls] += n
            liveBytes += n * Int(span.pointee.elemSize)
        }
        for cls in 0..<AllocatorConstants.numSizeClasses {
            live[cls] -= stacked[cls]
            liveBytes -= stacked[cls] * SizeClasses.table[cls].size
        }
        var perClass: [SizeClassStatistics] = []
        for cls in 1..<AllocatorConstants.numSizeClasses {
            perClass.append(SizeClassStatistics(
                sizeClass: cls, objectSize: SizeClasses.table[cls].size,
                allocations: allocs[cls], frees: allocs[cls] - live[cls],
                liveObjects: live[cls], spans: s.pointee.spanCountByClass[cls]))
        }
        let heapSys = s.pointee.mappedBytes
        let heapInUse = s.pointee.inUsePages << AllocatorConstants.pageShift
        let released = s.pointee.pages.scavengedPages << AllocatorConstants.pageShift
        // Span records hold the header and the bitmaps; split them by their sizes.
        var spanBytes = 0, bitmapBytes = 0
        let tinyRecord = s.pointee.tinyBitmaps.recordSize
        spanBytes += s.pointee.tinyBitmaps.mappedBytes * MemoryLayout<MSpan>.stride / tinyRecord
        bitmapBytes += s.pointee.tinyBitmaps.mappedBytes - s.pointee.tinyBitmaps.mappedBytes * MemoryLayout<MSpan>.stride / tinyRecord
        for w in 0...16 {
            let f = s.pointee.bitmaps[w]
            let headers = f.mappedBytes * MemoryLayout<MSpan>.stride / f.recordSize
            spanBytes += headers
            bitmapBytes += f.mappedBytes - headers
        }
        let cacheBytes = s.pointee.cacheHeaders.mappedBytes
        // Only the touched part of the page map costs memory: the entries of mapped arenas.
        let pageMapBytes = mappedPages * 8 + s.pointee.pages.metadataBytes * s.pointee.pages.chunkLimit / max(1, s.pointee.pages.maxChunks)
        let largeAllocs = s.pointee.largeAllocs, largeFrees = s.pointee.largeFrees
        let largeLive = s.pointee.largeLiveBytes
        s.pointee.lock.unlock()
        let small = perClass.reduce(0) { $0 + $1.allocations }
        let smallFrees = perClass.reduce(0) { $0 + $1.frees }
        return HeapStatistics(
            heapSys: heapSys, heapInUse: heapInUse, heapIdle: heapSys - heapInUse,
            heapReleased: released,
            metadataBytes: spanBytes + cacheBytes + bitmapBytes + pageMapBytes,
            spanMetadataBytes: spanBytes, mcacheMetadataBytes: cacheBytes,
            bitmapBytes: bitmapBytes, pageMapBytes: pageMapBytes,
            liveObjects: perClass.reduce(0) { $0 + $1.liveObjects } + largeAllocs - largeFrees,
            liveBytes: liveBytes + largeLive,
            totalAllocs: small + largeAllocs, totalFrees: smallFrees + largeFrees,
            tinyAllocs: tinyAllocs, tinyBlocks: tinyBlocks,
            largeAllocs: largeAllocs, largeFrees: largeFrees, largeLiveBytes: largeLive,
            perClass: perClass)
    }
}

extension Heap {
    /// Memory the heap holds besides its in-use spans, from counters only (no span walk):
    /// idle pages still resident plus metadata. For the pacer's memory-limit goal.
    func overheadBytes() -> Int {
        let s = state
        s.pointee.lock.lock()
        defer { s.pointee.lock.unlock() }
        let idleResident = s.pointee.pages.freeUnscavengedPages << AllocatorConstants.pageShift
        var metadata = s.pointee.tinyBitmaps.mappedBytes + s.pointee.cacheHeaders.mappedBytes
        for w in 0...16 { metadata += s.pointee.bitmaps[w].mappedBytes }
        let mappedPages = s.pointee.mappedBytes >> AllocatorConstants.pageShift
        return idleResident + metadata + mappedPages * 8
    }
}

extension ThreadCache {
    /// Gives this cache's spans back to the central lists (its counters stay with it).
    /// Afterwards the heap's live counts are exact without walking this cache.
    public func flushSpans() { flush() }
}
