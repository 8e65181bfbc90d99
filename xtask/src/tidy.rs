//! `cargo xtask tidy`: the workspace's structural rules, checked from the repository alone.
//!
//! - **Layers.** Each murr crate depends (normal, dev and build dependencies alike) only on the
//!   crates below it ([`ALLOWED`]); murr-format stays free of runtimes and I/O crates.
//! - **No module cycles.** Within a crate, no top-level module uses one that uses it back
//!   (`store` -> `merger` -> `table`, never `table` -> `store`).
//! - **Self-contained.** No tracked file points into the developers' shared folder beside the
//!   checkout (users never have it); `.ci/run` alone may call the tools there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Each crate and the murr crates it may depend on.
const ALLOWED: &[(&str, &[&str])] = &[
    ("murr-format", &[]),
    ("murr-directory", &[]),
    ("murr-segment", &["murr-format", "murr-directory"]),
    (
        "murr-table",
        &["murr-format", "murr-directory", "murr-segment"],
    ),
    ("murr-api", &["murr-format"]),
    (
        "murr-http",
        &[
            "murr-format",
            "murr-directory",
            "murr-segment",
            "murr-table",
            "murr-api",
        ],
    ),
    (
        "murr-flight",
        &[
            "murr-format",
            "murr-directory",
            "murr-segment",
            "murr-table",
            "murr-api",
        ],
    ),
    ("murr-client", &["murr-format", "murr-api"]),
    (
        "murr-server",
        &[
            "murr-format",
            "murr-directory",
            "murr-segment",
            "murr-table",
            "murr-api",
            "murr-http",
            "murr-flight",
        ],
    ),
];

/// Crates above every layer: they may use any murr crate.
const TOP: &[&str] = &["xtask", "murr-benches", "murr-python", "murr-tests"];

/// Crates the bottom layer must stay free of: it does no I/O and has no runtime.
const FORMAT_FORBIDDEN: &[&str] = &["tokio", "memmap2", "object_store", "hyper", "tonic", "axum"];

/// Runs every check; returns the problems found.
pub(crate) fn run(root: &Path) -> Result<Vec<String>, String> {
    let mut problems = layers(root)?;
    problems.extend(module_cycles(root)?);
    problems.extend(shared_references(root)?);
    Ok(problems)
}

fn layers(root: &Path) -> Result<Vec<String>, String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("cargo metadata answered no JSON: {e}"))?;
    let packages = meta["packages"]
        .as_array()
        .ok_or("cargo metadata lists no packages")?;
    let names: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut problems = Vec::new();
    for p in packages {
        let name = p["name"].as_str().unwrap_or_default();
        let deps: BTreeSet<&str> = p["dependencies"]
            .as_array()
            .map(|d| d.iter().filter_map(|d| d["name"].as_str()).collect())
            .unwrap_or_default();
        if TOP.contains(&name) {
            continue;
        }
        let Some(ok) = allowed.get(name) else {
            problems.push(format!(
                "{name}: not in the layer map (add it to xtask/src/tidy.rs and ARCHITECTURE.md first)"
            ));
            continue;
        };
        for dep in deps.iter().filter(|d| names.contains(*d) && **d != name) {
            if !ok.contains(dep) {
                problems.push(format!("{name} -> {dep}: points sideways or up"));
            }
        }
        if name == "murr-format" {
            for dep in deps.iter().filter(|d| FORMAT_FORBIDDEN.contains(d)) {
                problems.push(format!(
                    "murr-format -> {dep}: the format layer does no I/O"
                ));
            }
        }
    }
    Ok(problems)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file names with `crate::module` (also in `use crate::{a::.., b}`).
fn crate_refs(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        if at > 0
            && text[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        {
            continue;
        }
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if c.is_whitespace() => {}
                    _ if start && depth == 0 => {
                        out.insert(ident(&group[i..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out
}

fn module_cycles(root: &Path) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    let crates = std::fs::read_dir(root.join("crates")).map_err(|e| format!("crates/: {e}"))?;
    for krate in crates.flatten() {
        let src = krate.path().join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        // The crate's top-level modules: a file `src/x.rs` or a folder `src/x/`.
        let modules: BTreeSet<String> = files
            .iter()
            .filter_map(|f| f.strip_prefix(&src).ok())
            .filter_map(|rel| rel.components().next())
            .map(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_owned()
            })
            .filter(|m| m != "lib" && m != "main")
            .collect();
        let mut edges: BTreeSet<(String, String)> = BTreeSet::new();
        for f in &files {
            let Some(module) = f
                .strip_prefix(&src)
                .ok()
                .and_then(|rel| rel.components().next())
                .map(|c| {
                    c.as_os_str()
                        .to_string_lossy()
                        .trim_end_matches(".rs")
                        .to_owned()
                })
            else {
                continue;
            };
            if !modules.contains(&module) {
                continue;
            }
            let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
            for target in crate_refs(&text) {
                if target != module && modules.contains(&target) {
                    edges.insert((module.clone(), target));
                }
            }
        }
        for (a, b) in &edges {
            if a < b && edges.contains(&(b.clone(), a.clone())) {
                problems.push(format!(
                    "{}: modules {a} and {b} use each other (move what both need below them)",
                    krate.file_name().to_string_lossy()
                ));
            }
        }
    }
    Ok(problems)
}

fn shared_references(root: &Path) -> Result<Vec<String>, String> {
    // Spelled in pieces, so that this file does not match itself.
    let (up, docs) = (concat!("..", "/shared"), concat!("shared", "/docs"));
    let out = Command::new("git")
        .args([
            "grep",
            "-n",
            "-I",
            "-F",
            "-e",
            up,
            "-e",
            docs,
            "--",
            ":!.ci/run",
        ])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run git grep: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            format!(
                "{l}: points into the developers' shared folder beside the checkout, which users never have (document it in the project)"
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_references_are_found_in_paths_and_groups() {
        let text = "use crate::error::{Error, Result};\nuse crate::{table::{A, B}, manifest, Thing};\nlet x = crate::merger::spawn();\nlet y = $crate::dispatch;";
        let refs: Vec<String> = crate_refs(text).into_iter().collect();
        assert_eq!(refs, ["Thing", "error", "manifest", "merger", "table"]);
    }

    #[test]
    fn the_workspace_keeps_its_rules() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace");
        let problems = run(root).expect("checks run");
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
