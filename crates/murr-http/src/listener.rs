//! A listener whose connections each hold a slot: at most `max` are open at once, and past that
//! new ones wait in the listen backlog. Both front-ends accept through it (HTTP here, Flight in
//! murr-server).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A listener with a bound on open connections.
#[derive(Debug)]
pub struct BoundedListener {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    max: usize,
    full: &'static str,
    warned: Option<Instant>,
}

impl BoundedListener {
    /// At most `max` connections of `listener` open at once; `full` is the warning logged (at
    /// most every 10 s) while new connections wait for a slot.
    pub fn new(listener: TcpListener, max: usize, full: &'static str) -> Self {
        BoundedListener {
            listener,
            slots: Arc::new(Semaphore::new(max.max(1))),
            max,
            full,
            warned: None,
        }
    }

    /// The next connection, with TCP_NODELAY set, and its slot (held until dropped). Waits
    /// for a slot first; an accept error (out of file descriptors and the like) is logged and
    /// retried after a pause rather than spun on or returned.
    pub async fn accept(&mut self) -> (TcpStream, OwnedSemaphorePermit) {
        let slot = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(s) => s,
            Err(_) => {
                if self
                    .warned
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
                {
                    tracing::warn!(max_connections = self.max, "{}", self.full);
                    self.warned = Some(Instant::now());
                }
                Arc::clone(&self.slots)
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed")
            }
        };
        loop {
            match self.listener.accept().await {
                Ok((tcp, _)) => {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "could not set TCP_NODELAY");
                    }
                    return (tcp, slot);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}
