//! The command line (clap derive): the preset, where logs go, and what to run.

use std::path::PathBuf;

use clap::builder::PossibleValuesParser;
use clap::{ArgAction, Parser};

use crate::system::System;

/// The sections `--only` can name, in the order they run.
pub const SECTIONS: [&str; 10] = [
    "durable", "batched", "unsynced", "receipts", "replay", "open", "tail", "follower", "memory",
    "raft",
];

/// The flags that give the figures the removed `--core` mode gave (docs/benchmarks.md,
/// "The first version's figures"): 256 B durable appends from 1, 8 and 64 threads
/// beside the plain loops and the syncer-thread group commit, replay with the owned
/// iterator, open time by size, peak memory.
pub const CORE_FIGURES: &str = "--only durable,replay,open,memory --sizes 256 --threads 1,8,64 \
--systems flashlog,plain,prealloc,syncer --seconds 3 --out results/core";

/// Which preset an invocation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every row, 3 repetitions, 1 GiB replay, open times up to 10 GiB.
    Full,
    /// Every row, shorter runs and smaller logs.
    Quick,
    /// Tiny sizes: checks that every code path runs (CI).
    Smoke,
}

impl Mode {
    /// Name used in the output.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Quick => "quick",
            Mode::Smoke => "smoke",
        }
    }
}

/// flashlog against okaywal, raft-engine and baselines measured in the same run on
/// the same disk (only same-run ratios mean anything). Without a preset flag: the
/// full run, which writes results/ (about 15 minutes on 2 cores).
#[derive(Debug, Clone, Parser)]
#[command(name = "flashlog-bench", args_override_self = true)]
pub struct Args {
    /// Same rows, shorter runs and smaller logs; writes results/quick/ (about 2 min).
    #[arg(long, overrides_with = "smoke")]
    pub quick: bool,
    /// Tiny sizes, every code path and every system, results in a temp folder (CI).
    #[arg(long, overrides_with = "quick")]
    pub smoke: bool,
    /// Where temporary logs go: the disk under test.
    #[arg(long, value_name = "PATH", default_value = ".")]
    pub dir: PathBuf,
    /// Results folder [default: results/, results/quick/, or a temp folder for --smoke].
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Seconds per timed run (overrides the preset's).
    #[arg(long, value_name = "N")]
    pub seconds: Option<f64>,
    /// Repetitions of each timed configuration (overrides the preset's).
    #[arg(long, value_name = "N")]
    pub reps: Option<usize>,
    /// Sections to run, comma-separated [default: all].
    #[arg(long, value_name = "LIST", value_delimiter = ',', action = ArgAction::Set,
          value_parser = PossibleValuesParser::new(SECTIONS))]
    pub only: Vec<String>,
    /// Systems to run, comma-separated; ratios need the baselines [default: all but
    /// syncer, which only --smoke runs unasked].
    #[arg(long, value_name = "LIST", value_delimiter = ',', action = ArgAction::Set,
          value_parser = PossibleValuesParser::new(System::ALL.map(System::id)))]
    pub systems: Vec<String>,
    /// Entry sizes in bytes of the durable rows, comma-separated (overrides the preset's).
    #[arg(long, value_name = "LIST", value_delimiter = ',', action = ArgAction::Set)]
    pub sizes: Vec<usize>,
    /// Thread counts of the durable rows, comma-separated (overrides the preset's).
    #[arg(long, value_name = "LIST", value_delimiter = ',', action = ArgAction::Set)]
    pub threads: Vec<usize>,
    /// Concurrent clients of the openraft section, comma-separated (overrides the preset's).
    #[arg(long, value_name = "LIST", value_delimiter = ',', action = ArgAction::Set)]
    pub clients: Vec<usize>,
    /// Log stores of the openraft section, comma-separated; ratios need `memory`
    /// [default: every one this build has].
    #[arg(long, value_name = "LIST", value_delimiter = ',', action = ArgAction::Set,
          value_parser = PossibleValuesParser::new(["flashlog", "flashlog-lazy", "memory", "raft-log", "rocksdb"]))]
    pub stores: Vec<String>,
    /// Removed: refused with the flags that now give its figures.
    #[arg(long, hide = true)]
    pub core: bool,
    /// Internal: run as the peak-memory child, appending this many bytes.
    #[arg(long, value_name = "BYTES", hide = true)]
    pub memory_child: Option<u64>,
    /// Internal: run as the crash child on this log directory.
    #[arg(long, value_name = "PATH", hide = true)]
    pub crash_child: Option<PathBuf>,
}

impl Args {
    /// The preset the flags chose (the last of `--quick` and `--smoke` wins).
    pub fn mode(&self) -> Mode {
        if self.smoke {
            Mode::Smoke
        } else if self.quick {
            Mode::Quick
        } else {
            Mode::Full
        }
    }

