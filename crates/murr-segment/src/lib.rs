//! murr's immutable segments, in Arrow terms.
//!
//! A [`Segment`] is one segment file opened from a [`Directory`]:
//! [`encode`] writes record batches into the format of [`murr_format`], [`Segment::open`]
//! validates a file once, [`Segment::find`] looks an encoded key up in its index, and
//! [`gather_columns`] builds Arrow arrays of columns for rows spread over several segments.
//! [`downcast_dtype!`] is the one dispatch from a dtype to code generic over its Arrow type.
//!
//! Reads are synchronous and never touch storage: the segment's bytes are resident.
//!
//! Outside a server, [`SegmentBuilder`] builds a segment file from record batches (a batch job
//! does, and `murr segment publish` commits the files to a table), and [`Segment::from_bytes`]
//! opens any segment file, from any source, with one validation. Files carry their format version
//! ([`murr_format::FORMAT_VERSION`]; this build reads back to [`murr_format::MIN_FORMAT_VERSION`]);
//! the `read_segment` example prints a file's rows with this public API alone, and
//! `docs/format.md` specifies the bytes for readers in other languages.

mod builder;
mod dispatch;
mod encode;
mod gather;

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use murr_directory::{Directory, FilePath};
use murr_format::filter::KeyFilter;
use murr_format::{SegmentView, Verify};

pub use builder::{Built, MAX_SEGMENT_ROWS, SegmentBuilder};
pub use encode::{
    Chunk, Counts, Input, MAX_CHUNK_ROWS, RowKeys, Written, encode, encode_key_arrays, encode_merge,
};
pub use gather::{Loc, ResolvedRows, gather, gather_columns, gather_rows};

#[doc(hidden)]
pub mod __private {
    //! What [`downcast_dtype!`](crate::downcast_dtype) names, so its callers need not.
    pub use arrow_array::types;
    pub use arrow_schema::TimeUnit;
    pub use murr_format::DType;
}

/// Why a segment could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file is not a valid segment.
    #[error("segment {path}: {source}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong with it.
        #[source]
        source: murr_format::Error,
    },
    /// Storage failed.
    #[error(transparent)]
    Directory(#[from] murr_directory::Error),
    /// The input does not fit the schema (a bug of the caller: the table layer validates first).
    #[error("invalid segment input: {0}")]
    Invalid(String),
    /// A segment stores a column with another type than the table reads it with (a bug, or a
    /// file from another table).
    #[error(
        "segment {path} stores column {column:?} as {stored}, the table reads it as {expected}"
    )]
    ColumnType {
        /// The file.
        path: String,
        /// The column.
        column: String,
        /// The type in the segment.
        stored: murr_format::DType,
        /// The type the table reads.
        expected: murr_format::DType,
    },
    /// The strings or list items asked for would exceed one Arrow array's limit (2 GiB).
    #[error(
        "column {column:?}: the answer would hold more than 2 GiB of values (the limit of one Arrow array): ask for fewer keys"
    )]
    TooLarge {
        /// The column.
        column: String,
    },
    /// Arrow refused to build an array.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// The segment layer's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An open segment: validated bytes and the name of their file.
#[derive(Clone)]
pub struct Segment {
    view: Arc<SegmentView>,
    path: FilePath,
    shadows: Arc<Shadows>,
    filter: Arc<OnceLock<KeyFilter>>,
}

/// Whether every copy of a [`Segment`] is gone ([`Segment::watch`]), without keeping it open.
#[derive(Debug, Clone)]
pub struct SegmentWatch(std::sync::Weak<SegmentView>);

impl SegmentWatch {
    /// Whether no copy of the segment is left.
    pub fn is_gone(&self) -> bool {
        self.0.strong_count() == 0
    }
}

/// The most rows of a segment [`Segment::build_key_filter`] builds a filter for (the filter takes
/// 1.25 bytes per row).
pub const KEY_FILTER_MAX_ROWS: usize = 4 << 20;

/// Bytes of a memory page: the unit [`Segment::shadow`] hands back.
const PAGE: usize = 4096;

