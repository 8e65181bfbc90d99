//! Writes the fuzz targets' seed corpus: `murr-fuzz-seeds <folder>` replaces
//! `<folder>/<target>/<seed>` for every target with what `murr_tests::fuzz::seeds` makes
//! (`cargo xtask fuzz --seeds` runs it on `fuzz/seeds`).

#![allow(clippy::print_stderr, reason = "a command-line tool")]

use std::path::PathBuf;
use std::process::ExitCode;

use murr_tests::fuzz;

fn main() -> ExitCode {
    let Some(folder) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: murr-fuzz-seeds <folder>");
        return ExitCode::from(2);
    };
    for target in fuzz::TARGETS {
        let dir = folder.join(target);
        let written = std::fs::remove_dir_all(&dir)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            })
            .and_then(|()| std::fs::create_dir_all(&dir))
            .and_then(|()| {
                let seeds = fuzz::seeds(target);
                for (name, data) in &seeds {
                    std::fs::write(dir.join(name), data)?;
                }
                Ok(seeds.len())
            });
        match written {
            Ok(n) => eprintln!("{target}: {n} seeds in {}", dir.display()),
            Err(e) => {
                eprintln!("writing {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
