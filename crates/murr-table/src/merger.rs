//! The background merge thread: runs the size-tiered merges writes ask for, and compacts
//! tables that have gone idle. The store owns it ([`MergeThread`]); tables hold a [`Merger`] to
//! ask it for work.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::table::{MergeRequests, MergeStep, Table};

/// A request to the merge thread.
enum Request {
    /// Look at this table.
    Merge(Weak<Table>),
    /// Finish.
    Stop,
}

/// A handle that asks the merge thread to look at a table.
#[derive(Debug, Clone)]
pub(crate) struct Merger {
    tx: Sender<Request>,
}

impl MergeRequests for Merger {
    /// Asks for a look at `table` (after a write, or after it was loaded).
    fn request(&self, table: &Weak<Table>) {
        let _ = self.tx.send(Request::Merge(Weak::clone(table)));
    }
}

impl Merger {
    pub(crate) fn request_all(&self, tables: &[Arc<Table>]) {
        for t in tables {
            self.request(&Arc::downgrade(t));
        }
    }
}

/// The merge thread; dropping it stops the thread and waits for a merge in progress.
#[derive(Debug)]
pub(crate) struct MergeThread {
    merger: Merger,
    handle: Option<JoinHandle<()>>,
}

impl MergeThread {
    /// Starts the thread. With `idle`, a table that has had no write for that long is compacted
    /// into one segment (or its small segments after a large one into one: `policy::pick_idle`),
    /// unless it is larger than `idle_max_bytes`.
    /// Tables with a time to live have their expired rows dropped when the earliest expires, at
    /// most every `expiry_interval`.
    pub(crate) fn spawn(
        idle: Option<Duration>,
        idle_max_bytes: u64,
        expiry_interval: Duration,
        start: Option<crate::ThreadStart>,
    ) -> MergeThread {
        let (tx, rx) = mpsc::channel::<Request>();
        let handle = std::thread::Builder::new()
            .name("murr-merge".to_owned())
            .spawn(move || {
                if let Some(start) = start {
                    (start.0)();
                }
                merge_loop(&rx, idle, idle_max_bytes, expiry_interval);
            })
            .expect("spawning a thread");
        MergeThread {
            merger: Merger { tx },
            handle: Some(handle),
        }
    }

    pub(crate) fn merger(&self) -> &Merger {
        &self.merger
    }
}

impl Drop for MergeThread {
    fn drop(&mut self) {
        let _ = self.merger.tx.send(Request::Stop);
        if let Some(handle) = self.handle.take()
            && handle.join().is_err()
        {
            tracing::error!("the merge thread panicked");
        }
    }
}

fn log_failure(table: &Table, e: &Error) {
    if !matches!(e, Error::TableNotFound { .. }) {
        tracing::warn!(table = %table.name(), error = %e, "merge failed; the table is unchanged");
    }
}

/// How long until the first of `dues`; an hour when there is none.
fn until_first(dues: impl Iterator<Item = Instant>) -> Duration {
    dues.min().map_or(Duration::from_secs(3600), |due| {
        due.saturating_duration_since(Instant::now())
    })
}

/// Runs `table`'s size-tiered merges until none is left; `Some(wait)` when the next one waits
/// for the table's writes to stop (look again after `wait`).
fn run_merges(table: &Table) -> Option<Duration> {
    loop {
        match table.merge_step_unless_writing() {
            Ok(MergeStep::Merged) => {}
            Ok(MergeStep::Nothing) => return None,
            Ok(MergeStep::Held(wait)) => return Some(wait),
            Err(e) => {
                log_failure(table, &e);
                return None;
            }
        }
    }
}

/// A table with a time to live, and when to drop its expired rows next.
struct Expiring {
    table: Weak<Table>,
    due: Instant,
    /// When its expired rows were last dropped.
    last: Option<Instant>,
}

impl Expiring {
    /// When `table`'s next rows expire, but not sooner than `interval` after the last drop.
    fn schedule(table: &Table, last: Option<Instant>, interval: Duration) -> Option<Instant> {
        let at = table.next_expiry()?;
        let wait = u64::try_from(at.saturating_sub(table.now())).unwrap_or(0);
        let due = Instant::now() + Duration::from_secs(wait);
        Some(match last {
            Some(last) => due.max(last + interval),
            None => due,
        })
    }
}

