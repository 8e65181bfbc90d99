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
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutMode,
    PutOptions, PutPayload, RetryConfig,
};

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

/// How to reach an object store named by URL: the settings murr's configuration exposes
/// (`storage.s3.*`); credentials come from the store's usual environment variables
/// (`AWS_ACCESS_KEY_ID`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_KEY`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteOptions {
    /// An S3-compatible endpoint other than AWS (`http://127.0.0.1:8333`).
    pub endpoint: Option<String>,
    /// The S3 region. Default: `AWS_REGION` from the environment, else `us-east-1`.
    pub region: Option<String>,
    /// Allow `http://` endpoints. Default false.
    pub allow_http: bool,
    /// Longest wait for a connection. Default 5 s.
    pub connect_timeout: Duration,
    /// Longest one request may take, its body included (a large segment's download is one
    /// request). Default 10 min.
    pub request_timeout: Duration,
    /// Retries of a failed request, for at most this long in all. Default 15 s.
    pub retry_timeout: Duration,
    /// S3 keys (access key id, secret) to use instead of the environment's.
    pub s3_keys: Option<(String, String)>,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            endpoint: None,
            region: None,
            allow_http: false,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(600),
            retry_timeout: Duration::from_secs(15),
            s3_keys: None,
        }
    }
}

impl RemoteOptions {
    fn client(&self) -> ClientOptions {
        ClientOptions::new()
            .with_connect_timeout(self.connect_timeout)
            .with_timeout(self.request_timeout)
            .with_allow_http(self.allow_http)
    }

    fn retry(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: 4,
            retry_timeout: self.retry_timeout,
        }
    }
}

/// A store to read data files from (the Parquet dumps a load reads) and the path inside it
/// that `url` names: `s3://bucket/path`, `gs://`, `az://` or `file:///path` (the whole local
/// file system, nothing created), reached with `options`, credentials from the environment as
/// for [`ObjectStoreDirectory::from_url`].
///
/// # Errors
/// [`Error::Config`] naming `setting`: an unknown scheme, a malformed URL, S3 at a custom
/// endpoint without keys.
pub fn source_store(
    url: &str,
    options: &RemoteOptions,
    setting: &'static str,
) -> Result<(Arc<dyn ObjectStore>, String)> {
    store_for_url(url, options, &|k| std::env::var(k).ok(), setting, false)
}

