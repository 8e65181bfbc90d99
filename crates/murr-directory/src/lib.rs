//! Where murr's files live.
//!
//! The [`Directory`] trait is the only way the layers above touch storage. It is deliberately
//! small and **blocking**: the table layer is sync and calls it from its own threads or tokio's
//! blocking pool, never from async code (an object-store implementation blocks on its own
//! runtime inside these calls). Debug builds assert it: a call on a thread that drives async
//! tasks panics. Once a file is opened its bytes are resident ([`bytes::Bytes`]), so the read
//! path never waits on storage.
//!
//! Implementations: [`MmapDirectory`] (local disk, memory-mapped, the default),
//! [`ObjectStoreDirectory`] (an object store through `object_store`: S3 and the others), and
//! [`RamDirectory`] (in memory, for tests and embedded use). With the `testing` feature,
//! [`conformance`] holds the checks every implementation passes and [`FaultyDirectory`] injects
//! failures to test crash safety.
//!
//! Contract, for every implementation:
//! - a file, once written, never changes; an opened file's bytes stay valid after it is deleted;
//! - [`Directory::create`] writes a new file atomically: readers see all of it or nothing, and
//!   nothing at all unless [`FileWriter::finish`] returned `Ok`;
//! - creating is **create-once**: of two writers racing for one name, exactly one `finish`
//!   succeeds and the other gets [`Error::AlreadyExists`] (on object storage, a conditional put).
//!   Manifests are numbered files created this way, which fences two writers of one table;
//! - a successful `finish` or `delete` is durable.

use std::fmt::Debug;
use std::io::Write;
use std::time::SystemTime;

use bytes::Bytes;

mod error;
mod mmap;
mod object;
mod path;
mod ram;
pub mod residency;
mod tiered;

#[cfg(feature = "testing")]
pub mod conformance;
#[cfg(feature = "testing")]
mod faulty;

pub use error::{Error, Result};
#[cfg(feature = "testing")]
pub use faulty::{FaultMode, FaultyDirectory};
pub use mmap::{MmapDirectory, UPLOAD_PREFIX, map_path};
pub use object::{ObjectStoreDirectory, RemoteOptions, source_store};
pub use path::FilePath;
pub use ram::RamDirectory;
pub use tiered::{TierStats, TieredDirectory};

/// A file being written; nothing is visible until [`FileWriter::finish`] returns `Ok`.
/// Dropping it unfinished discards what was written.
pub trait FileWriter: Write + Send {
    /// Makes the file durable and visible under its name, and returns its bytes as
    /// [`Directory::open`] would (so that a writer need not read back what it wrote: on object
    /// storage that would be a download).
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when another file took the name meanwhile, [`Error::Io`] on failure.
    fn finish(self: Box<Self>) -> Result<Bytes>;
}

