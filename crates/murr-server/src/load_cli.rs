//! `murr load TABLE URL`: asks a running server to load Parquet files from object storage
//! (`POST /api/v1/table/{name}/load`) and follows the load until it ends.

#![allow(
    clippy::print_stderr,
    clippy::print_stdout,
    reason = "a command-line tool: progress on stderr, the result on stdout"
)]

use std::process::ExitCode;
use std::time::Duration;

use murr_api::{LoadMode, LoadRequest, LoadState, LoadStatus};

/// How often the status is asked for.
const POLL: Duration = Duration::from_millis(500);

/// Loads `url` into `table` on the server at `server` (with `token`, if any); prints progress
/// lines on stderr and the final status as JSON on stdout. Exit 0 when the load committed, 1
/// when it failed, 2 when the server refused it or could not be reached.
pub fn run(server: &str, token: Option<&str>, table: &str, url: &str, mode: LoadMode) -> ExitCode {
    match follow(server, token, table, url, mode) {
        Ok(status) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&status).unwrap_or_default()
            );
            if status.state == LoadState::Done {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "murr load: failed, nothing was committed: {}",
                    status.error.as_deref().unwrap_or("no reason given")
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("murr load: {e}");
            ExitCode::from(2)
        }
    }
}

fn follow(
    server: &str,
    token: Option<&str>,
    table: &str,
    url: &str,
    mode: LoadMode,
) -> Result<LoadStatus, String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let server = server.trim_end_matches('/');
    let with_token = |r: reqwest::blocking::RequestBuilder| match token {
        Some(t) => r.bearer_auth(t),
        None => r,
    };
    let body = serde_json::to_vec(&LoadRequest {
        url: url.to_owned(),
        mode,
    })
    .map_err(|e| format!("cannot encode the request: {e}"))?;
    let started = with_token(
        client
            .post(format!("{server}/api/v1/table/{table}/load"))
            .header("content-type", "application/json")
            .body(body),
    )
    .send();
    let mut status = answer(started, server)?;
    eprintln!("murr load: load {} of table {table:?} started", status.id);
    let mut last_rows = u64::MAX;
    while status.state == LoadState::Running {
        std::thread::sleep(POLL);
        let asked =
            with_token(client.get(format!("{server}/api/v1/table/{table}/load/{}", status.id)))
                .send();
        status = answer(asked, server)?;
        if status.rows != last_rows {
            last_rows = status.rows;
            eprintln!(
                "murr load: {} of {} files, {} rows, {:.1} MB, {:.1} s",
                status.files_done,
                status
                    .files
                    .map_or_else(|| "?".to_owned(), |f| f.to_string()),
                status.rows,
                status.bytes as f64 / 1e6,
                status.seconds
            );
        }
    }
    Ok(status)
}

/// The load status a server answered, or what went wrong.
fn answer(
    sent: reqwest::Result<reqwest::blocking::Response>,
    server: &str,
) -> Result<LoadStatus, String> {
    let response = sent.map_err(|e| format!("cannot reach {server}: {e}"))?;
    let code = response.status();
    let body = response
        .bytes()
        .map_err(|e| format!("{server} answered {code} and then failed: {e}"))?;
    if !code.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(format!("{server} answered {code}: {message}"));
    }
    serde_json::from_slice(&body)
        .map_err(|e| format!("{server} answered what is not a load status: {e}"))
}
