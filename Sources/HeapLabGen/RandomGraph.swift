// random-graph: a mutator making random changes to an object graph.
//
// Each of `threads` threads keeps a list of roots (each entry is one hold it owns, at most
// `roots`); thread 0 also allocates a shared Global object (8 slots) held for the whole
// run, through which threads exchange objects. Each step, on a thread chosen at random for
// a batch of 1...32 steps:
//   - allocate (40%): an object with 0...4 pointer slots (size 8*slots plus 0...15 words,
//     at least 8 bytes), held as a new root; half of the time also stored into a slot of
//     another root (or of Global);
//   - store (25%): `w SRC SLOT DST`, SRC a root (or Global) with slots, DST another root,
//     or nil one time in eight;
//   - load (20%): follow a non-nil slot of a root (or of Global) and take a hold on what
//     it points to (`h`), which becomes a root of this thread;
//   - drop (15%, or whenever the thread has `roots` roots): `f` on a random root.
// Overwritten slots and dropped roots make whole subgraphs unreachable at once. At the
// end every thread drops its roots and Global is dropped.
//
// Valid without computing reachability: every object named is held at that moment (a
// root, or Global), or is the target of a slot of a held object (load), and therefore
// reachable; a hold is only dropped by the thread that owns it.
public import HeapLabTrace

public struct RandomGraph: TraceGenerator {
    public var threads = 1
    public var ops = 100_000
    public var roots = 64

    static let globalSlots: UInt64 = 8

    public init() {}

    public func validate() -> String? {
        if threads < 1 || threads > 256 { return "--threads must be 1...256" }
        if ops < 0 || ops > 1 << 32 { return "--ops must be 0...2^32" }
        if roots < 1 || roots > 1 << 20 { return "--roots must be 1...2^20" }
        return nil
    }

    public func generate(seed: UInt64, into out: inout TraceOutput) throws(InputError) {
        var random = GenRandom(seed: seed)
        for n in 0...4 { try out.site(UInt64(n + 1), "Object\(n)") }
        try out.site(6, "Global")
        // The model: slot contents per object ID (flat; 0 = nil), first slot index per ID.
        var slotStart: [Int] = [0]        // index 0 unused (IDs start at 1)
        var slotCount: [Int] = [0]
        var slots: [UInt64] = []
        func record(_ id: UInt64, ptrs: Int) {
            precondition(Int(id) == slotStart.count)
            slotStart.append(slots.count)
            slotCount.append(ptrs)
            slots.append(contentsOf: repeatElement(0, count: ptrs))
        }
        let global = try out.alloc(size: Self.globalSlots * 8, ptrs: Self.globalSlots, site: 6)
        record(global, ptrs: Int(Self.globalSlots))
        var rootsOf = [[UInt64]](repeating: [], count: threads)

        /// A held object with slots (a root or Global), or nil.
        func holderWithSlots(_ t: Int, _ r: inout GenRandom) -> UInt64? {
            let mine = rootsOf[t]
            for _ in 0..<4 where !mine.isEmpty {
                let candidate = mine[r.index(mine.count)]
                if slotCount[Int(candidate)] > 0 { return candidate }
            }
            return r.chance(1, in: 2) || mine.isEmpty ? global : nil
        }

        var done = 0
        while done < ops {
            let t = random.index(threads)
            out.thread(UInt64(t))
            let batch = min(Int(random.inRange(1, 32)), ops - done)
            for _ in 0..<batch {
                var roll = random.below(100)
                if rootsOf[t].count >= roots { roll = 99 }
                if rootsOf[t].isEmpty { roll = 0 }
                if roll < 40 {
                    let ptrs = random.index(5)
                    let size = UInt64(max(8, ptrs * 8)) + 8 * random.below(16)
                    let object = try out.alloc(size: size, ptrs: UInt64(ptrs), site: UInt64(ptrs + 1))
                    record(object, ptrs: ptrs)
                    if random.chance(1, in: 2), let holder = holderWithSlots(t, &random), holder != object {
                        let slot = random.index(slotCount[Int(holder)])
                        try out.write(holder, UInt64(slot), object)
                        slots[slotStart[Int(holder)] + slot] = object
                    }
                    rootsOf[t].append(object)
                } else if roll < 65 {
                    guard let src = holderWithSlots(t, &random) else { continue }
                    let slot = random.index(slotCount[Int(src)])
                    let dst: UInt64? = random.chance(1, in: 8) ? nil : rootsOf[t][random.index(rootsOf[t].count)]
                    try out.write(src, UInt64(slot), dst)
                    slots[slotStart[Int(src)] + slot] = dst ?? 0
                } else if roll < 85 {
                    guard let src = holderWithSlots(t, &random) else { continue }
                    let target = slots[slotStart[Int(src)] + random.index(slotCount[Int(src)])]
                    if target == 0 { continue }
                    try out.hold(target)
                    rootsOf[t].append(target)
                } else {
                    let i = random.index(rootsOf[t].count)
                    let dropped = rootsOf[t][i]
                    rootsOf[t][i] = rootsOf[t][rootsOf[t].count - 1]
                    rootsOf[t].removeLast()
                    try out.free(dropped)
                }
            }
            done += batch
        }
        for t in 0..<threads {
            out.thread(UInt64(t))
            for root in rootsOf[t] { try out.free(root) }
        }
        out.thread(0)
        try out.free(global)
    }
}
