//! Files in an object store (S3, GCS, Azure, or a local folder through `object_store`), behind
//! the blocking [`Directory`] trait.
//!
//! Object stores are asynchronous; the directory owns a small tokio runtime and each call hands
//! its request to it and blocks until the answer comes: callers are plain threads or tokio's
//! blocking pool, never async tasks ([`crate::assert_blocking_allowed`]). Create-once is the
//! store's conditional put (`PutMode::Create`, `If-None-Match: *` on S3), so two writers racing
//! for one name cannot both succeed. A new file is buffered in memory and uploaded with one put
//! at `finish`, which hands the same bytes back; an opened file is downloaded whole.

use std::fmt;
use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::{Error, Result};
use crate::{Directory, FileMeta, FilePath, FileWriter};

struct Inner {
    store: Arc<dyn ObjectStore>,
    /// Where the directory's files live in the store (`""`: at its root).
    prefix: String,
    runtime: tokio::runtime::Runtime,
}

impl Inner {
    /// Runs `request` on the directory's runtime and waits for its answer.
    fn run<T: Send + 'static>(&self, request: impl Future<Output = T> + Send + 'static) -> T {
        crate::assert_blocking_allowed();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(request.await);
        });
        rx.recv()
            .expect("the directory's runtime answers every request")
    }

    fn location(&self, path: &str) -> StorePath {
        if self.prefix.is_empty() {
            StorePath::from(path)
        } else if path.is_empty() {
            StorePath::from(self.prefix.as_str())
        } else {
            StorePath::from(format!("{}/{path}", self.prefix))
        }
    }
}

fn store_error(op: &'static str, path: &str, e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::NotFound {
            path: path.to_owned(),
        },
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            Error::AlreadyExists {
                path: path.to_owned(),
            }
        }
        other => Error::Io {
            op,
            path: path.to_owned(),
            source: std::io::Error::other(other),
        },
    }
}

/// A folder (a prefix) of an object store.
#[derive(Clone)]
pub struct ObjectStoreDirectory {
    inner: Arc<Inner>,
}

impl fmt::Debug for ObjectStoreDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreDirectory")
            .field("store", &self.inner.store.to_string())
            .field("prefix", &self.inner.prefix)
            .finish()
    }
}

impl ObjectStoreDirectory {
    /// The files under `prefix` (`""`: the whole store; `a/b`: under that folder) of `store`.
    ///
    /// # Errors
    /// [`Error::Io`] when the runtime cannot start, [`Error::InvalidPath`] for a bad prefix.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Result<Self> {
        let prefix = prefix.trim_matches('/').to_owned();
        if !prefix.is_empty() {
            FilePath::new(prefix.clone())?;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("murr-object-store")
            .enable_all()
            .build()
            .map_err(|e| Error::io("start the object store runtime", &prefix, e))?;
        Ok(ObjectStoreDirectory {
            inner: Arc::new(Inner {
                store,
                prefix,
                runtime,
            }),
        })
    }

    fn head(&self, path: &FilePath) -> Result<Option<object_store::ObjectMeta>> {
        let store = Arc::clone(&self.inner.store);
        let loc = self.inner.location(path.as_str());
        match self.inner.run(async move { store.head(&loc).await }) {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error("stat", path.as_str(), e)),
        }
    }
}

struct ObjectWriter {
    inner: Arc<Inner>,
    path: FilePath,
    buf: Vec<u8>,
}

impl Write for ObjectWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl FileWriter for ObjectWriter {
    fn finish(self: Box<Self>) -> Result<Bytes> {
        let ObjectWriter { inner, path, buf } = *self;
        let bytes = Bytes::from(buf);
        let store = Arc::clone(&inner.store);
        let loc = inner.location(path.as_str());
        let payload = PutPayload::from(bytes.clone());
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        inner
            .run(async move { store.put_opts(&loc, payload, options).await })
            .map_err(|e| store_error("put", path.as_str(), e))?;
        Ok(bytes)
    }
}

impl Directory for ObjectStoreDirectory {
    fn open(&self, path: &FilePath) -> Result<Bytes> {
        let store = Arc::clone(&self.inner.store);
        let loc = self.inner.location(path.as_str());
        self.inner
            .run(async move { store.get(&loc).await?.bytes().await })
            .map_err(|e| store_error("get", path.as_str(), e))
    }