/// Runs the size-tiered merges a write asks for, compacts tables that have gone idle, and drops
/// expired rows.
fn merge_loop(
    rx: &Receiver<Request>,
    idle: Option<Duration>,
    idle_max_bytes: u64,
    expiry_interval: Duration,
) {
    // Tables written since their last full compaction, by when they were last written.
    let mut pending: Vec<(Weak<Table>, Instant)> = Vec::new();
    let mut expiring: Vec<Expiring> = Vec::new();
    // Tables whose next merge waits for their writes to stop, and when to look again.
    let mut held: Vec<(Weak<Table>, Instant)> = Vec::new();
    loop {
        let idle_wait = match (idle, pending.iter().map(|(_, at)| *at).min()) {
            (Some(idle), Some(oldest)) => idle.saturating_sub(oldest.elapsed()),
            _ => Duration::from_secs(3600),
        };
        let expiry_wait = until_first(expiring.iter().map(|e| e.due));
        let held_wait = until_first(held.iter().map(|(_, due)| *due));
        let wait = idle_wait.min(expiry_wait).min(held_wait);
        match rx.recv_timeout(wait) {
            Ok(Request::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
            Ok(Request::Merge(weak)) => {
                let Some(table) = weak.upgrade() else {
                    continue;
                };
                held.retain(|(w, _)| !Weak::ptr_eq(w, &weak));
                if let Some(wait) = run_merges(&table) {
                    held.push((Weak::clone(&weak), Instant::now() + wait));
                }
                let last = expiring
                    .iter()
                    .find(|e| Weak::ptr_eq(&e.table, &weak))
                    .and_then(|e| e.last);
                expiring.retain(|e| !Weak::ptr_eq(&e.table, &weak));
                if let Some(due) = Expiring::schedule(&table, last, expiry_interval) {
                    expiring.push(Expiring {
                        table: Weak::clone(&weak),
                        due,
                        last,
                    });
                }
                pending.retain(|(w, _)| !Weak::ptr_eq(w, &weak));
                pending.push((weak, Instant::now()));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        let (due, waiting): (Vec<_>, Vec<_>) = held.drain(..).partition(|(_, at)| *at <= now);
        held = waiting;
        for (weak, _) in due {
            let Some(table) = weak.upgrade() else {
                continue;
            };
            if let Some(wait) = run_merges(&table) {
                held.push((weak, Instant::now() + wait));
            }
        }
        let (due, waiting): (Vec<_>, Vec<_>) = expiring.drain(..).partition(|e| e.due <= now);
        expiring = waiting;
        for e in due {
            let Some(table) = e.table.upgrade() else {
                continue;
            };
            // After a failure (storage down), try again in a second at the soonest, whatever
            // the interval: never a busy loop.
            let mut interval = expiry_interval;
            match table.expire() {
                Ok(n) if n > 0 => {
                    tracing::info!(table = %table.name(), segments = n, "dropped expired rows");
                }
                Ok(_) => {}
                Err(e) => {
                    log_failure(&table, &e);
                    interval = interval.max(Duration::from_secs(1));
                }
            }
            let last = Some(Instant::now());
            if let Some(due) = Expiring::schedule(&table, last, interval) {
                expiring.push(Expiring {
                    table: e.table,
                    due,
                    last,
                });
            }
        }
        let Some(idle) = idle else {
            pending.clear();
            continue;
        };
        let (due, waiting): (Vec<_>, Vec<_>) =
            pending.drain(..).partition(|(_, at)| at.elapsed() >= idle);
        pending = waiting;
        for (weak, _) in due {
            let Some(table) = weak.upgrade() else {
                continue;
            };
            let stats = table.stats();
            if stats.segments > 1
                && stats.bytes <= idle_max_bytes
                && let Err(e) = table.compact_idle()
            {
                log_failure(&table, &e);
            }
        }
    }
}
