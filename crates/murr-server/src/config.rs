//! Configuration: defaults, then a YAML file (`--config FILE`), then `MURR_` environment
//! variables, then command-line flags. Keys are upstream murr's, so its config files keep working.
//!
//! An environment variable names a key by its path in upper case with `__` between levels:
//! `MURR_STORAGE__CACHE_DIR=/data`, `MURR_SERVER__HTTP__PORT=9000`. Its value is read as a YAML
//! scalar (so `9000` is a number). Unknown keys, from any source, are errors that name the key.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
pub use murr_api::auth::Scope;
use murr_api::auth::{self, Auth};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Network front-ends.
    pub server: ServerConfig,
    /// Where data lives.
    pub storage: StorageConfig,
    /// `load.*`: loads of Parquet dumps from object storage.
    pub load: LoadConfig,
}

/// `load.*`
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadConfig {
    /// Tables that reload when a new dump appears under a prefix (a new `_SUCCESS` marker).
    pub watch: Vec<WatchConfig>,
}

/// One entry of `load.watch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    /// The table (it must exist).
    pub table: String,
    /// The prefix watched: `s3://bucket/dumps/items/` holding the dump itself (rewritten in
    /// place, with a `_SUCCESS` marker written last) or dated folders, one dump each
    /// (`…/2026-11-28/_SUCCESS`): the folder of the newest marker is loaded.
    pub url: String,
    /// `replace` (the default) or `upsert`.
    #[serde(default = "replace")]
    pub mode: murr_api::LoadMode,
    /// Seconds between two listings of the prefix. Default 60.
    #[serde(default = "sixty", deserialize_with = "positive_seconds")]
    pub interval: f64,
}

fn replace() -> murr_api::LoadMode {
    murr_api::LoadMode::Replace
}

fn sixty() -> f64 {
    60.0
}

/// `server.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// `server.http.*`
    pub http: HttpConfig,
    /// `server.grpc.*`
    pub grpc: GrpcConfig,
    /// `server.fetch.*`: bounds on one fetch, over HTTP and Flight alike.
    pub fetch: FetchConfig,
    /// `server.auth.*`: bearer tokens and their scopes, over HTTP and Flight alike.
    pub auth: AuthConfig,
    /// `server.tls.*`: TLS on both listeners, when a certificate and key are given.
    pub tls: TlsConfig,
    /// Seconds that requests in flight get to finish after SIGINT/SIGTERM; connections still
    /// open then (a client that never reads, an idle gRPC channel) are closed. Default 10.
    #[serde(deserialize_with = "seconds")]
    pub shutdown_timeout: f64,
    /// With `storage.url`: `writer` (accepts writes, the default) or `replica` (serves reads of
    /// what the writer commits to the store).
    pub role: NodeRole,
    /// CPUs kept for background work: HTTP connections whose first request writes (the upload's
    /// receive, decode and write) and merges run there, so that fetches keep the other CPUs
    /// during a refresh. The last ones of those the process may use; 0 runs everything
    /// everywhere. Default: half of them, none on a host with one CPU.
    pub background_cpus: Option<usize>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            http: HttpConfig::default(),
            grpc: GrpcConfig::default(),
            fetch: FetchConfig::default(),
            auth: AuthConfig::default(),
            tls: TlsConfig::default(),
            shutdown_timeout: 10.0,
            role: NodeRole::Writer,
            background_cpus: None,
        }
    }
}

/// `server.role`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    /// Accepts writes.
    Writer,
    /// Serves reads and follows the writer through `storage.url`.
    Replica,
}

fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "{v} is not a number of seconds >= 0"
        )))
    }
}

/// `server.http.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on. Default `0.0.0.0`.
    pub host: IpAddr,
    /// Port; 0 picks a free one (the start-up log says which). Default 8080.
    pub port: u16,
    /// Largest request body in bytes; a number or a size like `"512MiB"`. Default 1 GiB.
    #[serde(deserialize_with = "size")]
    pub max_payload_size: u64,
    /// Largest fetch request body in bytes. Default 16 MiB.
    #[serde(deserialize_with = "size")]
    pub max_fetch_payload_size: u64,
    /// Seconds a request's headers may take to arrive (a client that sends them a byte at a
    /// time is dropped); also how long a kept-alive connection may stay idle. Default 30.
    #[serde(deserialize_with = "positive_seconds")]
    pub header_read_timeout: f64,
    /// Seconds a request body may send nothing before the request fails with 408. Default 30.
    #[serde(deserialize_with = "positive_seconds")]
    pub body_timeout: f64,
    /// Most HTTP connections open at once; more wait until one closes. Default 4096 (keep it
    /// under the process's file descriptor limit, `ulimit -n`).
    pub max_connections: usize,
}

