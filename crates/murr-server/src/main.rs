//! `murr`: the server binary. `murr --help` lists the flags; see the README for the
//! configuration reference.

#![allow(clippy::print_stderr, reason = "start-up errors go to the terminal")]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use murr_server::config::{self, Overrides};

/// jemalloc returns freed memory to the system in the background (glibc's malloc keeps what a
/// large upload or a merge used, which would count against the cache's memory for good).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options: freed pages go back to the system after 250 ms (the default is 10 s, and
/// then 10 s more as "muzzy" pages, which still count as resident). A load or a refresh frees a
/// write's buffers every half second or so; with the defaults they added up to a fifth of the
/// data's size in RSS before going back, and with 1 s two writes' buffers still overlapped
/// (murr-bench-load's load peak 1.52-1.55x the data with 1 s, 1.47x with 250 ms). The background
/// thread does the returning.
#[expect(
    unsafe_code,
    reason = "jemalloc reads its options from this exported symbol"
)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8; 59] = b"background_thread:true,dirty_decay_ms:250,muzzy_decay_ms:0\0";

/// Has jemalloc's arena for allocations of 8 MiB and more (`oversize_threshold`: a write's
/// decoded batch, a large merge's index) return freed pages at once instead of on the 250 ms
/// decay of the others (jemalloc does so itself only without background threads). A refresh
/// frees a write's batch (a tenth of the data for a 1M-row write of a 10M-row table) every few
/// hundred milliseconds; on the decay it stayed resident beside the next write's. Such
/// allocations are few: a map and an unmap each cost little beside what they hold (a 10 MB
/// fetch answer took as long). With the threshold at 1 MiB the refresh's peak fell as far, but
/// a fetch of a 4 MB answer took 1.5x as long, its buffers mapped afresh each time.
fn return_large_buffers_at_once() {
    use std::ffi::{CString, c_void};
    // The arena is made at its first allocation: make one.
    let probe: Vec<u8> = Vec::with_capacity(16 << 20);
    std::hint::black_box(&probe);
    drop(probe);
    let mut narenas: u32 = 0;
    let mut len = std::mem::size_of::<u32>();
    #[expect(unsafe_code, reason = "jemalloc's control interface is C")]
    // SAFETY: the name is NUL-terminated, and `narenas` is the u32 "arenas.narenas" reads.
    let read = unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arenas.narenas".as_ptr(),
            (&raw mut narenas).cast::<c_void>(),
            &raw mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    // The arena for large allocations is numbered after the automatic ones: the last.
    let Some(large) = narenas.checked_sub(1).filter(|_| read == 0) else {
        tracing::warn!(
            error = read,
            "jemalloc's arenas could not be counted; large buffers go back on the decay"
        );
        return;
    };
    let Ok(name) = CString::new(format!("arena.{large}.dirty_decay_ms")) else {
        return;
    };
    let mut zero: isize = 0;
    #[expect(unsafe_code, reason = "jemalloc's control interface is C")]
    // SAFETY: the name is NUL-terminated, and the value an ssize_t, as the option takes.
    let set = unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            (&raw mut zero).cast::<c_void>(),
            std::mem::size_of::<isize>(),
        )
    };
    if set != 0 {
        tracing::warn!(
            arena = large,
            error = set,
            "jemalloc's large arena kept its decay"
        );
    }
}

/// murr: a columnar in-memory cache for ML inference.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// YAML configuration file (upstream murr's keys).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// HTTP address to listen on (server.http.host).
    #[arg(long)]
    host: Option<String>,
    /// HTTP port; 0 picks a free one (server.http.port).
    #[arg(long)]
    port: Option<u16>,
    /// Largest request body, e.g. 1GiB (server.http.max_payload_size).
    #[arg(long, value_name = "SIZE")]
    max_payload_size: Option<String>,
    /// gRPC address (server.grpc.host).
    #[arg(long)]
    grpc_host: Option<String>,
    /// gRPC port (server.grpc.port).
    #[arg(long)]
    grpc_port: Option<u16>,
    /// Do not serve Arrow Flight (server.grpc.enabled = false).
    #[arg(long)]
    no_grpc: bool,
    /// Data folder (storage.cache_dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Reads a token from standard input and prints its SHA-256, for `token_sha256` in
    /// server.auth.tokens (so that the config file holds no secret).
    HashToken,
    /// Loads Parquet files from object storage into a table of a running murr server and waits
    /// for the load to end (progress on stderr, the final status as JSON on stdout). The server
    /// reads the files, with its own storage.s3 settings and AWS_* environment.
    Load {
        /// The table to load into.
        table: String,
        /// One file, a prefix (every file under it but _* and .*), or a glob:
        /// s3://bucket/dumps/2026-11-28/, s3://bucket/dump/part-*.parquet, gs://…, az://…
        url: String,
        /// replace: the files' rows become the table's only rows; upsert: they are one write.
        #[arg(long, value_enum, default_value = "upsert")]
        mode: LoadModeArg,
        /// The server's HTTP address.
        #[arg(long, default_value = "http://127.0.0.1:8080", value_name = "URL")]
        server: String,
        /// A bearer token with the write scope, for a server with server.auth.tokens.
        #[arg(long, env = "MURR_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Segments built outside a server: build them from Parquet files, publish them to a
    /// table's store, look into one.
    #[command(subcommand)]
    Segment(SegmentCommand),
}

