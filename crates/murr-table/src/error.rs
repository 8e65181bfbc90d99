//! Errors of the table layer, and their small public classification.

/// What kind of failure an [`Error`] is, and so what the caller should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The table does not exist: create it, or fix the name.
    NotFound,
    /// The table already exists: use it, or drop it first.
    AlreadyExists,
    /// The request is wrong (schema, column, type, null, name): fix it; retrying cannot help.
    InvalidArgument,
    /// The table exists but cannot serve (its files failed to load): an operator must look.
    Unavailable,
    /// The change lost a race against another writer, or this node does not take changes.
    Conflict,
    /// Storage failed (an I/O error, a store that does not answer): retrying later may help.
    Storage,
    /// The disk (or quota) is full: nothing was written; it works again once space is freed.
    StorageFull,
    /// A bug in murr.
    Internal,
}

/// Why a table operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No table of that name.
    #[error("table {table:?} not found")]
    TableNotFound {
        /// The name asked for.
        table: String,
    },
    /// A table of that name exists.
    #[error("table {table:?} already exists")]
    TableExists {
        /// The name asked for.
        table: String,
    },
    /// The table has a column of that name (a schema change that adds it).
    #[error("table {table:?} already has column {column:?}{detail}")]
    ColumnExists {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// More on the clash (the types, when they differ).
        detail: String,
    },
    /// Another writer wrote a file this change needed (the next manifest version, or a segment
    /// name) first: this change is not applied. Two processes write to one table (a second
    /// writer on shared storage); the loser refreshes and tries again, or stops.
    #[error(
        "table {table:?}: {what} was written by another writer; this change was not applied (one writer per table: a retry applies on top of the other writer's state)"
    )]
    Conflict {
        /// The table.
        table: String,
        /// The file both wrote: `manifest version 7`, `segment seg-...`.
        what: String,
    },
    /// A create or a drop of this table is in progress.
    #[error("table {table:?} is being created or dropped; try again")]
    Busy {
        /// The table.
        table: String,
    },
    /// The store was opened read-only (a replica): it serves reads, and refuses changes.
    #[error("this node is a read-only replica: {what} is done on the writer")]
    ReadOnly {
        /// What was refused.
        what: String,
    },
    /// The request does not fit the table; the message names the column or value.
    #[error("{0}")]
    Invalid(String),
    /// The table failed to load.
    #[error("table {table:?} is unavailable: {reason}")]
    Unavailable {
        /// The table.
        table: String,
        /// Why it failed to load.
        reason: String,
    },
    /// A manifest could not be decoded.
    #[error("manifest {path}: {reason}")]
    CorruptManifest {
        /// The manifest file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Storage failed.
    #[error("storage: {0}")]
    Directory(#[from] murr_directory::Error),
    /// A segment could not be written or read.
    #[error("{0}")]
    Segment(#[from] murr_segment::Error),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Whether `e` is a full disk or an exceeded quota.
fn is_full(e: &murr_directory::Error) -> bool {
    match e {
        murr_directory::Error::Io { source, .. } => {
            source.kind() == std::io::ErrorKind::StorageFull
                || source.kind() == std::io::ErrorKind::QuotaExceeded
        }
        _ => false,
    }
}

impl Error {
    /// The error's classification.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::TableNotFound { .. } => ErrorKind::NotFound,
            Error::TableExists { .. } | Error::ColumnExists { .. } => ErrorKind::AlreadyExists,
            Error::Conflict { .. } | Error::ReadOnly { .. } | Error::Busy { .. } => {
                ErrorKind::Conflict
            }
            Error::Invalid(_) => ErrorKind::InvalidArgument,
            Error::Unavailable { .. } | Error::CorruptManifest { .. } => ErrorKind::Unavailable,
            Error::Directory(e) | Error::Segment(murr_segment::Error::Directory(e))
                if is_full(e) =>
            {
                ErrorKind::StorageFull
            }
            Error::Directory(_) => ErrorKind::Storage,
            Error::Segment(
                murr_segment::Error::Invalid(_) | murr_segment::Error::TooLarge { .. },
            ) => ErrorKind::InvalidArgument,
            Error::Segment(
                murr_segment::Error::Format { .. } | murr_segment::Error::ColumnType { .. },
            ) => ErrorKind::Unavailable,
            Error::Segment(murr_segment::Error::Directory(_)) => ErrorKind::Storage,
            Error::Segment(_) | Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The error of creating a file (create-once) for `table`: a name another writer took
    /// first is a [`Error::Conflict`] naming `what`, anything else a storage error.
    pub(crate) fn create_failed(table: &str, what: &str, e: murr_directory::Error) -> Self {
        match e {
            murr_directory::Error::AlreadyExists { .. } => Error::Conflict {
                table: table.to_owned(),
                what: what.to_owned(),
            },
            other => other.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }
}

impl From<murr_format::Error> for Error {
    fn from(e: murr_format::Error) -> Self {
        match e {
            murr_format::Error::Invalid { reason } => Error::Invalid(reason),
            other => Error::Internal(other.to_string()),
        }
    }
}

/// The table layer's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
