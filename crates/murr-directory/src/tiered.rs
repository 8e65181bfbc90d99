//! An object store with a local disk tier: the durable copy of every file is in the store, and
//! the files that are read on every fetch (segments) are served from local copies, memory-mapped.
//!
//! Which files get a local copy is the caller's rule ([`TieredDirectory::open`]'s `cached`):
//! the table layer names segments, whose names are never reused for other bytes (a manifest's
//! name is, after a table is dropped and created again, so manifests always come from the
//! store). A copy appears under its name only whole: a download streams into a temporary file
//! that is synced, then renamed; a new file is written to a temporary file, uploaded from it
//! (create-once), and renamed only once the store has it, so a crash never leaves a local copy
//! of bytes the store does not hold.
//!
//! At open, local copies that the store no longer holds, or holds with another size, are
//! removed, and so is everything when the cache folder last served another store (its
//! `ORIGIN` file names the store's URL).

use std::fmt;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::mmap::MmapDirectory;
use crate::object::ObjectStoreDirectory;
use crate::{Directory, DirectoryExt, FileMeta, FilePath, FileWriter};

/// The cache folder's record of which store it holds copies of.
const ORIGIN: &str = "ORIGIN";

/// Counters of a [`TieredDirectory`]'s local tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierStats {
    /// Opens served from a local copy.
    pub hits: u64,
    /// Files downloaded into the local tier.
    pub downloads: u64,
    /// Their bytes.
    pub downloaded_bytes: u64,
    /// Files uploaded (and kept locally).
    pub uploads: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    downloads: AtomicU64,
    downloaded_bytes: AtomicU64,
    uploads: AtomicU64,
}

/// An [`ObjectStoreDirectory`] with local copies of the files a rule picks.
pub struct TieredDirectory {
    inner: Arc<Tiers>,
}

struct Tiers {
    remote: ObjectStoreDirectory,
    local: MmapDirectory,
    cached: fn(&FilePath) -> bool,
    counters: Counters,
}

impl fmt::Debug for TieredDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TieredDirectory")
            .field("remote", &self.inner.remote)
            .field("local", &self.inner.local.root())
            .finish_non_exhaustive()
    }
}

impl TieredDirectory {
    /// Keeps local copies of the files of `remote` that `cached` picks in the folder `local`
    /// (locked for this process, as a data folder is). `origin` names the store (its URL): a
    /// cache folder that held copies of another store is emptied first. Copies the store no
    /// longer holds, or holds with another size, are removed. With `populate`, local copies are
    /// read into memory when opened; without, they are faulted in as fetches touch them.
    ///
    /// # Errors
    /// [`Error::Locked`] or [`Error::Foreign`] for the local folder, [`Error::Io`] when the
    /// store cannot be listed.
    pub fn open(
        remote: ObjectStoreDirectory,
        local: impl Into<PathBuf>,
        origin: &str,
        cached: fn(&FilePath) -> bool,
        populate: bool,
    ) -> Result<TieredDirectory> {
        let local = MmapDirectory::open(local.into())?.with_populate(populate);
        let tiered = TieredDirectory {
            inner: Arc::new(Tiers {
                remote,
                local,
                cached,
                counters: Counters::default(),
            }),
        };
        tiered.inner.reconcile(origin)?;
        Ok(tiered)
    }

    /// The store behind the local tier.
    pub fn remote(&self) -> &ObjectStoreDirectory {
        &self.inner.remote
    }

    /// What the local tier has done since open.
    pub fn stats(&self) -> TierStats {
        let c = &self.inner.counters;
        TierStats {
            hits: c.hits.load(Ordering::Relaxed),
            downloads: c.downloads.load(Ordering::Relaxed),
            downloaded_bytes: c.downloaded_bytes.load(Ordering::Relaxed),
            uploads: c.uploads.load(Ordering::Relaxed),
        }
    }
}

