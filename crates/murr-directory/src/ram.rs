//! An in-memory directory.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use parking_lot::RwLock;

use crate::error::{Error, Result};
use crate::{Directory, FileMeta, FilePath, FileWriter};

/// Files held in memory. Clones share the same files.
#[derive(Debug, Clone, Default)]
pub struct RamDirectory {
    files: Arc<RwLock<BTreeMap<FilePath, (Bytes, SystemTime)>>>,
}

impl RamDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }
}

struct RamWriter {
    files: Arc<RwLock<BTreeMap<FilePath, (Bytes, SystemTime)>>>,
    path: FilePath,
    buf: Vec<u8>,
}

impl Write for RamWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl FileWriter for RamWriter {
    fn finish(self: Box<Self>) -> Result<Bytes> {
        crate::assert_blocking_allowed();
        let RamWriter { files, path, buf } = *self;
        let mut files = files.write();
        if files.contains_key(&path) {
            return Err(Error::AlreadyExists {
                path: path.to_string(),
            });
        }
        let bytes = Bytes::from(buf);
        files.insert(path, (bytes.clone(), SystemTime::now()));
        Ok(bytes)
    }
}

impl Directory for RamDirectory {
    fn open(&self, path: &FilePath) -> Result<Bytes> {
        crate::assert_blocking_allowed();
        self.files
            .read()
            .get(path)
            .map(|(bytes, _)| bytes.clone())
            .ok_or_else(|| Error::NotFound {
                path: path.to_string(),
            })
    }

    fn read_range(&self, path: &FilePath, offset: u64, len: usize) -> Result<Bytes> {
        let bytes = self.open(path)?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(len) {
            Some(end) if end <= bytes.len() => Ok(bytes.slice(start..end)),
            _ => Err(Error::Io {
                op: "read range",
                path: path.to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("range {offset}+{len} past the end of {} bytes", bytes.len()),
                ),
            }),
        }
    }

    fn create(&self, path: &FilePath) -> Result<Box<dyn FileWriter>> {
        crate::assert_blocking_allowed();
        if self.files.read().contains_key(path) {
            return Err(Error::AlreadyExists {
                path: path.to_string(),
            });
        }
        Ok(Box::new(RamWriter {
            files: Arc::clone(&self.files),
            path: path.clone(),
            buf: Vec::new(),
        }))
    }

    fn list(&self, prefix: &str) -> Result<Vec<FileMeta>> {
        crate::assert_blocking_allowed();
        Ok(self
            .files
            .read()
            .iter()
            .filter(|(p, _)| p.is_under(prefix))
            .map(|(path, (bytes, modified))| FileMeta {
                path: path.clone(),
                len: bytes.len() as u64,
                modified: *modified,
            })
            .collect())
    }

    fn delete(&self, path: &FilePath) -> Result<()> {
        crate::assert_blocking_allowed();
        self.files
            .write()
            .remove(path)
            .map(drop)
            .ok_or_else(|| Error::NotFound {
                path: path.to_string(),
            })
    }

    fn exists(&self, path: &FilePath) -> Result<bool> {
        Ok(self.files.read().contains_key(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;

    #[test]
    fn conformance() {
        conformance::run_all(&RamDirectory::new());
    }

    #[test]
    fn blocking_calls_panic_on_async_threads_in_debug_builds() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        let dir = RamDirectory::new();
        let on_worker = {
            let dir = dir.clone();
            rt.block_on(async move {
                tokio::spawn(async move { dir.list("").map(|l| l.len()) })
                    .await
                    .is_err()
            })
        };
        assert_eq!(
            on_worker,
            cfg!(debug_assertions),
            "a task on an async worker"
        );
        let in_pool = rt.block_on(async move {
            tokio::task::spawn_blocking(move || dir.list("").is_ok())
                .await
                .expect("the blocking pool may block")
        });
        assert!(in_pool);
    }
}