    /// Whether `section` (one of [`SECTIONS`]) runs.
    pub fn wanted(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }

    /// Those of `systems` that run: the ones `--systems` names, or else every one
    /// under `--smoke` and every one but the syncer-thread group commit otherwise.
    pub fn chosen(&self, systems: &[System]) -> Vec<System> {
        systems
            .iter()
            .copied()
            .filter(|s| {
                if self.systems.is_empty() {
                    self.mode() == Mode::Smoke || System::DEFAULT.contains(s)
                } else {
                    self.systems.iter().any(|id| id == s.id())
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("flashlog-bench").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn no_flags_is_the_full_run_in_the_current_directory() {
        let args = parse(&[]).expect("parse");
        assert_eq!(args.mode(), Mode::Full);
        assert_eq!(args.dir, PathBuf::from("."));
        assert!(args.out.is_none() && args.only.is_empty() && args.systems.is_empty());
        assert!(args.wanted("memory"));
        assert_eq!(args.chosen(&System::ALL), System::DEFAULT);
    }

    #[test]
    fn every_flag_parses_as_before() {
        let args = parse(&[
            "--smoke",
            "--dir",
            "/tmp/x",
            "--out",
            "o",
            "--seconds",
            "0.5",
            "--reps",
            "5",
            "--only",
            "durable,open",
            "--systems",
            "flashlog,syncer",
            "--sizes",
            "256,65536",
            "--threads",
            "1,8,64",
            "--clients",
            "1,256",
            "--stores",
            "memory,flashlog",
        ])
        .expect("parse");
        assert_eq!(args.mode(), Mode::Smoke);
        assert_eq!(args.dir, PathBuf::from("/tmp/x"));
        assert_eq!(args.out, Some(PathBuf::from("o")));
        assert_eq!(args.seconds, Some(0.5));
        assert_eq!(args.reps, Some(5));
        assert!(args.wanted("open") && !args.wanted("replay"));
        assert_eq!(
            args.chosen(&System::ALL),
            [System::Flashlog, System::SyncerGroupCommit]
        );
        assert_eq!(args.sizes, [256, 65536]);
        assert_eq!(args.threads, [1, 8, 64]);
        assert_eq!(args.clients, [1, 256]);
        assert_eq!(args.stores, ["memory", "flashlog"]);
    }

    #[test]
    fn the_last_preset_and_the_last_value_win() {
        assert_eq!(
            parse(&["--quick", "--smoke"]).expect("parse").mode(),
            Mode::Smoke
        );
        assert_eq!(
            parse(&["--smoke", "--quick"]).expect("parse").mode(),
            Mode::Quick
        );
        let args = parse(&["--reps", "2", "--reps", "4"]).expect("parse");
        assert_eq!(args.reps, Some(4));
        let args = parse(&["--only", "durable,tail", "--only", "open"]).expect("parse");
        assert_eq!(args.only, ["open"]);
    }

    #[test]
    fn smoke_runs_every_system_unasked() {
        let args = parse(&["--smoke"]).expect("parse");
        assert_eq!(args.chosen(&System::ALL), System::ALL);
    }

    #[test]
    fn the_core_figures_command_parses_and_the_docs_give_it() {
        let args = parse(&CORE_FIGURES.split_whitespace().collect::<Vec<_>>()).expect("parse");
        assert_eq!(args.mode(), Mode::Full);
        assert_eq!(args.threads, [1, 8, 64]);
        assert!(args
            .chosen(&System::ALL)
            .contains(&System::SyncerGroupCommit));
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for doc in ["README.md", "docs/benchmarks.md"] {
            let text = std::fs::read_to_string(root.join(doc)).expect("read the doc");
            // Shell line continuations and markdown line breaks are whitespace.
            let text = text.replace("\\\n", " ");
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            let flags = CORE_FIGURES
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            assert!(text.contains(&flags), "{doc} gives `{flags}`");
        }
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            &["--only", "durable,bogus"][..],
            &["--systems", "sled"],
            &["--sizes", "1k"],
            &["--seconds"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn internal_flags_are_hidden_from_help() {
        let help = Args::command().render_long_help().to_string();
        for flag in [
            "--quick",
            "--smoke",
            "--dir",
            "--out",
            "--seconds",
            "--reps",
            "--only",
            "--systems",
            "--sizes",
            "--threads",
            "--clients",
            "--stores",
        ] {
            assert!(help.contains(flag), "{flag}");
        }
        for hidden in ["--memory-child", "--crash-child", "--core"] {
            assert!(!help.contains(hidden), "{hidden}");
        }
    }
}