impl Tiers {
    fn reconcile(&self, origin: &str) -> Result<()> {
        let origin_path = FilePath::new(ORIGIN)?;
        let same_origin = match self.local.open(&origin_path) {
            Ok(bytes) => &bytes[..] == origin.as_bytes(),
            Err(Error::NotFound { .. }) => false,
            Err(e) => return Err(e),
        };
        let copies: Vec<FileMeta> = self
            .local
            .list("")?
            .into_iter()
            .filter(|f| (self.cached)(&f.path))
            .collect();
        let mut removed = 0usize;
        if same_origin {
            let remote: std::collections::HashMap<FilePath, u64> = self
                .remote
                .list("")?
                .into_iter()
                .map(|f| (f.path, f.len))
                .collect();
            for f in &copies {
                if remote.get(&f.path) != Some(&f.len) {
                    self.local.delete_if_exists(&f.path)?;
                    removed += 1;
                }
            }
        } else {
            for f in &copies {
                self.local.delete_if_exists(&f.path)?;
                removed += 1;
            }
            self.local.delete_if_exists(&origin_path)?;
            self.local.write_new(&origin_path, origin.as_bytes())?;
        }
        tracing::info!(
            folder = %self.local.root().display(),
            kept = copies.len() - removed,
            removed,
            "local cache checked against the store"
        );
        Ok(())
    }

    /// Downloads `path` into the local tier and maps it.
    fn fill(&self, path: &FilePath) -> Result<Bytes> {
        let started = Instant::now();
        let (file, tmp, dest) = self.local.stage(path)?;
        let cleanup = scopeguard(&tmp);
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let len = self.remote.download(path, &mut out)?;
        let file = out.into_inner().map_err(|e| {
            Error::io(
                "write the downloaded copy of",
                path.as_str(),
                e.into_error(),
            )
        })?;
        file.sync_all()
            .map_err(|e| Error::io("sync", path.as_str(), e))?;
        drop(file);
        let bytes = self.local.map_staged(&tmp, path)?;
        self.local.publish(&tmp, &dest, path)?;
        cleanup.disarm();
        self.counters.downloads.fetch_add(1, Ordering::Relaxed);
        self.counters
            .downloaded_bytes
            .fetch_add(len, Ordering::Relaxed);
        let ms = started.elapsed().as_secs_f64() * 1e3;
        if len >= 64 << 20 {
            tracing::info!(file = %path, bytes = len, ms, "downloaded into the local cache");
        } else {
            tracing::debug!(file = %path, bytes = len, ms, "downloaded into the local cache");
        }
        Ok(bytes)
    }
}

/// Removes a temporary file on drop unless disarmed.
struct TempGuard<'a> {
    path: Option<&'a std::path::Path>,
}

fn scopeguard(path: &std::path::Path) -> TempGuard<'_> {
    TempGuard { path: Some(path) }
}

impl TempGuard<'_> {
    fn disarm(mut self) {
        self.path = None;
    }
}

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A new file: written to a local temporary file, uploaded from it at `finish`, then named.
struct TieredWriter {
    dir: Arc<Tiers>,
    path: FilePath,
    out: Option<BufWriter<std::fs::File>>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl Write for TieredWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.as_mut().expect("open until finish").write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.out.as_mut().expect("open until finish").write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.as_mut().expect("open until finish").flush()
    }
}

impl FileWriter for TieredWriter {
    fn finish(mut self: Box<Self>) -> Result<Bytes> {
        crate::assert_blocking_allowed();
        let path = self.path.clone();
        let file = self
            .out
            .take()
            .expect("finish is called once")
            .into_inner()
            .map_err(|e| Error::io("write", path.as_str(), e.into_error()))?;
        file.sync_all()
            .map_err(|e| Error::io("sync", path.as_str(), e))?;
        drop(file);
        let bytes = self.dir.local.map_staged_cold(&self.tmp, &path)?;
        // The store first: the local name appears only for bytes the store holds.
        self.dir.remote.put_new(&path, bytes.clone())?;
        self.dir.local.publish(&self.tmp, &self.dest, &path)?;
        self.dir.counters.uploads.fetch_add(1, Ordering::Relaxed);
        Ok(bytes)
    }
}

