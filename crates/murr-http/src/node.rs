//! What this node is, and for a replica how fresh its copy of the store is: `/health` reports
//! it, the server's sync loop updates it.

use std::time::{Duration, Instant};

use serde::Serialize;

/// A node's part in a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Local disk only: the one process that reads and writes its data folder.
    Local,
    /// Writes to object storage; replicas follow it.
    Writer,
    /// Serves reads of what a writer put in object storage, and follows its commits.
    Replica,
}

#[derive(Debug)]
struct Sync {
    last_ok: Option<Instant>,
    error: Option<String>,
}

/// The node's role and sync state, shared by the sync loop and `/health`.
#[derive(Debug)]
pub struct NodeStatus {
    role: Role,
    stale_after: Duration,
    started: Instant,
    sync: parking_lot::Mutex<Sync>,
}

/// What `/health` answers as JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    /// Always `"ok"`: the node serves (a stale replica serves what it has).
    pub status: &'static str,
    /// The node's role.
    pub role: Role,
    /// For a replica: seconds since it last read the store's state successfully (since start
    /// when it never has).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sync_age_seconds: Option<f64>,
    /// For a replica: whether that is longer than the staleness bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<bool>,
    /// For a replica: why the last sync failed, while it keeps failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_error: Option<String>,
}

impl NodeStatus {
    /// A node in `role`; a replica counts as stale once its last successful sync is older
    /// than `stale_after`. A replica's start-up load counts as its first sync.
    pub fn new(role: Role, stale_after: Duration) -> NodeStatus {
        let now = Instant::now();
        NodeStatus {
            role,
            stale_after,
            started: now,
            sync: parking_lot::Mutex::new(Sync {
                last_ok: Some(now),
                error: None,
            }),
        }
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Records a successful sync.
    pub fn synced(&self) {
        let mut s = self.sync.lock();
        s.last_ok = Some(Instant::now());
        s.error = None;
    }

    /// Records a failed sync; returns the age of the last good one.
    pub fn sync_failed(&self, error: String) -> Duration {
        let mut s = self.sync.lock();
        s.error = Some(error);
        s.last_ok.unwrap_or(self.started).elapsed()
    }

    /// The report `/health` gives.
    pub fn report(&self) -> HealthReport {
        if self.role != Role::Replica {
            return HealthReport {
                status: "ok",
                role: self.role,
                last_sync_age_seconds: None,
                stale: None,
                sync_error: None,
            };
        }
        let s = self.sync.lock();
        let age = s.last_ok.unwrap_or(self.started).elapsed();
        HealthReport {
            status: "ok",
            role: self.role,
            last_sync_age_seconds: Some(age.as_secs_f64()),
            stale: Some(age > self.stale_after),
            sync_error: s.error.clone(),
        }
    }
}

impl Default for NodeStatus {
    fn default() -> Self {
        NodeStatus::new(Role::Local, Duration::MAX)
    }
}
