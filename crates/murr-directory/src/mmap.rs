//! Local files, opened as memory maps.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::{Directory, FileMeta, FilePath, FileWriter};

const TMP_SUFFIX: &str = ".tmp";
const LOCK_FILE: &str = "LOCK";
/// What an empty volume holds at its root: a folder that holds only this is empty too.
const EMPTY_VOLUME: &str = "lost+found";
/// The prefix of the files that spool uploads (murr-http's Parquet bodies) at the top level of a
/// data folder; with the `.tmp` suffix they are murr's own, and removed at open.
pub const UPLOAD_PREFIX: &str = ".upload-";

/// Whether `name` is a temporary file murr writes: `<file>.<pid>-<n>.tmp` (see `temp_path`).
fn is_own_temp(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(TMP_SUFFIX) else {
        return false;
    };
    let Some((_, tag)) = stem.rsplit_once('.') else {
        return false;
    };
    let Some((pid, n)) = tag.split_once('-') else {
        return false;
    };
    !pid.is_empty()
        && !n.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && n.bytes().all(|b| b.is_ascii_digit())
}

/// A folder on local disk. Files are opened as read-only memory maps, populated up front so that
/// reads never fault to disk.
///
/// One process at a time: [`MmapDirectory::open`] takes an exclusive lock on `LOCK` in the folder,
/// then removes temporary files a crashed writer left behind (only names murr gives them). It
/// refuses a folder that holds files murr did not write: pointed at `/srv` by mistake, it must not
/// treat other programs' files as its own.
#[derive(Debug)]
pub struct MmapDirectory {
    root: PathBuf,
    populate: bool,
    _lock: File,
    counter: AtomicU64,
}

impl MmapDirectory {
    /// Opens the folder `root` of a murr process that may be running (a server's data folder),
    /// without its lock: for a second writer that only adds files beside it (a publish of
    /// segments built elsewhere). Files are created once, under names the server never gives
    /// (temporary files carry this process's id), so neither overwrites the other's; the
    /// temporary files of a crashed writer are left for the folder's owner to remove.
    ///
    /// # Errors
    /// [`Error::Config`] when the folder is not a murr data folder (it has no `LOCK`),
    /// [`Error::Io`] otherwise.
    pub fn open_shared(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let shown = root.display().to_string();
        let lock_path = root.join(LOCK_FILE);
        if !lock_path.exists() {
            return Err(Error::Config {
                setting: "data folder",
                message: format!(
                    "{shown} is not a murr data folder (it has no {LOCK_FILE} file): give the folder a murr server created"
                ),
            });
        }
        let lock = File::open(&lock_path).map_err(|e| Error::io("open lock file", &shown, e))?;
        Ok(MmapDirectory {
            root,
            populate: true,
            _lock: lock,
            counter: AtomicU64::new(0),
        })
    }

    /// Opens (creating it if needed) the folder `root`.
    ///
    /// # Errors
    /// [`Error::Locked`] when another process uses the folder, [`Error::Io`] otherwise.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let shown = root.display().to_string();
        fs::create_dir_all(&root).map_err(|e| Error::io("create folder", &shown, e))?;
        let lock_path = root.join(LOCK_FILE);
        // The lock file marks the folder as murr's: one that holds files but no lock is another
        // program's (a data folder pointed at /srv by mistake), and murr never touches it.
        if !lock_path.exists() {
            let entries = fs::read_dir(&root).map_err(|e| Error::io("list", &shown, e))?;
            for entry in entries {
                let name = entry
                    .map_err(|e| Error::io("list", &shown, e))?
                    .file_name()
                    .to_string_lossy()
                    .into_owned();
                if name != EMPTY_VOLUME {
                    return Err(Error::Foreign { path: shown, name });
                }
            }
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io("open lock file", &shown, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(Error::Locked { path: shown }),
            Err(fs::TryLockError::Error(e)) => return Err(Error::io("lock", &shown, e)),
        }
        let dir = MmapDirectory {
            root,
            populate: true,
            _lock: lock,
            counter: AtomicU64::new(0),
        };
        let removed = dir.remove_temp_files(&dir.root)? + dir.remove_stale_uploads()?;
        if removed > 0 {
            tracing::info!(folder = %shown, removed, "removed temporary files left by an interrupted write");
        }
        Ok(dir)
    }

