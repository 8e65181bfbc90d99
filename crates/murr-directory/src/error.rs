//! Errors of directory operations.

/// Why a directory operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No file at this path.
    #[error("file not found: {path}")]
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// A file already exists where a new one was to be written.
    #[error("file already exists: {path}")]
    AlreadyExists {
        /// The path asked for.
        path: String,
    },
    /// The path is not a valid relative file name.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Another process holds the directory's lock.
    #[error("data folder {path} is in use by another process (lock held on its LOCK file)")]
    Locked {
        /// The folder.
        path: String,
    },
    /// The data folder holds files murr did not write.
    #[error(
        "data folder {path} holds {name:?}, which murr did not write: give murr an empty folder, or one it created"
    )]
    Foreign {
        /// The folder.
        path: String,
        /// One of the foreign entries.
        name: String,
    },
    /// A storage setting is wrong (an unknown URL scheme, missing credentials).
    #[error("{setting}: {message}")]
    Config {
        /// The setting, as the configuration names it (`storage.url`).
        setting: &'static str,
        /// What is wrong, and what to do.
        message: String,
    },
    /// The operating system or the store failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<String>, source: std::io::Error) -> Self {
        let path = path.into();
        match source.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound { path },
            std::io::ErrorKind::AlreadyExists => Error::AlreadyExists { path },
            _ => Error::Io { op, path, source },
        }
    }
}

/// The directory layer's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