fn positive_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "{v} is not a number of seconds > 0 and <= 86400"
        )))
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            host: IpAddr::from([0, 0, 0, 0]),
            port: 8080,
            max_payload_size: 1 << 30,
            max_fetch_payload_size: 16 << 20,
            header_read_timeout: 30.0,
            body_timeout: 30.0,
            max_connections: 4096,
        }
    }
}

/// `server.fetch.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchConfig {
    /// Most keys in one fetch. Default 100000.
    pub max_keys: usize,
    /// Most cells (keys x columns) in one fetch. Default 10000000.
    pub max_cells: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        let limits = murr_api::FetchLimits::default();
        FetchConfig {
            max_keys: limits.max_keys,
            max_cells: limits.max_cells,
        }
    }
}

impl FetchConfig {
    /// The limits the front-ends apply.
    pub fn limits(&self) -> murr_api::FetchLimits {
        murr_api::FetchLimits {
            max_keys: self.max_keys,
            max_cells: self.max_cells,
        }
    }
}

/// `server.auth.*`: who may do what. With no tokens (the default), the server is open: anyone
/// who can reach its ports may read, write and drop tables, and the start-up log warns so.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The accepted tokens. Read again on SIGHUP (with the token files they name).
    pub tokens: Vec<TokenConfig>,
    /// Serve `GET /metrics` without a token (for a scraper on a trusted network); by default
    /// it needs the `read` scope once tokens are configured.
    pub open_metrics: bool,
}

/// The shortest token murr accepts: a guessable token is no protection.
pub const MIN_TOKEN_LEN: usize = 16;

/// The digest of a token given in full (`source` says where, for the message), refused when
/// shorter than [`MIN_TOKEN_LEN`].
///
/// # Errors
/// A short token; the message never holds it.
pub fn token_digest(token: &str, source: &str) -> Result<auth::TokenDigest> {
    if token.len() < MIN_TOKEN_LEN {
        bail!(
            "the token{source} is shorter than {MIN_TOKEN_LEN} characters; use a random one (openssl rand -hex 32)"
        );
    }
    Ok(auth::digest(token.as_bytes()))
}

/// One token of `server.auth.tokens`: a name (for logs), the secret in exactly one of three
/// forms, and its scopes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Names the caller in logs and error messages (never the token itself).
    pub name: String,
    /// The token itself.
    #[serde(default)]
    pub token: Option<Secret>,
    /// The token's SHA-256 digest as 64 hex digits (`murr hash-token` prints it): the config
    /// file then holds no secret.
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// A file holding the token (a mounted secret); surrounding whitespace is ignored.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Some of `read` (fetch, list, schema), `write` (write rows), `admin` (create, drop, alter,
    /// compact).
    pub scopes: Vec<Scope>,
}

/// A secret from the configuration: shown and serialized as `<redacted>`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

impl AuthConfig {
    /// The tokens as the front-ends check them: token files are read now.
    ///
    /// # Errors
    /// A token with no secret or more than one, a short token, an unreadable token file, a bad
    /// digest, a duplicate name or token, no scopes; the message names the token, never its
    /// secret.
    pub fn build(&self) -> Result<Auth> {
        let mut auth = Auth::open();
        for (i, t) in self.tokens.iter().enumerate() {
            let at = format!("server.auth.tokens[{i}] ({:?})", t.name);
            let sources = [
                t.token.is_some(),
                t.token_sha256.is_some(),
                t.token_file.is_some(),
            ];
            if sources.iter().filter(|s| **s).count() != 1 {
                bail!("{at}: give exactly one of token, token_sha256, token_file");
            }
            let digest = if let Some(token) = &t.token {
                token_digest(token.expose(), "").map_err(|e| anyhow::anyhow!("{at}: {e}"))?
            } else if let Some(hex) = &t.token_sha256 {
                auth::parse_digest_hex(hex)
                    .map_err(|e| anyhow::anyhow!("{at}: token_sha256: {e}"))?
            } else if let Some(file) = &t.token_file {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("{at}: cannot read token_file {}", file.display()))?;
                token_digest(text.trim(), &format!(" in {}", file.display()))
                    .map_err(|e| anyhow::anyhow!("{at}: {e}"))?
            } else {
                unreachable!("one source, checked above")
            };
            auth.add(&t.name, digest, &t.scopes)
                .map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
        }
        Ok(auth)
    }
}

