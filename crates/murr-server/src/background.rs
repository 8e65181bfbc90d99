//! Background work on CPUs of its own: on a small host, a refresh's uploads and the merges after
//! them would otherwise take both cores while fetches wait for one.
//!
//! `server.background_cpus` (by default half the CPUs the process may use, none on a host with
//! one) are kept for: the connections whose first request writes (their socket reads, the
//! upload's decode and the write, on a runtime of their own) and the merge thread. Fetches run
//! on the main runtime, whose threads may use every CPU: they are never slowed by the pinning,
//! only kept from queueing behind a write. Why in ARCHITECTURE.md ("Background CPUs").

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// The CPUs this process may run on, in order.
pub(crate) fn allowed() -> Vec<usize> {
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the process's CPUs; background work is not pinned");
            Vec::new()
        }
    }
}

/// The CPUs kept for background work: the last `setting` of `allowed` (by default half of them),
/// leaving at least one for the rest. None with fewer than two CPUs or a setting of 0.
pub(crate) fn choose(setting: Option<usize>, allowed: &[usize]) -> Vec<usize> {
    let most = allowed.len().saturating_sub(1);
    let wanted = setting.unwrap_or(allowed.len() / 2);
    if wanted > most {
        tracing::warn!(
            background_cpus = wanted,
            cpus = allowed.len(),
            "server.background_cpus leaves no CPU for fetches; keeping {most}"
        );
    }
    allowed[allowed.len() - wanted.min(most)..].to_vec()
}

/// Confines the calling thread to `cpus` (nothing when empty). A failure is logged: the thread
/// then runs anywhere, as without the setting.
pub(crate) fn pin(cpus: &[usize]) {
    if cpus.is_empty() {
        return;
    }
    let mut set = CpuSet::new();
    for &c in cpus {
        if let Err(e) = set.set(c) {
            tracing::warn!(cpu = c, error = %e, "cannot pin to this CPU");
            return;
        }
    }
    if let Err(e) = sched_setaffinity(Pid::from_raw(0), &set) {
        tracing::warn!(error = %e, "cannot pin a background thread; it runs on every CPU");
    }
}

/// The runtime that serves connections starting with a write, on the background CPUs.
#[derive(Debug)]
pub(crate) struct Background {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Background {
    /// A runtime of one worker per CPU in `cpus`, every thread (workers and its blocking pool,
    /// where writes decode and build) pinned to them; none when `cpus` is empty.
    pub(crate) fn start(cpus: &[usize]) -> std::io::Result<Background> {
        if cpus.is_empty() {
            return Ok(Background { runtime: None });
        }
        let pinned = cpus.to_vec();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cpus.len())
            .thread_name("murr-background")
            .on_thread_start(move || pin(&pinned))
            .enable_all()
            .build()?;
        Ok(Background {
            runtime: Some(runtime),
        })
    }

    pub(crate) fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.runtime.as_ref().map(|r| r.handle().clone())
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Dropped on the main runtime when the server stops: its connections are done by then,
        // or, past `server.shutdown_timeout`, dropped as the main runtime's are.
        if let Some(r) = self.runtime.take() {
            r.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::choose;

    #[test]
    fn half_the_cpus_by_default_and_always_one_left_for_fetches() {
        assert_eq!(choose(None, &[0, 1]), vec![1]);
        assert_eq!(choose(None, &[0, 1, 2, 3, 4, 5, 6, 7]), vec![4, 5, 6, 7]);
        assert_eq!(choose(None, &[2, 5, 7]), vec![7]);
        assert!(choose(None, &[0]).is_empty());
        assert!(choose(None, &[]).is_empty());
        assert!(choose(Some(0), &[0, 1, 2, 3]).is_empty());
        assert_eq!(choose(Some(1), &[0, 1, 2, 3]), vec![3]);
        assert_eq!(choose(Some(9), &[0, 1, 2, 3]), vec![1, 2, 3]);
        assert!(choose(Some(3), &[0]).is_empty());
    }
}
