//! Where murr's files live.
//!
//! The [`Directory`] trait is the only way the layers above touch storage. It is deliberately
//! small and synchronous: the table layer is sync, calls it off the async workers, and an
//! object-store implementation blocks on its own runtime inside these calls. Once a file is
//! opened its bytes are resident ([`bytes::Bytes`]), so the read path never waits on storage.
//!
//! Implementations: [`MmapDirectory`] (local disk, memory-mapped, the default) and
//! [`RamDirectory`] (in memory, for tests and embedded use). With the `testing` feature,
//! [`conformance`] holds the checks every implementation passes and [`FaultyDirectory`] injects
//! failures to test crash safety.
//!
//! Contract, for every implementation:
//! - a file, once written, never changes; an opened file's bytes stay valid after it is deleted;
//! - [`Directory::create`] writes a new file atomically: readers see all of it or nothing, and
//!   nothing at all unless [`FileWriter::finish`] returned `Ok`;
//! - [`Directory::replace`] atomically replaces a small file (the manifest);
//! - a successful `finish`, `replace` or `delete` is durable.

use std::fmt::Debug;
use std::io::Write;

use bytes::Bytes;

mod error;
mod mmap;
mod path;
mod ram;

#[cfg(feature = "testing")]
pub mod conformance;
#[cfg(feature = "testing")]
mod faulty;

pub use error::{Error, Result};
#[cfg(feature = "testing")]
pub use faulty::{FaultMode, FaultyDirectory};
pub use mmap::MmapDirectory;
pub use path::FilePath;
pub use ram::RamDirectory;

/// A file being written; nothing is visible until [`FileWriter::finish`] returns `Ok`.
/// Dropping it unfinished discards what was written.
pub trait FileWriter: Write + Send {
    /// Makes the file durable and visible under its name.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when another file took the name meanwhile, [`Error::Io`] on failure.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// A store of immutable files addressed by [`FilePath`].
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

    /// Atomically writes or replaces a small file.
    ///
    /// # Errors
    /// [`Error::Io`].
    fn replace(&self, path: &FilePath, data: &[u8]) -> Result<()>;

    /// Every file under the folder `prefix` (`""` = all), at any depth, sorted.
    ///
    /// # Errors
    /// [`Error::Io`].
    fn list(&self, prefix: &str) -> Result<Vec<FilePath>>;

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
}

/// Helpers over any [`Directory`].
pub trait DirectoryExt: Directory {
    /// Writes a whole new file at once.
    ///
    /// # Errors
    /// As [`Directory::create`] and [`FileWriter::finish`].
    fn write_new(&self, path: &FilePath, data: &[u8]) -> Result<()> {
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