/// `server.tls.*`: TLS (rustls) on the HTTP and Flight listeners. Both or neither.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM (the server's certificate first).
    pub cert: Option<PathBuf>,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
}

/// The certificate and key of `server.tls`, read and checked: for HTTP (rustls) and for Flight
/// (tonic), or None when TLS is off.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// The rustls configuration of the HTTP listener.
    pub http: std::sync::Arc<rustls::ServerConfig>,
    /// The certificate chain, PEM.
    pub cert_pem: Vec<u8>,
    /// The key, PEM.
    pub key_pem: Vec<u8>,
}

impl TlsConfig {
    /// Reads and checks the certificate and key.
    ///
    /// # Errors
    /// Only one of the two given, a file that cannot be read, PEM without a certificate or key,
    /// a key that does not match the certificate; the message names the setting and file.
    pub fn load(&self) -> Result<Option<TlsMaterial>> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let (cert, key) = match (&self.cert, &self.key) {
            (None, None) => return Ok(None),
            (Some(c), Some(k)) => (c, k),
            _ => bail!("server.tls: give both cert and key (PEM files), or neither"),
        };
        let read = |setting: &str, path: &PathBuf| {
            std::fs::read(path)
                .with_context(|| format!("server.tls.{setting}: cannot read {}", path.display()))
        };
        let (cert_pem, key_pem) = (read("cert", cert)?, read("key", key)?);
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("server.tls.cert: {}: {e}", cert.display()))?;
        if chain.is_empty() {
            bail!(
                "server.tls.cert: {} holds no PEM certificate",
                cert.display()
            );
        }
        let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            anyhow::anyhow!(
                "server.tls.key: {}: no PEM private key ({e})",
                key.display()
            )
        })?;
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut http = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("server.tls: the TLS versions")?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| {
                anyhow::anyhow!(
                    "server.tls: the key {} does not fit the certificate {}: {e}",
                    key.display(),
                    cert.display()
                )
            })?;
        http.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(TlsMaterial {
            http: std::sync::Arc::new(http),
            cert_pem,
            key_pem,
        }))
    }
}

/// `server.grpc.*`: Arrow Flight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcConfig {
    /// Serve Arrow Flight. Default true.
    pub enabled: bool,
    /// Address to listen on. Default `0.0.0.0`.
    pub host: IpAddr,
    /// Port; 0 picks a free one. Default 8081.
    pub port: u16,
    /// Largest gRPC message, received or sent; a number or a size like `"64MiB"`. Default 64 MiB.
    #[serde(deserialize_with = "size")]
    pub max_message_size: u64,
    /// Largest `do_put` upload, all its messages together. Default 1 GiB.
    #[serde(deserialize_with = "size")]
    pub max_upload_size: u64,
    /// Most Flight connections open at once; more wait until one closes. Default 4096.
    pub max_connections: usize,
    /// Seconds a new connection may take to send its first bytes (the HTTP/2 preface, or the
    /// TLS handshake) before it is closed. Default 10.
    #[serde(deserialize_with = "positive_seconds")]
    pub handshake_timeout: f64,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            enabled: true,
            host: IpAddr::from([0, 0, 0, 0]),
            port: 8081,
            max_message_size: 64 << 20,
            max_upload_size: 1 << 30,
            max_connections: 4096,
            handshake_timeout: 10.0,
        }
    }
}

impl GrpcConfig {
    /// The socket address to bind.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

/// `storage.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// The data folder; with `storage.url`, the local disk tier (copies of segment files).
    /// Default `./murr-data`.
    pub cache_dir: PathBuf,
    /// The durable store: `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`
    /// or `file:///path`. Absent (the default): local disk only, in `cache_dir`.
    pub url: Option<String>,
    /// `storage.s3.*`: how to reach an S3-compatible store. Credentials come from
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (or the other usual AWS sources).
    pub s3: S3Config,
    /// A replica reads the store's state this often, in seconds. Default 1.
    #[serde(deserialize_with = "seconds")]
    pub poll_interval: f64,
    /// Files no manifest lists any more are deleted from the store this many seconds after they
    /// were superseded (a replica may still be loading them). Default 600.
    #[serde(deserialize_with = "seconds")]
    pub gc_grace: f64,
    /// RAM budget for segment data; a number or a size like `"48GiB"`. Absent (the default):
    /// every segment is read into memory when opened. With a budget, segments are mapped from
    /// local disk and their pages come in as fetches touch them; key indexes and headers stay
    /// resident, and of the rows, the pages touched most recently, up to the budget (a clock
    /// sweep every 0.5 s evicts the rest; see ARCHITECTURE.md).
    #[serde(default, deserialize_with = "optional_size")]
    pub memory_limit: Option<u64>,
    /// How often, at most, the expired rows of a table with a time to live are dropped from
    /// storage and memory, in seconds (rows read as missing from the second they expire; this
    /// bounds only how long they keep costing memory). Default 60.
    #[serde(deserialize_with = "seconds")]
    pub expiry_interval: f64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            cache_dir: PathBuf::from("./murr-data"),
            url: None,
            s3: S3Config::default(),
            poll_interval: 1.0,
            gc_grace: 600.0,
            memory_limit: None,
            expiry_interval: 60.0,
        }
    }
}

