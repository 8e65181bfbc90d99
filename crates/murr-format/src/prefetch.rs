//! A cache prefetch hint, for loops whose memory accesses are known ahead.

/// Hints the CPU to load the cache line holding `items[at]`; a no-op when `at` is out of range
/// or the target has no prefetch instruction. Batched lookups (and index builds) prefetch 16
/// keys ahead so that the cache misses of a request's keys overlap (see docs/performance.md).
#[inline(always)]
pub(crate) fn prefetch<T>(items: &[T], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(tail) = items.get(at..) {
        let ptr = tail.as_ptr().cast::<i8>();
        #[expect(unsafe_code, reason = "the prefetch intrinsic is unsafe to call")]
        // SAFETY: a prefetch is only a hint: it reads no value into the program and never faults,
        // whatever the address; `ptr` points into `items` anyway.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (items, at);
}
