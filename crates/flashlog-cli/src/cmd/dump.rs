//! `flashlog dump`: every entry in log order, as text, hex lines or JSON lines.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use flashlog_cli::format::{hex_line, json_line, text_line};
use flashlog_wal::Entry;

use super::open_wal_inspect;

/// Arguments of `flashlog dump`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One line per entry: SEQ SEGMENT OFFSET OP KEYHEX VALUEHEX (OP put or delete;
    /// an empty key or value is printed as -)
    #[arg(long, conflicts_with = "json")]
    hex: bool,
    /// One JSON object per line: seq, segment, offset, op, key and value (as text,
    /// or null if not UTF-8), key_hex, value_hex
    #[arg(long)]
    json: bool,
}

/// Prints every valid entry. Read-only: damaged regions are skipped and reported on
/// standard error (`flashlog verify` lists them). Sequence numbers that skipped
/// damage held are absent (a gap); if the numbering after some damage is
/// unverified (nothing counted its entries), a warning on standard error says
/// from which number on.
pub fn run(dir: &Path, args: &Args) -> anyhow::Result<ExitCode> {
    let wal = open_wal_inspect(dir)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for entry in wal
        .iter_from(wal.first_seq())
        .context("cannot read the log")?
    {
        let entry = entry.context("cannot read the log")?;
        let line = entry_line(&entry, args.hex, args.json);
        writeln!(out, "{line}").context("cannot write to standard output")?;
    }
    out.flush().context("cannot write to standard output")?;
    let report = wal.recovery_report();
    let damage = report.damage.len();
    if damage > 0 {
        errln!("warning: {damage} damaged region(s) skipped; run flashlog verify");
    }
    if let Some(seq) = report.numbering_unverified_from {
        errln!(
            "warning: sequence numbers from {seq} on are unverified: damage before them held \
             entries nothing counted, so they may be lower than when appended"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One entry as `dump` prints it (and `tail`): `--hex`, `--json` or text.
pub fn entry_line(entry: &Entry, hex: bool, json: bool) -> String {
    if hex {
        hex_line(entry)
    } else if json {
        json_line(entry)
    } else {
        text_line(entry)
    }
}