/// `storage.s3.*`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// An S3-compatible endpoint other than AWS, e.g. `http://127.0.0.1:8333`.
    pub endpoint: Option<String>,
    /// The region. Default: `AWS_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Allow a plain `http://` endpoint. Default false.
    pub allow_http: bool,
}

fn optional_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    size(d).map(Some)
}

impl HttpConfig {
    /// The socket address to bind.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Bytes(n) => Ok(n),
        Size::Text(t) => parse_size(&t).map_err(serde::de::Error::custom),
    }
}

/// Parses `1024`, `64KB`, `512MiB`, `1GB`, `1 GiB` (KB = 1000, KiB = 1024).
///
/// # Errors
/// When the text is not such a size.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .with_context(|| format!("size {text:?} does not start with a number"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" | "k" => 1 << 10,
        "mb" => 1_000_000,
        "mib" | "m" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" | "g" => 1 << 30,
        other => bail!(
            "size {text:?} has an unknown unit {other:?} (use B, KB, KiB, MB, MiB, GB or GiB)"
        ),
    };
    n.checked_mul(mult)
        .with_context(|| format!("size {text:?} is too large"))
}

fn set(tree: &mut Map<String, Value>, path: &[String], value: Value) -> Result<()> {
    let (last, parents) = path.split_last().context("empty key")?;
    let mut node = tree;
    for p in parents {
        let entry = node
            .entry(p.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        node = entry.as_object_mut().expect("made an object above");
    }
    node.insert(last.clone(), value);
    Ok(())
}

fn scalar(text: &str) -> Value {
    match serde_yaml_ng::from_str::<Value>(text) {
        Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::String(_))) => v,
        _ => Value::String(text.to_owned()),
    }
}

/// Overrides on top of the file, from flags.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `server.http.host`
    pub host: Option<String>,
    /// `server.http.port`
    pub port: Option<u16>,
    /// `server.http.max_payload_size`
    pub max_payload_size: Option<String>,
    /// `server.grpc.host`
    pub grpc_host: Option<String>,
    /// `server.grpc.port`
    pub grpc_port: Option<u16>,
    /// `server.grpc.enabled = false`
    pub no_grpc: bool,
    /// `storage.cache_dir`
    pub cache_dir: Option<PathBuf>,
}

