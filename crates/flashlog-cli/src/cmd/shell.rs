//! `flashlog shell`: the interactive key-value shell of the Go program, plus `scan`,
//! `stats` and `help`. With standard input not a terminal it prints no prompt, so
//! scripts can drive it.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use flashlog_kv::Db;

use super::open_db;
use crate::text::show;

const HELP: &str = "\
commands:
  put KEY VALUE   set KEY to VALUE (the rest of the line)
  get KEY         print the value of KEY
  delete KEY      remove KEY
  scan [PREFIX]   list keys (starting with PREFIX) and their values
  stats           sizes of the store and its log
  help            this list
  exit, quit      leave (so does end of input)";

/// Runs the shell on standard input until `exit`, `quit` or end of input.
pub fn run(dir: &Path) -> anyhow::Result<ExitCode> {
    let db = open_db(dir)?;
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        println!(
            "flashlog shell on {} ({} keys); type help",
            dir.display(),
            db.len()
        );
    }
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let mut lines = stdin.lines();
    loop {
        if interactive {
            write!(stdout, "flashlog> ")?;
            stdout.flush()?;
        }
        let Some(line) = lines.next() else { break };
        let line = line.context("cannot read standard input")?;
        match execute(&db, line.trim(), &mut stdout) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Exit) => break,
            // A bad command is reported and the shell goes on.
            Err(err) => {
                stdout.flush()?;
                eprintln!("error: {err:#}");
            }
        }
    }
    db.close().context("cannot close the store")?;
    Ok(ExitCode::SUCCESS)
}

enum Flow {
    Continue,
    Exit,
}

fn execute(db: &Db, line: &str, out: &mut impl Write) -> anyhow::Result<Flow> {
    let (command, rest) = split_word(line);
    match command {
        "" => {}
        "put" | "set" => {
            let (key, value) = split_word(rest);
            anyhow::ensure!(!key.is_empty(), "usage: put KEY VALUE");
            db.put(key.as_bytes(), value.as_bytes())
                .with_context(|| format!("cannot put {key:?}"))?;
            writeln!(out, "OK")?;
        }
        "get" => {
            let key = one_key(rest, "get KEY")?;
            match db
                .get(key.as_bytes())
                .with_context(|| format!("cannot get {key:?}"))?
            {
                Some(value) => writeln!(out, "{}", show(&value))?,
                None => writeln!(out, "(not found)")?,
            }
        }
        "delete" | "del" => {
            let key = one_key(rest, "delete KEY")?;
            let existed = db
                .delete(key.as_bytes())
                .with_context(|| format!("cannot delete {key:?}"))?;
            writeln!(out, "{}", if existed { "OK" } else { "(not found)" })?;
        }
        "scan" => {
            let mut count = 0u64;
            for pair in db.scan_prefix(rest.as_bytes()) {
                let (key, value) = pair.context("cannot read a value")?;
                writeln!(out, "{} {}", show(&key), show(&value))?;
                count += 1;
            }
            writeln!(out, "({count} keys)")?;
        }
        "stats" => write!(out, "{}", super::stats::store_table(&db.stats()))?,
        "help" => writeln!(out, "{HELP}")?,
        "exit" | "quit" => return Ok(Flow::Exit),
        other => anyhow::bail!("unknown command {other:?} (try help)"),
    }
    Ok(Flow::Continue)
}

fn one_key<'a>(rest: &'a str, usage: &str) -> anyhow::Result<&'a str> {
    let (key, extra) = split_word(rest);
    anyhow::ensure!(!key.is_empty() && extra.is_empty(), "usage: {usage}");
    Ok(key)
}

/// The first word of `text` and the rest, trimmed.
fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim();
    match text.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (text, ""),
    }
}
