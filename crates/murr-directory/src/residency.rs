//! The RAM tier: a memory budget for mapped files, with the most recently used parts resident.
//!
//! Without a budget every opened file is read into memory at once (populated maps). With one
//! ([`Residency::start`]), files are mapped without populating and read in page by page as
//! fetches touch them; a background thread keeps the resident part of all tracked maps under
//! the budget. It works on **chunks** of [`CHUNK`] bytes:
//!
//! - **Hot** means "touched since the thread last looked": the fetch path calls [`touch`] for
//!   every row it reads (one relaxed load, and a store the first time per sweep), and the
//!   segment layer [`pin`]s what every lookup reads (headers, footers, key indexes), which is
//!   never evicted.
//! - Every [`Residency::period`], the thread measures the resident pages of each map
//!   (`mincore`). Over budget, it sweeps the chunks in clock order: a chunk touched since the
//!   last sweep gets a second chance (its mark is cleared), an untouched resident one is evicted
//!   (`MADV_PAGEOUT`, else `MADV_DONTNEED`: dropped from the process; the kernel may keep it in
//!   its page cache while memory is free), until the resident total is 90% of the budget. When
//!   the pages touched since the last sweep alone exceed the budget, a second turn of the clock
//!   evicts them too: the budget is a bound.
//! - "Resident" is the process's own: pages mapped into it (`/proc/self/pagemap`), what RSS
//!   counts.
//!
//! Evicting from a read-only map of an immutable file is safe: a later access reads the page
//! from the file again (a major fault, which is the tier's miss).

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::RwLock;

/// The unit of hotness and eviction.
pub const CHUNK: usize = 4 << 10;

/// A tracked map: its address range, per-chunk marks and pinned chunks.
struct Region {
    base: usize,
    len: usize,
    /// Keeps the map alive while the thread works on it; dead once the file's bytes are dropped.
    owner: Weak<memmap2::Mmap>,
    touched: Box<[AtomicU8]>,
    pinned: Box<[AtomicBool]>,
}

impl Region {
    fn chunk_of(&self, addr: usize) -> Option<usize> {
        (addr >= self.base && addr < self.base + self.len).then(|| (addr - self.base) / CHUNK)
    }
}

#[derive(Default)]
struct Registry {
    /// Sorted by base address.
    regions: RwLock<Vec<Arc<Region>>>,
    budget: AtomicU64,
    evicted: AtomicU64,
    resident: AtomicU64,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

/// Whether a budget is in force (then maps are tracked and the fetch path touches rows).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Whether the RAM tier tracks accesses (a memory budget is set).
#[inline]
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Marks the chunk holding `ptr` as used, if it lies in a tracked map.
#[inline]
pub fn touch(ptr: *const u8) {
    touch_all(std::iter::once(ptr));
}

/// [`touch`] for many pointers, under one look at the registry (a fetch's rows).
///
/// (Hinting the kernel with `MADV_WILLNEED` about a fetch's unmarked pages, so that their reads
/// overlap, was measured: no gain on the Zipf bench, 23 vs 27 ms, at a syscall per page.)
pub fn touch_all(ptrs: impl Iterator<Item = *const u8>) {
    if !active() {
        return;
    }
    let regions = registry().regions.read();
    for ptr in ptrs {
        let addr = ptr as usize;
        let i = regions.partition_point(|r| r.base <= addr);
        if i == 0 {
            continue;
        }
        let r = &regions[i - 1];
        if let Some(c) = r.chunk_of(addr) {
            let mark = &r.touched[c];
            if mark.load(Ordering::Relaxed) == 0 {
                mark.store(1, Ordering::Relaxed);
            }
        }
    }
}

/// Keeps the chunks of `bytes` (a part of a tracked map that every lookup reads) resident.
pub fn pin(bytes: &[u8]) {
    if !active() || bytes.is_empty() {
        return;
    }
    let start = bytes.as_ptr() as usize;
    let end = start + bytes.len() - 1;
    let regions = registry().regions.read();
    let i = regions.partition_point(|r| r.base <= start);
    if i == 0 {
        return;
    }
    let r = &regions[i - 1];
    if let (Some(a), Some(b)) = (r.chunk_of(start), r.chunk_of(end)) {
        for p in &r.pinned[a..=b] {
            p.store(true, Ordering::Relaxed);
        }
    }
}

/// Tracks `map` (a map of an immutable file, not populated).
pub(crate) fn register(map: &Arc<memmap2::Mmap>) {
    let chunks = map.len().div_ceil(CHUNK);
    let region = Arc::new(Region {
        base: map.as_ptr() as usize,
        len: map.len(),
        owner: Arc::downgrade(map),
        touched: (0..chunks).map(|_| AtomicU8::new(0)).collect(),
        pinned: (0..chunks).map(|_| AtomicBool::new(false)).collect(),
    });
    let mut regions = registry().regions.write();
    // A map at the address of a dead one replaces it.
    regions.retain(|r| r.owner.strong_count() > 0);
    let at = regions.partition_point(|r| r.base < region.base);
    regions.insert(at, region);
}

/// What the RAM tier has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResidencyStats {
    /// The budget, in bytes.
    pub budget: u64,
    /// Resident bytes of the tracked maps at the last look.
    pub resident: u64,
    /// Bytes evicted so far.
    pub evicted: u64,
}