#[derive(Debug, clap::Subcommand)]
enum SegmentCommand {
    /// Builds segment files from Parquet files, several files at a time (progress on stderr, a
    /// summary as JSON on stdout). Within a file and across files, the last row of a key wins
    /// (files in the order given; a folder's .parquet files in name order).
    Build {
        /// The table's schema: the JSON a table is created with (PUT /api/v1/table/{name}).
        #[arg(long, value_name = "FILE")]
        schema: PathBuf,
        /// The key column, when the schema file names none (or to check the one it names).
        #[arg(long)]
        key: Option<String>,
        /// Files built at once. Default: the machine's cores.
        #[arg(long)]
        threads: Option<usize>,
        /// Parquet files or folders of them, then the folder to write the segments to (new or
        /// empty).
        #[arg(required = true, num_args = 2.., value_name = "INPUT.parquet... OUT_DIR")]
        paths: Vec<PathBuf>,
    },
    /// Commits built segments to a table (checksums, format version and schema are checked
    /// first; a bad file commits nothing). Running servers and replicas pick the commit up
    /// within their storage.poll_interval.
    Publish {
        /// A folder of built segments (its .murr files, in name order) or one segment file.
        segments: PathBuf,
        /// The store: s3://bucket/prefix (as the server's storage.url), gs://, az://, file://,
        /// or a local server's data folder.
        target: String,
        /// The table (it must exist).
        #[arg(long)]
        table: String,
        /// The segments become the table's only rows; without it they are added, and their
        /// rows win over the rows already there.
        #[arg(long)]
        replace: bool,
        /// A murr configuration file whose storage.s3 settings reach the store (the
        /// MURR_STORAGE__S3__* environment works too).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Prints a segment file's header, checksums, columns and first rows (exit 1 when the file
    /// is damaged).
    Inspect {
        /// The segment file.
        file: PathBuf,
        /// Rows to print.
        #[arg(long, default_value = "5")]
        rows: usize,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LoadModeArg {
    Replace,
    Upsert,
}

/// `murr hash-token`: the digest of the token on standard input (without its line end).
#[allow(clippy::print_stdout, reason = "the digest is the command's output")]
fn hash_token() -> ExitCode {
    let mut text = String::new();
    if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
        eprintln!("murr hash-token: cannot read standard input: {e}");
        return ExitCode::from(2);
    }
    match config::token_digest(text.trim(), " on standard input") {
        Ok(digest) => {
            println!("{}", murr_api::auth::digest_hex(&digest));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("murr hash-token: {e}");
            ExitCode::from(2)
        }
    }
}

/// The configuration file's name and text, if one is given; exit 2 when it cannot be read.
fn read_config_file(path: Option<&std::path::Path>) -> Result<Option<(String, String)>, ExitCode> {
    let Some(path) = path else {
        return Ok(None);
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some((path.display().to_string(), text))),
        Err(e) => {
            eprintln!("murr: cannot read config file {}: {e}", path.display());
            Err(ExitCode::from(2))
        }
    }
}

/// `murr segment ...`: see [`murr_server::segment_cli`].
fn segment(command: SegmentCommand) -> ExitCode {
    use murr_server::segment_cli;
    match command {
        SegmentCommand::Build {
            schema,
            key,
            threads,
            mut paths,
        } => {
            let out = paths.pop().expect("clap asks for two paths at least");
            segment_cli::build(&schema, key.as_deref(), &paths, &out, threads)
        }
        SegmentCommand::Publish {
            segments,
            target,
            table,
            replace,
            config,
        } => {
            let yaml = match read_config_file(config.as_deref()) {
                Ok(yaml) => yaml,
                Err(code) => return code,
            };
            let config = match config::load(
                yaml.as_ref().map(|(n, t)| (n.as_str(), t.as_str())),
                std::env::vars(),
                &Overrides::default(),
            ) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("murr: {e:#}");
                    return ExitCode::from(2);
                }
            };
            let remote = murr_server::remote_options(&config.storage.s3);
            segment_cli::publish(&segments, &target, &table, replace, &remote)
        }
        SegmentCommand::Inspect { file, rows } => segment_cli::inspect(&file, rows),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.command {
        Some(Command::HashToken) => return hash_token(),
        Some(Command::Load {
            table,
            url,
            mode,
            server,
            token,
        }) => {
            let mode = match mode {
                LoadModeArg::Replace => murr_api::LoadMode::Replace,
                LoadModeArg::Upsert => murr_api::LoadMode::Upsert,
            };
            return murr_server::load_cli::run(&server, token.as_deref(), &table, &url, mode);
        }
        Some(Command::Segment(command)) => return segment(command),
        None => {}
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if args.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
    return_large_buffers_at_once();
    let yaml = match read_config_file(args.config.as_deref()) {
        Ok(yaml) => yaml,
        Err(code) => return code,
    };
    let flags = Overrides {
        host: args.host,
        port: args.port,
        max_payload_size: args.max_payload_size,
        grpc_host: args.grpc_host,
        grpc_port: args.grpc_port,
        no_grpc: args.no_grpc,
        cache_dir: args.data_dir,
    };
    let config = match config::load(
        yaml.as_ref().map(|(n, t)| (n.as_str(), t.as_str())),
        std::env::vars(),
        &flags,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("murr: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("murr: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // On SIGHUP: the file, the environment and the flags again, as above.
    let file = args.config;
    let reload = move || {
        let yaml = match &file {
            Some(path) => Some((
                path.display().to_string(),
                std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("cannot read config file {}: {e}", path.display())
                })?,
            )),
            None => None,
        };
        config::load(
            yaml.as_ref().map(|(n, t)| (n.as_str(), t.as_str())),
            std::env::vars(),
            &flags,
        )
    };
    match runtime.block_on(murr_server::run(
        config,
        reload,
        murr_server::shutdown_signal(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("murr: {e:#}");
            ExitCode::FAILURE
        }
    }
}
