//! `flashlog shell`: the interactive key-value shell of the Go program, plus `scan`,
//! `stats` and `help`. With standard input not a terminal it prints no prompt, so
//! scripts can drive it, and its exit code says whether every command succeeded.
//!
//! Lines are bytes: a key or value that is not UTF-8 is taken as it is (only the
//! newline ends a line, so a value cannot hold one: use `flashlog put KEY -`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use flashlog_kv::{Db, DbOptions};

use super::open::open_db;
use crate::text::{quoted, show};

const HELP: &str = "\
commands:
  put KEY VALUE   set KEY to VALUE: everything after the one space that follows
                  KEY, exactly as typed (spaces included)
  get KEY         print the value of KEY
  delete KEY      remove KEY
  scan [PREFIX]   list keys (starting with PREFIX) and their values
  stats           sizes of the store and its log
  help            this list
  exit, quit      leave (so does end of input)";

/// Runs the shell on standard input until `exit`, `quit` or end of input. With
/// piped input, exit code 2 if any command failed (each failure was printed).
pub fn run(dir: &Path, lock_timeout: Duration) -> anyhow::Result<ExitCode> {
    let db = open_db(dir, DbOptions::default(), lock_timeout)?;
    let interactive = std::io::stdin().is_terminal();
    let mut stdout = std::io::stdout();
    let mut input = if interactive {
        writeln!(
            stdout,
            "flashlog shell on {} ({} keys); type help",
            dir.display(),
            db.len()
        )?;
        Input::terminal()?
    } else {
        Input::Piped(std::io::stdin().lock())
    };
    let mut line = Vec::new();
    let mut failed = false;
    let outcome = loop {
        match input.read_line(&mut line) {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(err) => break Err(err),
        }
        match execute(&db, &line, &mut stdout) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Exit) => break Ok(()),
            // Nobody reads the answers any more: stop, closing the store.
            Err(err) if super::is_broken_pipe(&err) => break Err(err),
            // A bad command is reported and the shell goes on.
            Err(err) => {
                failed = true;
                let _ = stdout.flush();
                errln!("error: {err:#}");
            }
        }
    };
    input.save_history();
    db.close().context("cannot close the store")?;
    outcome?;
    if failed && !interactive {
        Ok(ExitCode::from(2))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

/// Where the shell's lines come from: a pipe or file, read as bytes, or a
/// terminal, through a line editor with history.
enum Input {
    Piped(std::io::StdinLock<'static>),
    Terminal {
        editor: Box<rustyline::DefaultEditor>,
        history: Option<PathBuf>,
    },
}

impl Input {
    /// A line editor (arrows, Ctrl-R, ...) with the history of earlier sessions.
    fn terminal() -> anyhow::Result<Input> {
        let mut editor = rustyline::DefaultEditor::new().context("cannot set up the terminal")?;
        let history = history_file();
        if let Some(path) = &history {
            // No history yet is fine; a damaged one starts afresh.
            let _ = editor.load_history(path);
        }
        Ok(Input::Terminal {
            editor: Box::new(editor),
            history,
        })
    }

    /// Reads the next line into `line`, without its newline; false at the end.
    /// At a terminal, Ctrl-C cancels the line being typed (an empty line is
    /// returned) and Ctrl-D on an empty line ends the session.
    fn read_line(&mut self, line: &mut Vec<u8>) -> anyhow::Result<bool> {
        line.clear();
        match self {
            Input::Piped(stdin) => {
                let read = stdin
                    .read_until(b'\n', line)
                    .context("cannot read standard input")?;
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                Ok(read > 0)
            }
            Input::Terminal { editor, .. } => match editor.readline("flashlog> ") {
                Ok(text) => {
                    if !text.trim().is_empty() {
                        let _ = editor.add_history_entry(text.as_str());
                    }
                    line.extend_from_slice(text.as_bytes());
                    Ok(true)
                }
                Err(rustyline::error::ReadlineError::Interrupted) => Ok(true),
                Err(rustyline::error::ReadlineError::Eof) => Ok(false),
                Err(err) => Err(anyhow::Error::new(err).context("cannot read the terminal")),
            },
        }
    }

    /// Keeps the session's lines for the next one (best effort: a shell whose
    /// history cannot be written still did its work).
    fn save_history(&mut self) {
        if let Input::Terminal {
            editor,
            history: Some(path),
        } = self
        {
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            if let Err(err) = editor.save_history(path) {
                errln!(
                    "warning: cannot save the history to {}: {err}",
                    path.display()
                );
            }
        }
    }
}

/// `$XDG_STATE_HOME/flashlog/history`, else `~/.local/state/flashlog/history`.
fn history_file() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|dir| !dir.is_empty())
                .map(|home| Path::new(&home).join(".local/state"))
        })?;
    Some(state.join("flashlog").join("history"))
}