/// The RAM tier's control: start it once per process with a budget.
#[derive(Debug)]
pub struct Residency;

impl Residency {
    /// How often the thread looks.
    pub fn period() -> Duration {
        Duration::from_millis(500)
    }

    /// Sets the budget (bytes of resident file pages) and starts the thread that keeps to it;
    /// maps opened from then on are tracked. Calling it again changes the budget.
    pub fn start(budget: u64) {
        let reg = registry();
        reg.budget.store(budget, Ordering::Relaxed);
        if ACTIVE.swap(true, Ordering::SeqCst) {
            return;
        }
        std::thread::Builder::new()
            .name("murr-residency".to_owned())
            .spawn(|| {
                let mut hand = (0usize, 0usize);
                loop {
                    std::thread::sleep(Residency::period());
                    hand = sweep(hand);
                }
            })
            .expect("starting the residency thread");
        tracing::info!(
            budget,
            "RAM tier on: segment pages beyond the budget stay on disk"
        );
    }

    /// The tier's counters.
    pub fn stats() -> ResidencyStats {
        let reg = registry();
        ResidencyStats {
            budget: reg.budget.load(Ordering::Relaxed),
            resident: reg.resident.load(Ordering::Relaxed),
            evicted: reg.evicted.load(Ordering::Relaxed),
        }
    }
}

const PAGE: usize = 4096;

/// Whether each page of `base..base+len` is mapped into this process (in its resident set):
/// bit 63 of each entry of `/proc/self/pagemap`, which a process may read about itself. (Not
/// `mincore`, which answers for the page cache: a page evicted from the process may stay cached
/// by the kernel, which reclaims it when memory is short; it is not the process's memory.)
fn mincore(base: usize, len: usize) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    static PAGEMAP: OnceLock<Option<std::fs::File>> = OnceLock::new();
    let file = PAGEMAP
        .get_or_init(|| std::fs::File::open("/proc/self/pagemap").ok())
        .as_ref()?;
    let first = base / PAGE;
    let pages = (base + len).div_ceil(PAGE) - first;
    let mut raw = vec![0u8; pages * 8];
    file.read_exact_at(&mut raw, (first * 8) as u64).ok()?;
    Some(
        raw.chunks_exact(8)
            .map(|e| u8::from(e[7] & 0x80 != 0))
            .collect(),
    )
}

/// How many of the pages under `bytes` (a part of a mapped file) are in memory.
pub fn resident_pages_of(bytes: &[u8]) -> usize {
    if bytes.is_empty() {
        return 0;
    }
    let start = bytes.as_ptr() as usize / PAGE * PAGE;
    let end = bytes.as_ptr() as usize + bytes.len();
    mincore(start, end - start).map_or(0, |v| v.iter().filter(|b| *b & 1 == 1).count())
}