/// Which rows of a segment newer segments have replaced, and how many rows of each page of the
/// row block are not replaced yet; allocated at the first [`Segment::shadow`].
#[derive(Debug, Default)]
struct Shadows {
    state: std::sync::OnceLock<ShadowState>,
}

#[derive(Debug)]
struct ShadowState {
    /// The newest table version whose commit marked rows here: a reader whose snapshot is
    /// older may still need the marked rows (it does not see the segment that replaced them).
    version: AtomicU64,
    rows: Box<[AtomicU64]>,
    /// Rows of each page of the file (those holding part of the row block) not shadowed yet.
    live: Box<[AtomicU32]>,
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("path", &self.path)
            .field("rows", &self.rows())
            .field("bytes", &self.view.bytes().len())
            .finish()
    }
}

impl Segment {
    /// Opens and validates a segment file; [`Verify::Full`] checks the checksum of the whole
    /// body too (one pass over the bytes).
    ///
    /// # Errors
    /// [`Error::Directory`] when the file cannot be read, [`Error::Format`] when it is not valid.
    pub fn open(dir: &dyn Directory, path: &FilePath, verify: Verify) -> Result<Segment> {
        let bytes = dir.open(path)?;
        Segment::from_bytes(bytes, path.clone(), verify)
    }

    /// Validates bytes already in memory as the segment `path`.
    ///
    /// # Errors
    /// [`Error::Format`] when they are not a valid segment.
    pub fn from_bytes(bytes: Bytes, path: FilePath, verify: Verify) -> Result<Segment> {
        let view = SegmentView::open(bytes, verify).map_err(|source| Error::Format {
            path: path.to_string(),
            source,
        })?;
        if murr_directory::residency::active() {
            for part in view.lookup_parts() {
                murr_directory::residency::pin(part);
            }
        }
        Ok(Segment {
            view: Arc::new(view),
            path,
            shadows: Arc::default(),
            filter: Arc::default(),
        })
    }

    /// Builds the [`KeyFilter`] of this segment's keys, which lookups ([`Segment::key_filter`])
    /// then consult before its index; every clone of the segment shares it. Reads every key
    /// (for inline keys, the whole row block): for a segment whose pages were just read in,
    /// of at most [`KEY_FILTER_MAX_ROWS`] rows. A segment of more rows is left without: it is
    /// the oldest of its table most of the time (a merge's output), which lookups reach last.
    pub fn build_key_filter(&self) {
        let rows = self.rows();
        if rows > KEY_FILTER_MAX_ROWS || self.filter.get().is_some() {
            return;
        }
        let mut filter = KeyFilter::with_capacity(rows);
        for row in 0..rows {
            filter.insert(self.view.hash(self.view.key(row)));
        }
        let _ = self.filter.set(filter);
    }

    /// The filter of this segment's keys, once [`Segment::build_key_filter`] has built it.
    #[inline]
    pub fn key_filter(&self) -> Option<&KeyFilter> {
        self.filter.get()
    }

    /// The file's name.
    pub fn path(&self) -> &FilePath {
        &self.path
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.view.rows()
    }

    /// Size of the file in bytes.
    pub fn size(&self) -> usize {
        self.view.bytes().len()
    }

    /// A watch that tells when every copy of this segment is gone, and with them its bytes (for
    /// a file, its map): a merge reads its output in only once readers have let go of its inputs.
    pub fn watch(&self) -> SegmentWatch {
        SegmentWatch(Arc::downgrade(&self.view))
    }

    /// The format-level view.
    pub fn view(&self) -> &SegmentView {
        &self.view
    }

    /// The row holding the encoded key `key`.
    pub fn find(&self, key: &[u8]) -> Option<u32> {
        self.view.find(key)
    }

    /// The row holding the encoded key `key`, given its hash in this segment
    /// (`self.view().hash(key)`).
    #[inline]
    pub fn find_hashed(&self, key: &[u8], hash: u64) -> Option<u32> {
        self.view.find_hashed(key, hash)
    }

    /// The encoded key of `row`.
    ///
    /// # Panics
    /// If `row` is out of range.
    pub fn key(&self, row: usize) -> &[u8] {
        self.view.key(row)
    }