    /// Removes upload spool files a crashed process left at the top level.
    fn remove_stale_uploads(&self) -> Result<usize> {
        let shown = self.root.display().to_string();
        let mut removed = 0;
        for entry in fs::read_dir(&self.root).map_err(|e| Error::io("list", &shown, e))? {
            let entry = entry.map_err(|e| Error::io("list", &shown, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(UPLOAD_PREFIX) && name.ends_with(TMP_SUFFIX) {
                fs::remove_file(entry.path()).map_err(|e| Error::io("remove", &name, e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Whether opened files are read into memory at once (the default) or faulted in on first use.
    #[must_use]
    pub fn with_populate(mut self, populate: bool) -> Self {
        self.populate = populate;
        self
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &FilePath) -> PathBuf {
        self.root.join(path.as_str())
    }

    /// Creates `folder` and the folders above it that are missing, each made durable in its
    /// parent (a new file's entry is synced by `finish`, but a new folder's entry in its own
    /// parent would be lost on a power cut without this).
    fn create_folders(&self, folder: &Path, path: &FilePath) -> Result<()> {
        let mut missing = Vec::new();
        let mut at = folder;
        while at != self.root && !at.is_dir() {
            missing.push(at);
            at = parent_of(at);
        }
        if missing.is_empty() {
            return Ok(());
        }
        fs::create_dir_all(folder).map_err(|e| Error::io("create folder", path.as_str(), e))?;
        for created in missing.iter().rev() {
            sync_dir(parent_of(created))?;
        }
        Ok(())
    }

    /// A path inside the folder as error messages show it: relative to the folder (answers to
    /// clients never reveal where the data folder is).
    fn relative(&self, p: &Path) -> String {
        p.strip_prefix(&self.root)
            .unwrap_or(p)
            .display()
            .to_string()
    }

    fn remove_temp_files(&self, folder: &Path) -> Result<usize> {
        let mut removed = 0;
        let entries = match fs::read_dir(folder) {
            Ok(e) => e,
            Err(e) => return Err(Error::io("list", self.relative(folder), e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", self.relative(folder), e))?;
            let p = entry.path();
            let ft = entry
                .file_type()
                .map_err(|e| Error::io("stat", self.relative(&p), e))?;
            if ft.is_dir() && entry.file_name() != EMPTY_VOLUME {
                removed += self.remove_temp_files(&p)?;
            } else if is_own_temp(&entry.file_name().to_string_lossy()) {
                fs::remove_file(&p).map_err(|e| Error::io("remove", self.relative(&p), e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// A temporary file to write `path`'s bytes to, and the final name, with its folders made:
    /// for a cache tier that fills files itself and [`MmapDirectory::publish`]es them.
    pub(crate) fn stage(&self, path: &FilePath) -> Result<(File, PathBuf, PathBuf)> {
        let dest = self.full(path);
        self.create_folders(parent_of(&dest), path)?;
        let tmp = self.temp_path(&dest);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io("create", path.as_str(), e))?;
        Ok((file, tmp, dest))
    }

    /// Maps a staged file (to upload it before it has its name).
    pub(crate) fn map_staged(&self, tmp: &Path, path: &FilePath) -> Result<Bytes> {
        map_file(tmp, path.as_str(), self.populate)
    }

    /// As [`MmapDirectory::map_staged`], mapped cold (see [`Directory::warm`]).
    pub(crate) fn map_staged_cold(&self, tmp: &Path, path: &FilePath) -> Result<Bytes> {
        map_file(tmp, path.as_str(), false)
    }

    /// Gives a staged, synced file its name (replacing a file of that name: a cache holds the
    /// same bytes under a name, so two threads that filled one name race harmlessly).
    pub(crate) fn publish(&self, tmp: &Path, dest: &Path, path: &FilePath) -> Result<()> {
        fs::rename(tmp, dest).map_err(|e| Error::io("rename", path.as_str(), e))?;
        sync_dir(parent_of(dest))
    }

    fn temp_path(&self, full: &Path) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut name = full.as_os_str().to_owned();
        name.push(format!(".{}-{n}{TMP_SUFFIX}", std::process::id()));
        PathBuf::from(name)
    }

    fn list_into(&self, folder: &Path, rel: &str, out: &mut Vec<FileMeta>) -> Result<()> {
        let entries = match fs::read_dir(folder) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("list", self.relative(folder), e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", self.relative(folder), e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            // A file deleted while the folder is listed (another thread's or process's merge,
            // say) is not listed.
            let Some(ft) =
                gone_is_none(entry.file_type()).map_err(|e| Error::io("stat", &child, e))?
            else {
                continue;
            };
            if ft.is_dir() {
                self.list_into(&entry.path(), &child, out)?;
            } else {
                let is_lock = rel.is_empty() && name == LOCK_FILE;
                if name.ends_with(TMP_SUFFIX) || is_lock {
                    continue;
                }
                // Names that are not valid paths were not written by murr: leave them alone.
                if let Ok(path) = FilePath::new(child) {
                    let Some(meta) = gone_is_none(entry.metadata())
                        .map_err(|e| Error::io("stat", path.as_str(), e))?
                    else {
                        continue;
                    };
                    let modified = meta
                        .modified()
                        .map_err(|e| Error::io("stat", path.as_str(), e))?;
                    out.push(FileMeta {
                        path,
                        len: meta.len(),
                        modified,
                    });
                }
            }
        }
        Ok(())
    }
}

/// `None` for a file that is gone (deleted between the folder's read and this look at it).
fn gone_is_none<T>(r: std::io::Result<T>) -> std::io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| {
        let name = dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        Error::io("sync folder", name, e)
    })
}

fn parent_of(p: &Path) -> &Path {
    p.parent().expect("a file inside the root has a parent")
}

struct MmapWriter {
    file: Option<PieceWriter>,
    tmp: PathBuf,
    dest: PathBuf,
    shown: String,
}

/// Maps a file read-only, without reading it in: a segment built by
/// `murr_segment::SegmentBuilder` and not yet in any directory (a publish reads it from here).
/// The file must not change while mapped.
///
/// # Errors
/// [`Error::Io`] when it cannot be opened or mapped.
pub fn map_path(path: &Path) -> Result<Bytes> {
    map_file(path, &path.display().to_string(), false)
}

/// Maps the file at `full` read-only (populated up front with `populate`).
fn map_file(full: &Path, shown: &str, populate: bool) -> Result<Bytes> {
    let file = File::open(full).map_err(|e| Error::io("open", shown, e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io("stat", shown, e))?
        .len();
    if len == 0 {
        return Ok(Bytes::new());
    }
    let mut options = memmap2::MmapOptions::new();
    if populate {
        options.populate();
    }
    let tracked = !populate && crate::residency::active();
    #[expect(unsafe_code, reason = "memory-mapping a file is unsafe by nature")]
    // SAFETY: murr writes files once (to a temporary name, then linked into place) and never
    // modifies or truncates a file afterwards; deletion keeps the mapping valid. The folder is
    // locked against other murr processes. Another program editing murr's files in place is
    // outside the contract (see ARCHITECTURE.md).
    let map = unsafe { options.map(&file) }.map_err(|e| Error::io("mmap", shown, e))?;
    if tracked {
        // Pages come in as fetches touch them, one at a time: read-ahead would bring in the
        // cold neighbours of every hot row.
        let _ = map.advise(memmap2::Advice::Random);
        let map = std::sync::Arc::new(map);
        crate::residency::register(&map);
        return Ok(Bytes::from_owner(SharedMap(map)));
    }
    Ok(Bytes::from_owner(map))
}

/// Bytes of one piece of a written file: the size of a huge page (x86-64, aarch64 with 4 KiB
/// pages).
const PIECE: usize = 2 << 20;

/// Writes a file in pieces of [`PIECE`] bytes at offsets that are multiples of it (the last
/// piece shorter). The kernel gives each such write one 2 MiB folio of page cache where it can
/// (ext4 and XFS on Linux 6.x, large folios), and a mapping of the file then maps them with one
/// TLB entry each: a segment's index probes and row reads miss the TLB far less. Writes of any
/// other size (`BufWriter`'s) leave small folios behind, mapped 4 KiB at a time. See
/// ARCHITECTURE.md, "Huge pages for segment files".
struct PieceWriter {
    file: File,
    buf: Vec<u8>,
}

impl PieceWriter {
    fn new(file: File) -> PieceWriter {
        PieceWriter {
            file,
            buf: Vec::new(),
        }
    }

    /// Writes what is buffered and gives the file back.
    fn into_inner(mut self) -> std::io::Result<File> {
        self.flush()?;
        Ok(self.file)
    }
}

impl Write for PieceWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.is_empty() && data.len() >= PIECE {
            // At a piece's start already: whole pieces go out without a copy.
            let whole = data.len() / PIECE * PIECE;
            self.file.write_all(&data[..whole])?;
            return Ok(whole);
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(PIECE);
        }
        let take = (PIECE - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..take]);
        if self.buf.len() == PIECE {
            self.file.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(take)
    }

    /// Writes out the partial piece: the next write starts off a piece boundary, so only the
    /// file's end should be flushed.
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf)?;
            self.buf.clear();
        }
        self.file.flush()
    }
}

/// A map shared with the RAM tier, which pages parts of it out.
struct SharedMap(std::sync::Arc<memmap2::Mmap>);

impl AsRef<[u8]> for SharedMap {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Write for MmapWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.as_mut().expect("open until finish").write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.file
            .as_mut()
            .expect("open until finish")
            .write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().expect("open until finish").flush()
    }
}

impl FileWriter for MmapWriter {
    fn finish(mut self: Box<Self>) -> Result<Bytes> {
        crate::assert_blocking_allowed();
        let file = self.file.take().expect("finish is called once");
        let file = file
            .into_inner()
            .map_err(|e| Error::io("write", &self.shown, e))?;
        file.sync_all()
            .map_err(|e| Error::io("sync", &self.shown, e))?;
        drop(file);
        // hard_link refuses to replace an existing file: the new name appears whole, or not at all.
        fs::hard_link(&self.tmp, &self.dest).map_err(|e| Error::io("link", &self.shown, e))?;
        fs::remove_file(&self.tmp).map_err(|e| Error::io("remove", &self.shown, e))?;
        sync_dir(parent_of(&self.dest))?;
        // The file's pages are in the page cache, just written: mapping them reads no disk. It
        // is mapped cold; `Directory::warm` reads it in once the writer is ready.
        map_file(&self.dest, &self.shown, false)
    }
}

impl Drop for MmapWriter {
    fn drop(&mut self) {
        // Unfinished (or finished, after the link): the temporary name goes.
        drop(self.file.take());
        let _ = fs::remove_file(&self.tmp);
    }
}

impl Directory for MmapDirectory {
    fn open(&self, path: &FilePath) -> Result<Bytes> {
        crate::assert_blocking_allowed();
        map_file(&self.full(path), path.as_str(), self.populate)
    }

    fn warm(&self, bytes: &[u8]) {
        if self.populate {
            crate::touch_pages(bytes);
        }
    }

    fn release(&self, bytes: &[u8], range: std::ops::Range<usize>) {
        // Every non-empty file this directory hands out is a map of the file.
        crate::residency::release(bytes, range);
    }

    fn read_range(&self, path: &FilePath, offset: u64, len: usize) -> Result<Bytes> {
        use std::os::unix::fs::FileExt;
        crate::assert_blocking_allowed();
        let file = File::open(self.full(path)).map_err(|e| Error::io("open", path.as_str(), e))?;
        let mut buf = vec![0; len];
        file.read_exact_at(&mut buf, offset)
            .map_err(|e| Error::io("read range", path.as_str(), e))?;
        Ok(Bytes::from(buf))
    }

    fn create(&self, path: &FilePath) -> Result<Box<dyn FileWriter>> {
        crate::assert_blocking_allowed();
        let dest = self.full(path);
        if dest.exists() {
            return Err(Error::AlreadyExists {
                path: path.to_string(),
            });
        }
        let (file, tmp, dest) = self.stage(path)?;
        Ok(Box::new(MmapWriter {
            file: Some(PieceWriter::new(file)),
            tmp,
            dest,
            shown: path.to_string(),
        }))
    }

    fn list(&self, prefix: &str) -> Result<Vec<FileMeta>> {
        crate::assert_blocking_allowed();
        let mut out = Vec::new();
        if prefix.is_empty() {
            self.list_into(&self.root, "", &mut out)?;
        } else {
            let p = FilePath::new(prefix)?;
            self.list_into(&self.full(&p), prefix, &mut out)?;
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn delete(&self, path: &FilePath) -> Result<()> {
        crate::assert_blocking_allowed();
        let full = self.full(path);
        fs::remove_file(&full).map_err(|e| Error::io("delete", path.as_str(), e))?;
        // Remove folders the deletion left empty, up to the root; a folder still in use stays.
        let mut dir = parent_of(&full);
        while dir != self.root && fs::remove_dir(dir).is_ok() {
            dir = parent_of(dir);
        }
        sync_dir(dir)
    }

    fn exists(&self, path: &FilePath) -> Result<bool> {
        self.full(path)
            .try_exists()
            .map_err(|e| Error::io("stat", path.as_str(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;

    #[test]
    fn pieces_go_out_whole_and_the_file_is_what_was_written() {
        let tmp = tempfile::tempdir().expect("temp folder");
        let path = tmp.path().join("f");
        let mut w = PieceWriter::new(File::create(&path).expect("creates"));
        let data: Vec<u8> = (0..5 * PIECE + 12345).map(|i| (i % 251) as u8).collect();
        // Small writes, one that crosses a piece's end, one of whole pieces from a boundary.
        let cuts = [0, 10, 4096, PIECE + 7, 2 * PIECE, 4 * PIECE + 1, data.len()];
        for pair in cuts.windows(2) {
            w.write_all(&data[pair[0]..pair[1]]).expect("writes");
            let written = w.file.metadata().expect("stat").len() as usize;
            assert_eq!(written % PIECE, 0, "only whole pieces before the end");
            assert!(written + PIECE > pair[1], "at most one piece held back");
        }
        drop(w.into_inner().expect("flushes"));
        assert_eq!(fs::read(&path).expect("reads"), data);
    }

    #[test]
    fn conformance() {
        let tmp = tempfile::tempdir().expect("temp folder");
        conformance::run_all(&MmapDirectory::open(tmp.path()).expect("opens"));
        let unpopulated = tempfile::tempdir().expect("temp folder");
        conformance::run_all(
            &MmapDirectory::open(unpopulated.path())
                .expect("opens")
                .with_populate(false),
        );
    }

    #[test]
    fn a_file_deleted_while_its_folder_is_listed_is_left_out() {
        // What a listing meets when another thread or process deletes a file between reading
        // the folder and looking at the file: before, the whole listing failed with NotFound.
        let tmp = tempfile::tempdir().expect("tmp");
        std::fs::write(tmp.path().join("a"), b"a").expect("writes");
        let entry = std::fs::read_dir(tmp.path())
            .expect("reads")
            .next()
            .expect("one entry")
            .expect("entry");
        std::fs::remove_file(tmp.path().join("a")).expect("removes");
        assert!(
            gone_is_none(entry.metadata())
                .expect("not an error")
                .is_none()
        );
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(gone_is_none::<()>(Err(other)).is_err());
    }

    #[test]
    fn a_folder_of_another_program_is_refused_and_its_files_left_alone() {
        let tmp = tempfile::tempdir().expect("temp folder");
        fs::write(tmp.path().join("report.tmp"), b"mine").expect("writes");
        let err = MmapDirectory::open(tmp.path()).expect_err("not murr's folder");
        assert!(err.to_string().contains("\"report.tmp\""), "{err}");
        assert!(tmp.path().join("report.tmp").exists());
        assert!(
            !tmp.path().join(LOCK_FILE).exists(),
            "nothing written there"
        );
        fs::remove_file(tmp.path().join("report.tmp")).expect("removes");
        // An empty volume (its lost+found) is empty.
        fs::create_dir(tmp.path().join("lost+found")).expect("creates");
        drop(MmapDirectory::open(tmp.path()).expect("opens an empty volume"));
        // In murr's own folder, only the temporary names murr gives are removed.
        fs::write(tmp.path().join(".upload-x1y2.tmp"), b"half").expect("writes");
        fs::create_dir_all(tmp.path().join("tables/t")).expect("creates");
        fs::write(tmp.path().join("tables/t/keep.tmp"), b"not murr's name").expect("writes");
        fs::write(tmp.path().join("tables/t/seg-1.murr.42-0.tmp"), b"half").expect("writes");
        drop(MmapDirectory::open(tmp.path()).expect("reopens"));
        assert!(
            !tmp.path().join(".upload-x1y2.tmp").exists(),
            "a stale upload goes"
        );
        assert!(
            !tmp.path().join("tables/t/seg-1.murr.42-0.tmp").exists(),
            "murr's temporary file goes"
        );
        assert!(
            tmp.path().join("tables/t/keep.tmp").exists(),
            "another name stays"
        );
    }

    #[test]
    fn second_open_of_a_folder_is_refused_while_the_first_lives() {
        let tmp = tempfile::tempdir().expect("temp folder");
        let first = MmapDirectory::open(tmp.path()).expect("opens");
        assert!(matches!(
            MmapDirectory::open(tmp.path()),
            Err(Error::Locked { .. })
        ));
        drop(first);
        MmapDirectory::open(tmp.path()).expect("lock released");
    }

    #[test]
    fn temporary_files_of_a_crashed_write_are_removed_at_open() {
        let tmp = tempfile::tempdir().expect("temp folder");
        {
            let dir = MmapDirectory::open(tmp.path()).expect("opens");
            let p = FilePath::new("t/seg-1").expect("valid");
            let mut w = dir.create(&p).expect("creates");
            w.write_all(b"partial").expect("writes");
            // A crash: the writer is neither finished nor dropped.
            std::mem::forget(w);
            assert!(!dir.exists(&p).expect("stat"));
        }
        let count_tmp = || {
            fs::read_dir(tmp.path().join("t"))
                .expect("folder")
                .filter(|e| {
                    e.as_ref()
                        .expect("entry")
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".tmp")
                })
                .count()
        };
        assert_eq!(count_tmp(), 1);
        let dir = MmapDirectory::open(tmp.path()).expect("reopens");
        assert_eq!(count_tmp(), 0);
        assert!(dir.list("").expect("lists").is_empty());
    }
}