/// Resident pages of each chunk of `r`.
fn resident_pages(r: &Region) -> Vec<u16> {
    let per_chunk = CHUNK / PAGE;
    let mut out = vec![0u16; r.touched.len()];
    let Some(vec) = mincore(r.base, r.len) else {
        return out;
    };
    for (p, v) in vec.iter().enumerate() {
        if v & 1 == 1 {
            out[p / per_chunk] += 1;
        }
    }
    out
}

/// Drops the whole pages inside `bytes[range]` (a read-only map of a file murr never modifies)
/// from the process: a later read brings them back from the file, unchanged.
pub(crate) fn release(bytes: &[u8], range: std::ops::Range<usize>) {
    let base = bytes.as_ptr() as usize;
    let start = (base + range.start.min(bytes.len())).next_multiple_of(PAGE);
    let end = (base + range.end.min(bytes.len())) / PAGE * PAGE;
    if end <= start {
        return;
    }
    #[expect(unsafe_code, reason = "madvise has no safe wrapper")]
    // SAFETY: the pages lie inside `bytes`, a live, read-only map of a file (the caller holds
    // it). Dropping clean file pages changes no content: the next access reads the same bytes
    // from the file.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
    }
}

/// Drops chunk `c` of `r` from memory.
fn evict(r: &Region, c: usize) {
    let start = c * CHUNK;
    let len = CHUNK.min(r.len - start);
    const MADV_PAGEOUT: libc::c_int = 21;
    let addr = (r.base + start) as *mut libc::c_void;
    let advise = |advice: libc::c_int| {
        #[expect(unsafe_code, reason = "madvise has no safe wrapper for MADV_PAGEOUT")]
        // SAFETY: the range lies in a live, read-only map of a file murr never modifies (the
        // caller holds the map's owner). Paging out clean file pages changes no content: the
        // next access reads the same bytes from the file.
        unsafe {
            libc::madvise(addr, len, advice)
        }
    };
    if advise(MADV_PAGEOUT) != 0 {
        advise(libc::MADV_DONTNEED);
    }
}

/// One look: measures, and evicts in clock order when over budget. `hand` is (region, chunk).
fn sweep(hand: (usize, usize)) -> (usize, usize) {
    let reg = registry();
    let regions: Vec<Arc<Region>> = reg.regions.read().clone();
    let live: Vec<(Arc<Region>, Arc<memmap2::Mmap>)> = regions
        .into_iter()
        .filter_map(|r| r.owner.upgrade().map(|m| (r, m)))
        .collect();
    let counts: Vec<Vec<u16>> = live.iter().map(|(r, _)| resident_pages(r)).collect();
    let mut resident: u64 = counts
        .iter()
        .flatten()
        .map(|&n| n as u64 * PAGE as u64)
        .sum();
    let budget = reg.budget.load(Ordering::Relaxed);
    let (mut ri, mut ci) = hand;
    if resident > budget && !live.is_empty() {
        let target = budget / 10 * 9;
        let total_chunks: usize = counts.iter().map(Vec::len).sum();
        // A chunk whose mark the first turn clears has its second chance until the next sweep.
        // When the chunks touched since the last sweep alone exceed the budget, a second turn
        // evicts them too, in clock order: the budget is a bound, not a wish.
        let mut steps = 0;
        while resident > target && steps < 2 * (total_chunks + live.len()) {
            steps += 1;
            if ri >= live.len() {
                ri = 0;
                ci = 0;
            }
            let (r, _) = &live[ri];
            if ci >= counts[ri].len() {
                ri += 1;
                ci = 0;
                continue;
            }
            let c = ci;
            ci += 1;
            let n = counts[ri][c];
            if n == 0 || r.pinned[c].load(Ordering::Relaxed) {
                continue;
            }
            if r.touched[c].swap(0, Ordering::Relaxed) == 1 {
                continue;
            }
            evict(r, c);
            let bytes = n as u64 * PAGE as u64;
            resident -= bytes;
            reg.evicted.fetch_add(bytes, Ordering::Relaxed);
        }
    }
    reg.resident.store(resident, Ordering::Relaxed);
    tracing::debug!(
        resident,
        budget,
        evicted = reg.evicted.load(Ordering::Relaxed),
        "RAM tier sweep"
    );
    (ri, ci)
}