    fn read_range(&self, path: &FilePath, offset: u64, len: usize) -> Result<Bytes> {
        let end = offset.saturating_add(len as u64);
        let past_end = |size: u64| Error::Io {
            op: "read range",
            path: path.to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("range {offset}+{len} past the end of {size} bytes"),
            ),
        };
        // Stores differ on ranges at or past the end (S3 answers what there is): check first.
        let Some(meta) = self.head(path)? else {
            return Err(Error::NotFound {
                path: path.to_string(),
            });
        };
        if end > meta.size {
            return Err(past_end(meta.size));
        }
        if len == 0 {
            return Ok(Bytes::new());
        }
        let store = Arc::clone(&self.inner.store);
        let loc = self.inner.location(path.as_str());
        let bytes = self
            .inner
            .run(async move { store.get_range(&loc, offset..end).await })
            .map_err(|e| store_error("read range", path.as_str(), e))?;
        if bytes.len() != len {
            return Err(past_end(meta.size));
        }
        Ok(bytes)
    }

    fn create(&self, path: &FilePath) -> Result<Box<dyn FileWriter>> {
        if self.head(path)?.is_some() {
            return Err(Error::AlreadyExists {
                path: path.to_string(),
            });
        }
        Ok(Box::new(ObjectWriter {
            inner: Arc::clone(&self.inner),
            path: path.clone(),
            buf: Vec::new(),
        }))
    }

    fn list(&self, prefix: &str) -> Result<Vec<FileMeta>> {
        let store = Arc::clone(&self.inner.store);
        let loc = self.inner.location(prefix);
        let root = (!self.inner.prefix.is_empty() || !prefix.is_empty()).then_some(loc);
        let listed: Vec<object_store::ObjectMeta> = self
            .inner
            .run(async move { store.list(root.as_ref()).try_collect().await })
            .map_err(|e| store_error("list", prefix, e))?;
        let strip = if self.inner.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.inner.prefix)
        };
        let mut out: Vec<FileMeta> = listed
            .into_iter()
            .filter_map(|m| {
                let name = m.location.as_ref().strip_prefix(strip.as_str())?.to_owned();
                // Names that are not valid paths were not written by murr: leave them alone.
                let path = FilePath::new(name).ok()?;
                path.is_under(prefix).then(|| FileMeta {
                    path,
                    len: m.size,
                    modified: SystemTime::from(m.last_modified),
                })
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn delete(&self, path: &FilePath) -> Result<()> {
        // Stores delete a missing object without a word; the contract says NotFound.
        if self.head(path)?.is_none() {
            return Err(Error::NotFound {
                path: path.to_string(),
            });
        }
        let store = Arc::clone(&self.inner.store);
        let loc = self.inner.location(path.as_str());
        self.inner
            .run(async move { store.delete(&loc).await })
            .map_err(|e| store_error("delete", path.as_str(), e))
    }

    fn exists(&self, path: &FilePath) -> Result<bool> {
        Ok(self.head(path)?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use object_store::local::LocalFileSystem;
    use object_store::memory::InMemory;

    use super::*;
    use crate::conformance;

    #[test]
    fn conformance_in_memory_at_the_root_and_under_a_prefix() {
        conformance::run_all(
            &ObjectStoreDirectory::new(Arc::new(InMemory::new()), "").expect("opens"),
        );
        let shared = Arc::new(InMemory::new());
        let dir =
            ObjectStoreDirectory::new(Arc::clone(&shared) as Arc<dyn ObjectStore>, "prod/murr")
                .expect("opens");
        conformance::run_all(&dir);
        // Another prefix of the same store sees none of it.
        let other = ObjectStoreDirectory::new(shared, "staging").expect("opens");
        assert!(other.list("").expect("lists").is_empty());
        assert!(!dir.list("").expect("lists").is_empty());
    }

    #[test]
    fn conformance_on_local_files_through_object_store() {
        let tmp = tempfile::tempdir().expect("temp folder");
        let store = LocalFileSystem::new_with_prefix(tmp.path()).expect("local store");
        conformance::run_all(&ObjectStoreDirectory::new(Arc::new(store), "").expect("opens"));
    }
}