/// The store and the folder inside it that `url` names; `file://` URLs are a folder (made when
/// `make_folder`) served as the store's root, or (without it) the path in the whole local file
/// system.
fn store_for_url(
    url: &str,
    options: &RemoteOptions,
    env: &dyn Fn(&str) -> Option<String>,
    setting: &'static str,
    make_folder: bool,
) -> Result<(Arc<dyn ObjectStore>, String)> {
    let bad = |message: String| Error::Config { setting, message };
    let parsed = url::Url::parse(url).map_err(|e| bad(format!("{url:?} is not a URL: {e}")))?;
    let (scheme, path) = ObjectStoreScheme::parse(&parsed).map_err(|_| {
        bad(format!(
            "{url:?}: unknown scheme {:?} (use s3://bucket/prefix, gs://, az:// or file:///path)",
            parsed.scheme()
        ))
    })?;
    let built = |e: object_store::Error| bad(format!("{url}: {e}"));
    let prefix = path.as_ref().to_owned();
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::Local if !make_folder => {
            Arc::new(object_store::local::LocalFileSystem::new())
        }
        ObjectStoreScheme::Local => {
            let root = std::path::PathBuf::from(parsed.path());
            std::fs::create_dir_all(&root)
                .map_err(|e| bad(format!("cannot create {}: {e}", root.display())))?;
            let store =
                object_store::local::LocalFileSystem::new_with_prefix(&root).map_err(built)?;
            return Ok((Arc::new(store), String::new()));
        }
        ObjectStoreScheme::AmazonS3 => {
            let has_keys = env("AWS_ACCESS_KEY_ID").is_some() || options.s3_keys.is_some();
            if options.endpoint.is_some() && !has_keys {
                return Err(Error::Config {
                    setting: "storage.s3",
                    message: format!(
                        "no credentials for the endpoint {}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                        options.endpoint.as_deref().unwrap_or_default()
                    ),
                });
            }
            let mut b = object_store::aws::AmazonS3Builder::from_env()
                .with_url(url)
                .with_client_options(options.client())
                .with_retry(options.retry());
            if let Some(e) = &options.endpoint {
                b = b.with_endpoint(e);
            }
            if let Some((id, secret)) = &options.s3_keys {
                b = b.with_access_key_id(id).with_secret_access_key(secret);
            }
            let region = options
                .region
                .clone()
                .or_else(|| env("AWS_REGION"))
                .or_else(|| env("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".to_owned());
            Arc::new(b.with_region(region).build().map_err(built)?)
        }
        ObjectStoreScheme::GoogleCloudStorage => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(url)
                .with_client_options(options.client())
                .with_retry(options.retry())
                .build()
                .map_err(built)?,
        ),
        ObjectStoreScheme::MicrosoftAzure => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url)
                .with_client_options(options.client())
                .with_retry(options.retry())
                .build()
                .map_err(built)?,
        ),
        other => {
            return Err(bad(format!(
                "{url:?}: {other:?} is not a store murr writes to (use s3://bucket/prefix, gs://, az:// or file:///path)"
            )));
        }
    };
    Ok((store, prefix))
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

    /// The folder `url` names: `s3://bucket/prefix`, `gs://bucket/prefix`,
    /// `az://container/prefix` or `file:///path`, reached with `options`; credentials come
    /// from the environment. Builds the client only: [`ObjectStoreDirectory::probe`] checks that
    /// the store answers.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting: an unknown scheme, a malformed URL, S3 at a custom
    /// endpoint without keys.
    pub fn from_url(url: &str, options: &RemoteOptions) -> Result<Self> {
        let (store, prefix) = store_for_url(
            url,
            options,
            &|k| std::env::var(k).ok(),
            "storage.url",
            true,
        )?;
        ObjectStoreDirectory::new(store, &prefix)
    }

    /// Asks the store for one listing entry: proves that it answers, the bucket exists and the
    /// credentials are accepted.
    ///
    /// # Errors
    /// [`Error::Io`] with the store's answer.
    pub fn probe(&self) -> Result<()> {
        let store = Arc::clone(&self.inner.store);
        let root = (!self.inner.prefix.is_empty()).then(|| self.inner.location(""));
        self.inner
            .run(async move {
                let mut listing = store.list(root.as_ref());
                listing.try_next().await.map(|_| ())
            })
            .map_err(|e| match e {
                // Listing a prefix that holds nothing answers an empty list: not found means
                // there is no bucket.
                object_store::Error::NotFound { .. } => Error::Io {
                    op: "list",
                    path: self.inner.prefix.clone(),
                    source: std::io::Error::other("the bucket does not exist (NoSuchBucket)"),
                },
                other => store_error("list", &self.inner.prefix, other),
            })
    }

    /// Uploads `bytes` as a new file, create-once.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when the name is taken, [`Error::Io`].
    pub(crate) fn put_new(&self, path: &FilePath, bytes: Bytes) -> Result<()> {
        let store = Arc::clone(&self.inner.store);
        let loc = self.inner.location(path.as_str());
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        self.inner
            .run(async move { store.put_opts(&loc, PutPayload::from(bytes), options).await })
            .map(|_| ())
            .map_err(|e| store_error("put", path.as_str(), e))
    }

    /// Downloads a file into `out` as it streams (a large segment is never whole in memory),
    /// returning its size.
    ///
    /// # Errors
    /// [`Error::NotFound`], or [`Error::Io`] from the store or from writing `out`.
    pub(crate) fn download(&self, path: &FilePath, out: &mut dyn Write) -> Result<u64> {
        crate::assert_blocking_allowed();
        let store = Arc::clone(&self.inner.store);
        let loc = self.inner.location(path.as_str());
        let (tx, mut rx) = tokio::sync::mpsc::channel::<object_store::Result<Bytes>>(8);
        self.inner.runtime.spawn(async move {
            let mut stream = match store.get(&loc).await {
                Ok(got) => got.into_stream(),
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            loop {
                let next = stream.try_next().await;
                let done = !matches!(next, Ok(Some(_)));
                let item = match next {
                    Ok(Some(chunk)) => Ok(chunk),
                    Ok(None) => break,
                    Err(e) => Err(e),
                };
                // The reader gave up (its write failed): stop downloading.
                if tx.send(item).await.is_err() || done {
                    break;
                }
            }
        });
        let mut total = 0u64;
        while let Some(chunk) = rx.blocking_recv() {
            let chunk = chunk.map_err(|e| store_error("get", path.as_str(), e))?;
            out.write_all(&chunk)
                .map_err(|e| Error::io("write the downloaded copy of", path.as_str(), e))?;
            total += chunk.len() as u64;
        }
        Ok(total)
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
