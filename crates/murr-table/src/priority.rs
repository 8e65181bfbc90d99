//! Thread priorities: fetches first, then writes, then merges.
//!
//! A cache is judged by its fetches' latency. Writes and merges run on threads of their own with
//! a higher nice value, so that the scheduler gives a core to a fetch that wakes up while they
//! run; when no fetch wants the cores, they take all of them (a nice value weighs threads
//! against each other, it does not cap them). On Linux the nice value is a thread's own.

/// The nice value of a write's thread.
pub const WRITE_NICE: i32 = 5;

/// The nice value of the merge thread: below writes too, which a client waits for.
pub const MERGE_NICE: i32 = 10;

/// Gives the calling thread the nice value `nice` (the `role` names it in a warning when the
/// system refuses). A thread cannot take a lower nice value back without privileges: call this
/// only on threads of murr's own.
pub(crate) fn lower(nice: i32, role: &str) {
    #[cfg(target_os = "linux")]
    {
        #[expect(unsafe_code, reason = "setpriority has no safe wrapper")]
        // SAFETY: a plain system call on the calling thread (`who` 0), no memory involved.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
        if rc != 0 {
            tracing::warn!(
                error = %std::io::Error::last_os_error(),
                "the {role} thread keeps the default priority"
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (nice, role);
}

/// Runs `f` on a thread of its own at the nice value `nice`, and waits for it.
///
/// # Panics
/// When the thread cannot be started, or `f` panics (the panic is passed on).
pub(crate) fn run_at<T: Send>(nice: i32, role: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name(format!("murr-{role}"))
            .spawn_scoped(s, move || {
                lower(nice, role);
                f()
            })
            .expect("spawning a thread");
        match handle.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