impl Drop for TieredWriter {
    fn drop(&mut self) {
        drop(self.out.take());
        // Unfinished, failed, or finished (then the name was moved and this finds nothing).
        let _ = std::fs::remove_file(&self.tmp);
    }
}

impl Directory for TieredDirectory {
    fn open(&self, path: &FilePath) -> Result<Bytes> {
        if !(self.inner.cached)(path) {
            return self.inner.remote.open(path);
        }
        match self.inner.local.open(path) {
            Ok(bytes) => {
                self.inner.counters.hits.fetch_add(1, Ordering::Relaxed);
                Ok(bytes)
            }
            Err(Error::NotFound { .. }) => self.inner.fill(path),
            Err(e) => Err(e),
        }
    }

    fn read_range(&self, path: &FilePath, offset: u64, len: usize) -> Result<Bytes> {
        if (self.inner.cached)(path) && self.inner.local.exists(path)? {
            return self.inner.local.read_range(path, offset, len);
        }
        self.inner.remote.read_range(path, offset, len)
    }

    fn create(&self, path: &FilePath) -> Result<Box<dyn FileWriter>> {
        if !(self.inner.cached)(path) {
            return self.inner.remote.create(path);
        }
        if self.inner.remote.exists(path)? {
            return Err(Error::AlreadyExists {
                path: path.to_string(),
            });
        }
        // A local copy of a name the store does not hold is stale (its upload never finished).
        self.inner.local.delete_if_exists(path)?;
        let (file, tmp, dest) = self.inner.local.stage(path)?;
        Ok(Box::new(TieredWriter {
            dir: Arc::clone(&self.inner),
            path: path.clone(),
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            tmp,
            dest,
        }))
    }

    fn list(&self, prefix: &str) -> Result<Vec<FileMeta>> {
        self.inner.remote.list(prefix)
    }

    fn delete(&self, path: &FilePath) -> Result<()> {
        self.inner.remote.delete(path)?;
        if (self.inner.cached)(path) {
            self.inner.local.delete_if_exists(path)?;
        }
        Ok(())
    }

    fn exists(&self, path: &FilePath) -> Result<bool> {
        self.inner.remote.exists(path)
    }

