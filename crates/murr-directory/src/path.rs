//! Validated relative file names.

use std::fmt;

use crate::error::{Error, Result};

/// A relative file name inside a directory: `/`-separated parts of `[A-Za-z0-9_.-]`, none of them
/// empty, `.` or `..`. Remote stores have no OS paths, so neither does this type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FilePath(String);

impl FilePath {
    /// Checks and wraps a path.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] saying what is wrong.
    pub fn new(path: impl Into<String>) -> Result<Self> {
        let path = path.into();
        let bad = |reason| {
            Err(Error::InvalidPath {
                path: path.clone(),
                reason,
            })
        };
        if path.is_empty() {
            return bad("empty");
        }
        for part in path.split('/') {
            if part.is_empty() {
                return bad("empty part");
            }
            if part == "." || part == ".." {
                return bad("`.` and `..` are not allowed");
            }
            if !part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            {
                return bad("only A-Z a-z 0-9 _ . - and / are allowed");
            }
        }
        Ok(FilePath(path))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last part.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// `self/child`.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] when `child` is not a valid path.
    pub fn join(&self, child: &str) -> Result<FilePath> {
        FilePath::new(format!("{}/{child}", self.0))
    }

    /// Whether the path lies under the folder `prefix` (`""` is the root).
    pub fn is_under(&self, prefix: &str) -> bool {
        prefix.is_empty()
            || (self.0.len() > prefix.len()
                && self.0.starts_with(prefix)
                && self.0.as_bytes()[prefix.len()] == b'/')
    }
}

impl fmt::Display for FilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates() {
        for ok in ["a", "a/b.c", "tables/t_1/seg-0001.murr", "MANIFEST"] {
            FilePath::new(ok).expect(ok);
        }
        for bad in ["", "/a", "a/", "a//b", "..", "a/../b", "a b", "a\\b", "é"] {
            assert!(FilePath::new(bad).is_err(), "{bad}");
        }
        let p = FilePath::new("t/x/y").expect("valid");
        assert!(p.is_under("t") && p.is_under("t/x") && p.is_under(""));
        assert!(!p.is_under("t/x/y") && !p.is_under("t/"));
        assert!(!FilePath::new("tt/x").expect("valid").is_under("t"));
        assert_eq!(p.file_name(), "y");
    }
}
