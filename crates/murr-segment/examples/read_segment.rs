//! Reads a murr segment file and prints its columns and first rows, using only the public API
//! of `murr-format` and `murr-segment`: what a program other than the server does to read what
//! murr wrote (a table's `tables/<name>/seg-*.murr`, or a file `murr segment build` made).
//!
//! ```text
//! cargo run -p murr-segment --example read_segment -- FILE [ROWS]
//! ```

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example program prints"
)]

use std::io::Write;

use arrow_cast::display::{ArrayFormatter, FormatOptions};
use murr_directory::FilePath;
use murr_format::Verify;
use murr_segment::{Loc, Segment, gather};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: read_segment FILE [ROWS]")?;
    let show: usize = args.next().map_or(Ok(10), |n| n.parse())?;
    print(&path, show, &mut std::io::stdout().lock())
}

/// Prints the segment file at `path`: its columns and first `show` rows.
pub(crate) fn print(
    path: &str,
    show: usize,
    out: &mut dyn Write,
) -> Result<(), Box<dyn std::error::Error>> {
    // Validate the whole file once (magic, version, footer and body checksums); reads of an
    // opened segment do not fail after that.
    let bytes = bytes::Bytes::from(std::fs::read(path)?);
    let segment = Segment::from_bytes(bytes, FilePath::new("read.murr")?, Verify::Full)?;
    let meta = segment.view().meta();
    let key = &meta.columns[meta.key_column as usize].name;
    writeln!(out, "{path}: {} rows, key column {key:?}", segment.rows())?;
    for c in &meta.columns {
        let not_null = if c.nullable { "" } else { " not null" };
        writeln!(out, "  {}: {}{not_null}", c.name, c.dtype)?;
    }

    // Rows by position: gather builds one Arrow array per column.
    let rows = show.min(segment.rows());
    let locs: Vec<Loc> = (0..rows as u32).map(|row| Loc { seg: 0, row }).collect();
    let segments = [segment.clone()];
    let arrays = meta
        .columns
        .iter()
        .map(|c| gather(&segments, &c.name, c.dtype, &locs))
        .collect::<Result<Vec<_>, _>>()?;
    let options = FormatOptions::default().with_null("null");
    let formatters = arrays
        .iter()
        .map(|a| ArrayFormatter::try_new(a.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    for row in 0..rows {
        let cells: Vec<String> = meta
            .columns
            .iter()
            .zip(&formatters)
            .map(|(c, f)| format!("{}={}", c.name, f.value(row)))
            .collect();
        writeln!(out, "{}", cells.join(" "))?;
    }

    // Keys by value: the segment's index answers which row holds a key (an encoded key: for
    // one utf8 key column, its bytes).
    if let Some(first) = (rows > 0).then(|| segment.key(0).to_vec()) {
        writeln!(out, "row of the first key: {:?}", segment.find(&first))?;
    }
    Ok(())
}