/// A store of immutable files addressed by [`FilePath`].
///
/// Every method blocks until storage has answered: call them from plain threads or tokio's
/// blocking pool, never from async code (debug builds panic there, see [`assert_blocking_allowed`]).
pub trait Directory: Send + Sync + Debug + 'static {
    /// Opens a whole file as resident bytes.
    ///
    /// # Errors
    /// [`Error::NotFound`], or [`Error::Io`].
    fn open(&self, path: &FilePath) -> Result<Bytes>;

    /// Reads `len` bytes at `offset`, without opening the whole file.
    ///
    /// # Errors
    /// [`Error::NotFound`], or [`Error::Io`] (a range past the end included).
    fn read_range(&self, path: &FilePath, offset: u64, len: usize) -> Result<Bytes>;

    /// Starts writing a new file.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when the file exists, or [`Error::Io`].
    fn create(&self, path: &FilePath) -> Result<Box<dyn FileWriter>>;

    /// Every file under the folder `prefix` (`""` = all), at any depth, sorted by path.
    ///
    /// # Errors
    /// [`Error::Io`].
    fn list(&self, prefix: &str) -> Result<Vec<FileMeta>>;

    /// Deletes a file. Open handles to it stay valid.
    ///
    /// # Errors
    /// [`Error::NotFound`], or [`Error::Io`].
    fn delete(&self, path: &FilePath) -> Result<()>;

    /// Whether a file exists.
    ///
    /// # Errors
    /// [`Error::Io`].
    fn exists(&self, path: &FilePath) -> Result<bool>;

    /// For a directory with a local tier (copies of files whose originals are elsewhere):
    /// removes the local copies `keep` rejects, and returns how many. The originals stay. Other
    /// directories have nothing to remove.
    ///
    /// # Errors
    /// [`Error::Io`].
    fn retain_local(&self, keep: &dyn Fn(&FilePath) -> bool) -> Result<usize> {
        let _ = keep;
        Ok(0)
    }

    /// Makes the bytes of a file this directory wrote ([`FileWriter::finish`]) resident, when
    /// the directory keeps its files resident (a local folder populates the maps of the files it
    /// opens). A newly written file is mapped without reading it in, so that its writer can
    /// first let go of the files it replaces (a merge's inputs): the old and the new bytes are
    /// then never resident together. Other directories have nothing to do.
    fn warm(&self, bytes: &[u8]) {
        let _ = bytes;
    }

    /// Tells the directory that `range` of `bytes` (a file it opened or wrote) will not be read
    /// for a while (rows newer segments have replaced): a directory that maps its files drops
    /// the whole pages of that range from the process's memory, and a later read brings them
    /// back from the file, unchanged. Other directories keep the bytes.
    fn release(&self, bytes: &[u8], range: std::ops::Range<usize>) {
        let _ = (bytes, range);
    }
}

/// Reads one byte of every page of `bytes`, so that a lazily mapped file becomes resident (the
/// kernel maps a fault's neighbouring pages along with it).
pub(crate) fn touch_pages(bytes: &[u8]) {
    let mut sum = 0u8;
    for i in (0..bytes.len()).step_by(4096) {
        sum = sum.wrapping_add(bytes[i]);
    }
    std::hint::black_box(sum);
}

/// A listed file: its name, size and when it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// The file's name.
    pub path: FilePath,
    /// Its size in bytes.
    pub len: u64,
    /// When it was written (garbage collection keeps younger files for a grace period).
    pub modified: SystemTime,
}

/// Helpers over any [`Directory`].
pub trait DirectoryExt: Directory {
    /// Writes a whole new file at once (create-once: [`Error::AlreadyExists`] when the name is
    /// taken) and returns its bytes.
    ///
    /// # Errors
    /// As [`Directory::create`] and [`FileWriter::finish`].
    fn write_new(&self, path: &FilePath, data: &[u8]) -> Result<Bytes> {
        let mut w = self.create(path)?;
        w.write_all(data)
            .map_err(|e| Error::io("write", path.as_str(), e))?;
        w.finish()
    }

    /// Deletes a file, succeeding when it is already gone.
    ///
    /// # Errors
    /// [`Error::Io`].
    fn delete_if_exists(&self, path: &FilePath) -> Result<()> {
        match self.delete(path) {
            Err(Error::NotFound { .. }) => Ok(()),
            other => other,
        }
    }
}

impl<D: Directory + ?Sized> DirectoryExt for D {}

/// Panics, in debug builds, when the calling thread drives async tasks (a tokio worker), where a
/// blocking call would stall every task of that worker. Threads of tokio's blocking pool and
/// threads outside any runtime may block. Every [`Directory`] implementation calls it at the
/// start of each operation; release builds compile it to nothing.
#[inline]
pub fn assert_blocking_allowed() {
    #[cfg(debug_assertions)]
    if tokio::runtime::Handle::try_current().is_ok() {
        // Tokio itself knows which threads may block: its blocking receive panics on a worker
        // ("Cannot block the current thread from within a runtime") and returns at once elsewhere
        // (the sender is gone).
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        drop(tx);
        let _ = rx.blocking_recv();
    }
}