    fn retain_local(&self, keep: &dyn Fn(&FilePath) -> bool) -> Result<usize> {
        let mut removed = 0;
        for f in self.inner.local.list("")? {
            if (self.inner.cached)(&f.path) && !keep(&f.path) {
                self.inner.local.delete_if_exists(&f.path)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn warm(&self, bytes: &[u8]) {
        self.inner.local.warm(bytes);
    }

    fn release(&self, bytes: &[u8], range: std::ops::Range<usize>) {
        self.inner.local.release(bytes, range);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::ObjectStore;
    use object_store::memory::InMemory;

    use super::*;
    use crate::conformance;

    fn everything(_: &FilePath) -> bool {
        true
    }

    fn segments(p: &FilePath) -> bool {
        p.file_name().ends_with(".seg")
    }

    fn p(s: &str) -> FilePath {
        FilePath::new(s).expect("path")
    }

    #[test]
    fn conformance_with_every_file_cached() {
        let tmp = tempfile::tempdir().expect("temp folder");
        let remote = ObjectStoreDirectory::new(Arc::new(InMemory::new()), "").expect("remote");
        let dir = TieredDirectory::open(remote, tmp.path(), "memory://", everything, true)
            .expect("opens");
        conformance::run_all(&dir);
    }

    #[test]
    fn copies_are_made_once_and_checked_against_the_store_at_open() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let cache = tempfile::tempdir().expect("temp folder");
        let remote = || ObjectStoreDirectory::new(Arc::clone(&store), "pre").expect("remote");
        let writer = TieredDirectory::open(
            remote(),
            cache.path().join("w"),
            "s3://b/pre",
            segments,
            true,
        )
        .expect("opens");
        writer.write_new(&p("t/a.seg"), b"aaaa").expect("write");
        writer.write_new(&p("t/MANIFEST-1"), b"m").expect("write");
        assert_eq!(
            writer.stats().uploads,
            1,
            "only the segment is kept locally"
        );
        assert!(cache.path().join("w/t/a.seg").exists());
        assert!(!cache.path().join("w/t/MANIFEST-1").exists());
        // A reader fills its cache once, then reads the copy.
        let reader_root = cache.path().join("r");
        let reader = TieredDirectory::open(remote(), &reader_root, "s3://b/pre", segments, true)
            .expect("opens");
        assert_eq!(&reader.open(&p("t/a.seg")).expect("open")[..], b"aaaa");
        assert_eq!(&reader.open(&p("t/a.seg")).expect("open")[..], b"aaaa");
        let stats = reader.stats();
        assert_eq!(
            (stats.downloads, stats.downloaded_bytes, stats.hits),
            (1, 4, 1)
        );
        drop(reader);
        // Gone from the store while the reader was down: its copy goes at the next open.
        writer.delete(&p("t/a.seg")).expect("delete");
        assert!(
            !cache.path().join("w/t/a.seg").exists(),
            "delete removes the writer's copy"
        );
        let reader = TieredDirectory::open(remote(), &reader_root, "s3://b/pre", segments, true)
            .expect("opens");
        assert!(!reader_root.join("t/a.seg").exists());
        assert!(matches!(
            reader.open(&p("t/a.seg")),
            Err(Error::NotFound { .. })
        ));
        drop(reader);
        // A cache folder of another store is emptied.
        writer.write_new(&p("t/b.seg"), b"bb").expect("write");
        let reader = TieredDirectory::open(remote(), &reader_root, "s3://b/pre", segments, true)
            .expect("opens");
        reader.open(&p("t/b.seg")).expect("open");
        drop(reader);
        let other = ObjectStoreDirectory::new(Arc::new(InMemory::new()), "").expect("remote");
        let reader = TieredDirectory::open(other, &reader_root, "s3://other", segments, true)
            .expect("opens");
        assert!(!reader_root.join("t/b.seg").exists());
        // retain_local drops copies, never originals.
        drop(reader);
        let reader = TieredDirectory::open(remote(), &reader_root, "s3://b/pre", segments, true)
            .expect("opens");
        reader.open(&p("t/b.seg")).expect("open");
        assert_eq!(reader.retain_local(&|_| false).expect("trims"), 1);
        assert!(!reader_root.join("t/b.seg").exists());
        assert!(reader.exists(&p("t/b.seg")).expect("exists"));
    }

    #[test]
    fn a_failed_upload_leaves_no_local_copy() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let cache = tempfile::tempdir().expect("temp folder");
        let a = TieredDirectory::open(
            ObjectStoreDirectory::new(Arc::clone(&store), "").expect("remote"),
            cache.path().join("a"),
            "x",
            segments,
            true,
        )
        .expect("opens");
        let b = ObjectStoreDirectory::new(Arc::clone(&store), "").expect("remote");
        let mut w = a.create(&p("t/x.seg")).expect("create");
        w.write_all(b"from a").expect("write");
        // Another writer takes the name first: a's upload is refused, and a keeps no copy.
        b.write_new(&p("t/x.seg"), b"from b").expect("b writes");
        assert!(matches!(w.finish(), Err(Error::AlreadyExists { .. })));
        let left: Vec<_> = walk(&cache.path().join("a"));
        assert!(
            left.iter().all(|f| f == "LOCK" || f == "ORIGIN"),
            "no copy and no temporary file: {left:?}"
        );
        assert_eq!(&a.open(&p("t/x.seg")).expect("open")[..], b"from b");
    }

    fn walk(root: &std::path::Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(root).expect("list") {
            let e = e.expect("entry");
            if e.file_type().expect("type").is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        out
    }
}
