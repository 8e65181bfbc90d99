//! A directory that fails on purpose, to test that a crash at any step leaves a consistent store.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::{Directory, FileMeta, FilePath, FileWriter};

/// When the injected failure strikes, relative to the operation it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// The operation does not happen.
    Before,
    /// The operation happens, then the caller is told it failed (a crash before the acknowledgement).
    After,
    /// The process aborts before the operation: a real crash, no destructor runs.
    AbortBefore,
    /// The process aborts right after the operation.
    AbortAfter,
}

/// Wraps a directory and fails its `n`-th mutating operation (a finish or a delete), and
/// every one after it, as a crashed process would. Reads keep working.
#[derive(Debug)]
pub struct FaultyDirectory {
    inner: Arc<dyn Directory>,
    ops: Arc<AtomicU64>,
    fail_at: u64,
    mode: FaultMode,
    crashed: Arc<AtomicBool>,
}

impl FaultyDirectory {
    /// Fails the operation numbered `fail_at` (counting from 1) and all later ones;
    /// `u64::MAX` never fails, which counts the operations of a run.
    pub fn new(inner: Arc<dyn Directory>, fail_at: u64, mode: FaultMode) -> Self {
        FaultyDirectory {
            inner,
            ops: Arc::new(AtomicU64::new(0)),
            fail_at,
            mode,
            crashed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// How many mutating operations were attempted.
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::SeqCst)
    }

    /// Whether the failure struck.
    pub fn crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }

    fn step<T>(&self, path: &FilePath, op: impl FnOnce() -> Result<T>) -> Result<T> {
        step(&self.ops, &self.crashed, self.fail_at, self.mode, path, op)
    }
}

fn injected(path: &FilePath) -> Error {
    Error::Io {
        op: "injected fault",
        path: path.to_string(),
        source: std::io::Error::other("injected fault"),
    }
}

fn step<T>(
    ops: &AtomicU64,
    crashed: &AtomicBool,
    fail_at: u64,
    mode: FaultMode,
    path: &FilePath,
    op: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let n = ops.fetch_add(1, Ordering::SeqCst) + 1;
    if crashed.load(Ordering::SeqCst) {
        return Err(injected(path));
    }
    if n < fail_at {
        return op();
    }
    crashed.store(true, Ordering::SeqCst);
    match mode {
        FaultMode::Before => {}
        FaultMode::After => {
            op()?;
        }
        FaultMode::AbortBefore => std::process::abort(),
        FaultMode::AbortAfter => {
            let _ = op();
            std::process::abort();
        }
    }
    Err(injected(path))
}

struct FaultyWriter {
    inner: Box<dyn FileWriter>,
    ops: Arc<AtomicU64>,
    crashed: Arc<AtomicBool>,
    fail_at: u64,
    mode: FaultMode,
    path: FilePath,
}

impl Write for FaultyWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl FileWriter for FaultyWriter {
    fn finish(self: Box<Self>) -> Result<Bytes> {
        let FaultyWriter {
            inner,
            ops,
            crashed,
            fail_at,
            mode,
            path,
        } = *self;
        step(&ops, &crashed, fail_at, mode, &path, || inner.finish())
    }
}

impl Directory for FaultyDirectory {
    fn open(&self, path: &FilePath) -> Result<Bytes> {
        self.inner.open(path)
    }
    fn read_range(&self, path: &FilePath, offset: u64, len: usize) -> Result<Bytes> {
        self.inner.read_range(path, offset, len)
    }
    fn create(&self, path: &FilePath) -> Result<Box<dyn FileWriter>> {
        Ok(Box::new(FaultyWriter {
            inner: self.inner.create(path)?,
            ops: Arc::clone(&self.ops),
            crashed: Arc::clone(&self.crashed),
            fail_at: self.fail_at,
            mode: self.mode,
            path: path.clone(),
        }))
    }
    fn list(&self, prefix: &str) -> Result<Vec<FileMeta>> {
        self.inner.list(prefix)
    }
    fn delete(&self, path: &FilePath) -> Result<()> {
        self.step(path, || self.inner.delete(path))
    }
    fn exists(&self, path: &FilePath) -> Result<bool> {
        self.inner.exists(path)
    }
    fn warm(&self, bytes: &[u8]) {
        self.inner.warm(bytes);
    }

    fn release(&self, bytes: &[u8], range: std::ops::Range<usize>) {
        self.inner.release(bytes, range);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DirectoryExt, RamDirectory};

    #[test]
    fn fails_from_the_nth_operation_on() {
        let ram = Arc::new(RamDirectory::new());
        let p = |s: &str| FilePath::new(s).expect("valid");
        let faulty =
            FaultyDirectory::new(Arc::clone(&ram) as Arc<dyn Directory>, 2, FaultMode::Before);
        faulty.write_new(&p("a"), b"1").expect("first op passes");
        assert!(faulty.write_new(&p("b"), b"2").is_err());
        assert!(faulty.delete(&p("a")).is_err(), "stays crashed");
        assert!(ram.exists(&p("a")).expect("exists") && !ram.exists(&p("b")).expect("exists"));
        let after =
            FaultyDirectory::new(Arc::clone(&ram) as Arc<dyn Directory>, 1, FaultMode::After);
        assert!(after.write_new(&p("c"), b"3").is_err());
        assert!(
            ram.exists(&p("c")).expect("exists"),
            "After mode applies the operation"
        );
    }
}