/// Builds the configuration from a YAML file's text (if any), environment variables and flags.
///
/// # Errors
/// Unreadable YAML, an unknown key, or a value of the wrong type; the message names the key.
pub fn load(
    yaml: Option<(&str, &str)>,
    env: impl IntoIterator<Item = (String, String)>,
    flags: &Overrides,
) -> Result<Config> {
    let mut tree = Map::new();
    if let Some((name, text)) = yaml {
        let v: Value = serde_yaml_ng::from_str(text)
            .with_context(|| format!("config file {name}: not valid YAML"))?;
        match v {
            Value::Object(m) => tree = m,
            Value::Null => {}
            _ => bail!("config file {name}: expected a mapping of keys at the top"),
        }
    }
    let mut env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("MURR_"))
        .collect();
    env.sort();
    for (k, v) in env {
        let path: Vec<String> = k["MURR_".len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        if path.iter().any(String::is_empty) {
            bail!(
                "environment variable {k}: empty key part (use __ between levels, e.g. MURR_SERVER__HTTP__PORT)"
            );
        }
        set(&mut tree, &path, scalar(&v)).with_context(|| format!("environment variable {k}"))?;
    }
    let mut flag = |path: &[&str], v: Value| {
        set(
            &mut tree,
            &path.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            v,
        )
    };
    if let Some(h) = &flags.host {
        flag(&["server", "http", "host"], Value::String(h.clone()))?;
    }
    if let Some(p) = flags.port {
        flag(&["server", "http", "port"], Value::from(p))?;
    }
    if let Some(s) = &flags.max_payload_size {
        flag(&["server", "http", "max_payload_size"], scalar(s))?;
    }
    if let Some(h) = &flags.grpc_host {
        flag(&["server", "grpc", "host"], Value::String(h.clone()))?;
    }
    if let Some(p) = flags.grpc_port {
        flag(&["server", "grpc", "port"], Value::from(p))?;
    }
    if flags.no_grpc {
        flag(&["server", "grpc", "enabled"], Value::Bool(false))?;
    }
    if let Some(d) = &flags.cache_dir {
        flag(
            &["storage", "cache_dir"],
            Value::String(d.display().to_string()),
        )?;
    }
    serde_path_to_error::deserialize(Value::Object(tree)).map_err(|e| {
        let path = e.path().to_string();
        anyhow::anyhow!("configuration key {path}: {}", e.into_inner())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults() {
        let c = load(None, env(&[]), &Overrides::default()).expect("loads");
        assert_eq!(c, Config::default());
        assert_eq!(c.server.http.addr().to_string(), "0.0.0.0:8080");
        assert_eq!(c.server.grpc.port, 8081);
        assert_eq!(c.storage.cache_dir, PathBuf::from("./murr-data"));
        assert_eq!(c.server.http.max_payload_size, 1 << 30);
    }

    #[test]
    fn file_then_env_then_flags() {
        let yaml = "server:\n  http:\n    port: 9000\n    host: 127.0.0.1\n    max_payload_size: 64MiB\nstorage:\n  cache_dir: /from/file\n";
        let c = load(
            Some(("murr.yaml", yaml)),
            env(&[("MURR_STORAGE__CACHE_DIR", "/from/env"), ("PATH", "/bin")]),
            &Overrides::default(),
        )
        .expect("loads");
        assert_eq!(c.server.http.port, 9000);
        assert_eq!(c.server.http.max_payload_size, 64 << 20);
        assert_eq!(c.storage.cache_dir, PathBuf::from("/from/env"));
        let flags = Overrides {
            port: Some(0),
            cache_dir: Some("/from/flag".into()),
            ..Overrides::default()
        };
        let c = load(
            Some(("murr.yaml", yaml)),
            env(&[("MURR_SERVER__HTTP__PORT", "9100")]),
            &flags,
        )
        .expect("loads");
        assert_eq!(c.server.http.port, 0);
        assert_eq!(c.storage.cache_dir, PathBuf::from("/from/flag"));
        let c = load(
            None,
            env(&[
                ("MURR_SERVER__HTTP__PORT", "9100"),
                ("MURR_SERVER__HTTP__MAX_PAYLOAD_SIZE", "1000"),
            ]),
            &Overrides::default(),
        )
        .expect("loads");
        assert_eq!(
            (c.server.http.port, c.server.http.max_payload_size),
            (9100, 1000)
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = load(
            Some(("f", "server:\n  http:\n    bogus: 1\n")),
            env(&[]),
            &Overrides::default(),
        )
        .expect_err("unknown");
        assert!(
            err.to_string().contains("server.http") && err.to_string().contains("bogus"),
            "{err}"
        );
        let err = load(
            None,
            env(&[("MURR_STORAGE__CACHEDIR", "/x")]),
            &Overrides::default(),
        )
        .expect_err("unknown");
        assert!(err.to_string().contains("cachedir"), "{err}");
        let err = load(
            None,
            env(&[("MURR_SERVER__HTTP__PORT", "eighty")]),
            &Overrides::default(),
        )
        .expect_err("bad");
        assert!(err.to_string().contains("server.http.port"), "{err}");
        let err = load(
            Some(("f", "server: [1, 2]")),
            env(&[]),
            &Overrides::default(),
        )
        .expect_err("bad");
        assert!(err.to_string().contains("server"), "{err}");
        let err = load(
            None,
            env(&[("MURR_SERVER__SHUTDOWN_TIMEOUT", "-1")]),
            &Overrides::default(),
        )
        .expect_err("negative");
        assert!(err.to_string().contains("shutdown_timeout"), "{err}");
        let c = load(
            None,
            env(&[("MURR_SERVER__SHUTDOWN_TIMEOUT", "2.5")]),
            &Overrides::default(),
        )
        .expect("seconds");
        assert!((c.server.shutdown_timeout - 2.5).abs() < 1e-9);
        assert!(parse_size("12 parsecs").is_err());
        assert_eq!(parse_size("1GiB").expect("size"), 1 << 30);
        assert_eq!(parse_size("2KB").expect("size"), 2000);
    }
}
