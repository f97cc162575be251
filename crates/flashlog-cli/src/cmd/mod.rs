//! One module per subcommand. Each `run` returns the exit code on success; errors
//! go back to `main`, which prints them on one line and picks the exit code.

/// `println!` that returns an error instead of panicking when standard output is
/// gone (`flashlog dump | head -1`): `main` ends the command quietly on a closed
/// pipe. Use as `outln!(...)?`.
macro_rules! outln {
    () => {
        outln!("")
    };
    ($($arg:tt)*) => {
        anyhow::Context::context(
            std::io::Write::write_fmt(&mut std::io::stdout(), format_args!("{}\n", format_args!($($arg)*))),
            "cannot write to standard output",
        )
    };
}

/// `print!` that returns an error instead of panicking (see `outln!`).
macro_rules! out {
    ($($arg:tt)*) => {
        anyhow::Context::context(
            std::io::Write::write_fmt(&mut std::io::stdout(), format_args!($($arg)*)),
            "cannot write to standard output",
        )
    };
}

/// `eprintln!` that never panics: with standard error closed too
/// (`flashlog scan 2>&1 | head -1`) the message has nowhere to go.
macro_rules! errln {
    ($($arg:tt)*) => {{
        let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("{}\n", format_args!($($arg)*)));
    }};
}

pub mod bench;
pub mod cluster;
pub mod compact;
pub mod dump;
pub mod interrupt;
pub mod kv;
pub mod open;
pub mod repair;
pub mod serve;
pub mod shell;
pub mod stats;
pub mod tail;
pub mod verify;

pub use open::{open_db_read_only, open_error, open_wal_inspect};

/// Whether `err` comes from writing to a closed pipe (`flashlog dump | head -1`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
