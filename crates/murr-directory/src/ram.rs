//! An in-memory directory.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

use crate::error::{Error, Result};
use crate::{Directory, FilePath, FileWriter};

/// Files held in memory. Clones share the same files.
#[derive(Debug, Clone, Default)]
pub struct RamDirectory {
    files: Arc<RwLock<BTreeMap<FilePath, Bytes>>>,
}

impl RamDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }
}

struct RamWriter {
    files: Arc<RwLock<BTreeMap<FilePath, Bytes>>>,
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
    fn finish(self: Box<Self>) -> Result<()> {
        let RamWriter { files, path, buf } = *self;
        let mut files = files.write();
        if files.contains_key(&path) {
            return Err(Error::AlreadyExists {
                path: path.to_string(),
            });
        }
        files.insert(path, Bytes::from(buf));
        Ok(())
    }
}

impl Directory for RamDirectory {
    fn open(&self, path: &FilePath) -> Result<Bytes> {
        self.files
            .read()
            .get(path)
            .cloned()
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

    fn replace(&self, path: &FilePath, data: &[u8]) -> Result<()> {
        self.files
            .write()
            .insert(path.clone(), Bytes::copy_from_slice(data));
        Ok(())
    }

    fn list(&self, prefix: &str) -> Result<Vec<FilePath>> {
        Ok(self
            .files
            .read()
            .keys()
            .filter(|p| p.is_under(prefix))
            .cloned()
            .collect())
    }

    fn delete(&self, path: &FilePath) -> Result<()> {
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
}