enum Flow {
    Continue,
    Exit,
}

/// Runs one line of the shell.
fn execute(db: &Db, line: &[u8], out: &mut impl Write) -> anyhow::Result<Flow> {
    let (command, rest) = split_command(line);
    match command {
        b"" => {}
        b"put" | b"set" => {
            let (key, value) = split_put(rest)?;
            db.put(key, value)
                .with_context(|| format!("cannot put {}", quoted(key)))?;
            writeln!(out, "OK")?;
        }
        b"get" => {
            let key = one_key(rest, "get KEY")?;
            match db
                .get(key)
                .with_context(|| format!("cannot get {}", quoted(key)))?
            {
                Some(value) => writeln!(out, "{}", show(&value))?,
                None => writeln!(out, "(not found)")?,
            }
        }
        b"delete" | b"del" => {
            let key = one_key(rest, "delete KEY")?;
            let existed = db
                .delete(key)
                .with_context(|| format!("cannot delete {}", quoted(key)))?;
            writeln!(out, "{}", if existed { "OK" } else { "(not found)" })?;
        }
        b"scan" => {
            let mut count = 0u64;
            for pair in db.scan_prefix(trim_blanks(rest)) {
                let (key, value) = pair.context("cannot read a value")?;
                writeln!(out, "{} {}", show(&key), show(&value))?;
                count += 1;
            }
            writeln!(out, "({count} keys)")?;
        }
        b"stats" => write!(out, "{}", super::stats::store_table(&db.stats()))?,
        b"help" => writeln!(out, "{HELP}")?,
        b"exit" | b"quit" => return Ok(Flow::Exit),
        other => anyhow::bail!("unknown command {} (try help)", quoted(other)),
    }
    Ok(Flow::Continue)
}

/// Spaces, tabs and the carriage return of a line typed on Windows.
fn is_blank(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r')
}

fn trim_blanks(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_blank(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_blank(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// The command word (after any leading blanks) and what follows the one blank
/// after it.
fn split_command(line: &[u8]) -> (&[u8], &[u8]) {
    let start = line
        .iter()
        .position(|&b| !is_blank(b))
        .unwrap_or(line.len());
    let line = &line[start..];
    match line.iter().position(|&b| is_blank(b)) {
        Some(end) => (&line[..end], &line[end + 1..]),
        None => (line, &[]),
    }
}

/// `KEY VALUE`: the key runs to the first blank, the value is everything after
/// that one blank, exactly (empty if there is none).
fn split_put(rest: &[u8]) -> anyhow::Result<(&[u8], &[u8])> {
    anyhow::ensure!(!rest.is_empty(), "usage: put KEY VALUE");
    let (key, value) = match rest.iter().position(|&b| is_blank(b)) {
        Some(end) => (&rest[..end], &rest[end + 1..]),
        None => (rest, &[][..]),
    };
    anyhow::ensure!(
        !key.is_empty(),
        "the key is empty: one space goes between put and KEY (usage: put KEY VALUE)"
    );
    Ok((key, value))
}

fn one_key<'a>(rest: &'a [u8], usage: &str) -> anyhow::Result<&'a [u8]> {
    let key = trim_blanks(rest);
    anyhow::ensure!(
        !key.is_empty() && !key.iter().copied().any(is_blank),
        "usage: {usage}"
    );
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_keeps_the_value_exactly_and_refuses_an_empty_key() {
        assert_eq!(split_command(b"  put k v"), (&b"put"[..], &b"k v"[..]));
        assert_eq!(
            split_put(b"k  two  spaces ").unwrap(),
            (&b"k"[..], &b" two  spaces "[..])
        );
        assert_eq!(split_put(b"k").unwrap(), (&b"k"[..], &b""[..]));
        assert_eq!(split_put(b"k ").unwrap(), (&b"k"[..], &b""[..]));
        assert_eq!(
            split_put(b"k\xff v\x00").unwrap(),
            (&b"k\xff"[..], &b"v\x00"[..])
        );
        let err = split_put(b" value").unwrap_err().to_string();
        assert!(err.starts_with("the key is empty"), "{err}");
        assert_eq!(
            split_put(b"").unwrap_err().to_string(),
            "usage: put KEY VALUE"
        );
        assert_eq!(one_key(b" k\r", "get KEY").unwrap(), b"k");
        assert!(one_key(b"a b", "get KEY").is_err());
        assert!(one_key(b"", "get KEY").is_err());
        assert_eq!(trim_blanks(b"  "), b"");
    }
}
