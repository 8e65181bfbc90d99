//! Errors of the format layer.

/// Why bytes could not be decoded, or a value could not be encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a valid segment or manifest: truncated, misaligned or corrupted.
    #[error("corrupt data: {reason}")]
    Corrupt {
        /// What is wrong, in words.
        reason: String,
    },
    /// The bytes were written by a newer (or unknown) format version.
    #[error("unsupported format version={version} (this build reads version {supported})")]
    UnsupportedVersion {
        /// The version found in the bytes.
        version: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A value does not fit the format (a name, a schema, a size limit).
    #[error("invalid input: {reason}")]
    Invalid {
        /// What is wrong, in words.
        reason: String,
    },
    /// The writer the encoder was given failed.
    #[error("write failed: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    pub(crate) fn corrupt(reason: impl Into<String>) -> Self {
        Error::Corrupt {
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Error::Invalid {
            reason: reason.into(),
        }
    }
}

/// The format layer's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