    /// Whether [`Segment::shadow`] marked `row` replaced by a newer segment: a merge skips it
    /// without reading it.
    #[inline]
    pub fn is_shadowed(&self, row: usize) -> bool {
        self.shadows
            .state
            .get()
            .is_some_and(|s| s.rows[row / 64].load(Ordering::Acquire) & (1 << (row % 64)) != 0)
    }

    /// For a lookup by a reader whose table snapshot has version `version`: the rows it may
    /// skip unread (marked by commits its snapshot includes, so their keys are found in a newer
    /// segment first). `None` when no row is marked.
    #[inline]
    pub fn shadowed_as_of(&self, version: u64) -> Option<impl Fn(u32) -> bool + '_> {
        let state = self.shadows.state.get()?;
        Some(move |row: u32| {
            let r = row as usize;
            // The bit is read first: its mark's version was stored before it (see `shadow`).
            state
                .rows
                .get(r / 64)
                .is_some_and(|w| w.load(Ordering::Acquire) & (1 << (r % 64)) != 0)
                && version >= state.version.load(Ordering::Acquire)
        })
    }

    /// Rows marked shadowed so far.
    pub fn shadowed_rows(&self) -> usize {
        self.shadows.state.get().map_or(0, |s| {
            s.rows
                .iter()
                .map(|w| w.load(Ordering::Relaxed).count_ones() as usize)
                .sum()
        })
    }

    /// Marks `rows` as replaced by a newer segment, committed in table version `version` (their
    /// keys are in it): no read of a snapshot that includes that commit needs them again, since
    /// a fetch finds their keys in the newer segment first. Returns the byte ranges
    /// of the file whose every row is now replaced, whole pages of the row block, for the
    /// directory to drop from memory ([`murr_directory::Directory::release`]); each range is
    /// returned once.
    ///
    /// # Panics
    /// If a row is out of range.
    pub fn shadow(&self, rows: &[u32], version: u64) -> Vec<Range<usize>> {
        let meta = self.view.meta();
        let width = meta.row_width as usize;
        let (start, len) = (
            meta.rows_section.offset as usize,
            meta.rows_section.len as usize,
        );
        let n = self.rows();
        let state = self.shadows.state.get_or_init(|| {
            let first_page = start / PAGE;
            let pages = if len == 0 {
                0
            } else {
                (start + len - 1) / PAGE + 1 - first_page
            };
            let live: Vec<AtomicU32> = (0..pages).map(|_| AtomicU32::new(0)).collect();
            for r in 0..n {
                for p in row_pages(start, width, r) {
                    live[p - first_page].fetch_add(1, Ordering::Relaxed);
                }
            }
            ShadowState {
                version: AtomicU64::new(0),
                rows: (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
                live: live.into_boxed_slice(),
            }
        });
        // The version first, then the bits: a reader that sees a bit sees its version.
        state.version.fetch_max(version, Ordering::Release);
        let first_page = start / PAGE;
        let mut dead = Vec::new();
        for &row in rows {
            let r = row as usize;
            assert!(r < n, "row {r} of a segment of {n} rows");
            let bit = 1u64 << (r % 64);
            if state.rows[r / 64].fetch_or(bit, Ordering::Release) & bit != 0 {
                continue;
            }
            for p in row_pages(start, width, r) {
                if state.live[p - first_page].fetch_sub(1, Ordering::Relaxed) == 1 {
                    // Only pages wholly inside the row block: the others hold the header or
                    // another section too.
                    let (a, b) = (p * PAGE, (p + 1) * PAGE);
                    if a >= start && b <= start + len {
                        dead.push(a..b);
                    }
                }
            }
        }
        dead.sort_by_key(|r| r.start);
        // Adjacent pages as one range: fewer calls to drop them.
        let mut merged: Vec<Range<usize>> = Vec::with_capacity(dead.len());
        for r in dead {
            match merged.last_mut() {
                Some(last) if last.end == r.start => last.end = r.end,
                _ => merged.push(r),
            }
        }
        merged
    }
}

/// The pages (of the file) row `r` of a row block at `start`, rows of `width` bytes, lies on.
fn row_pages(start: usize, width: usize, r: usize) -> std::ops::RangeInclusive<usize> {
    let a = start + r * width;
    a / PAGE..=(a + width.max(1) - 1) / PAGE
}
