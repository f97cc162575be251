#!/usr/bin/env bash
# Blocking durable appends of two builds of flashlog-wal in ONE process, alternating
# in short slices (ABBA), so that both see the same disk: on a shared machine the
# disk's fsync latency moves 30-fold within seconds, which drowns a before/after
# comparison of two harness binaries run one after the other (docs/benchmarks.md,
# "Receipts, and blocking appends before and after them").
#
#   crates/flashlog-bench/tools/ab-append.sh BEFORE_REV THREADS SLICE_MS ROUNDS [DIR] [aa]
#   e.g. crates/flashlog-bench/tools/ab-append.sh dee58a2 1 200 200 .
#
# "before" is flashlog-wal at BEFORE_REV, "after" the working tree's. Each slice opens
# a fresh log (SyncPolicy::Always) under DIR, appends 256 B entries from THREADS
# threads for SLICE_MS, and closes it. Prints one line per round and a summary: the
# median after/before ratio with a 95% bootstrap interval. With `aa` the working
# tree's build runs in both slots: the method's own noise, to read the ratio against.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
rev=$1 threads=$2 slice=$3 rounds=$4 dir=${5:-.} mode=${6:-ab}
work="$(mktemp -d)"
trap 'git -C "$root" worktree remove --force "$work/before-tree" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git -C "$root" worktree add --detach "$work/before-tree" "$rev" >/dev/null
# The before crate under another version, so that cargo takes both (its lib.rs
# includes ../../../README.md: keep that path).
mkdir -p "$work/crates"
cp -r "$work/before-tree/crates/flashlog-wal" "$work/crates/before-wal"
cp "$work/before-tree/README.md" "$work/README.md"
cat > "$work/crates/before-wal/Cargo.toml" <<'EOF'
[package]
name = "flashlog-wal"
version = "0.0.1-before"
edition = "2021"
readme = "README.md"

[dependencies]
crc32fast = "1.4"
thiserror = "2"

[target.'cfg(target_os = "linux")'.dependencies]
rustix = { version = "1", features = ["fs"] }
EOF
mkdir -p "$work/src"
cat > "$work/Cargo.toml" <<EOF
[package]
name = "ab-append"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
before = { package = "flashlog-wal", path = "crates/before-wal" }
after = { package = "flashlog-wal", path = "$root/crates/flashlog-wal" }
tempfile = "3"

[workspace]
EOF
cat > "$work/src/main.rs" <<'EOF'
use std::sync::Arc;
use std::time::{Duration, Instant};

macro_rules! slice {
    ($krate:ident, $dir:expr, $threads:expr, $slice:expr) => {{
        use $krate::{Op, Options, SyncPolicy, Wal};
        let scratch = tempfile::Builder::new().prefix("ab-append-").tempdir_in($dir).unwrap();
        let options = Options::default().sync_policy(SyncPolicy::Always);
        let wal = Arc::new(Wal::open(scratch.path(), options).unwrap());
        let start = Instant::now();
        let handles: Vec<_> = (0..$threads)
            .map(|t: usize| {
                let wal = Arc::clone(&wal);
                std::thread::spawn(move || {
                    let (key, value) = ((t as u64).to_le_bytes(), vec![t as u8; 256 - 17 - 8]);
                    let mut n = 0u64;
                    while start.elapsed() < $slice {
                        wal.append(Op::Put, &key, &value).unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let n: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        let rate = n as f64 / start.elapsed().as_secs_f64();
        Arc::into_inner(wal).unwrap().close().unwrap();
        rate
    }};
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(&args[1]);
    let threads: usize = args[2].parse().unwrap();
    let slice = Duration::from_millis(args[3].parse().unwrap());
    let rounds: usize = args[4].parse().unwrap();
    let control = args[5] == "aa";
    let mut before = || if control { slice!(after, &dir, threads, slice) } else { slice!(before, &dir, threads, slice) };
    let mut ratios = Vec::new();
    for r in 0..rounds {
        let (b, a) = if r % 2 == 0 {
            let b = before();
            (b, slice!(after, &dir, threads, slice))
        } else {
            let a = slice!(after, &dir, threads, slice);
            (before(), a)
        };
        println!("{r} threads={threads} before={b:.0} after={a:.0} ratio={:.4}", a / b);
        ratios.push(a / b);
    }
    let median = |v: &mut Vec<f64>| { v.sort_by(f64::total_cmp); v[v.len() / 2] };
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut boots: Vec<f64> = (0..2000).map(|_| {
        let mut sample: Vec<f64> = (0..ratios.len()).map(|_| {
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
            ratios[(seed % ratios.len() as u64) as usize]
        }).collect();
        median(&mut sample)
    }).collect();
    boots.sort_by(f64::total_cmp);
    println!("{} threads, {} rounds of {} ms: after/before median {:.3} (95% bootstrap {:.3}-{:.3})",
        threads, rounds, slice.as_millis(), median(&mut ratios.clone()), boots[50], boots[1949]);
}
EOF
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$work/target}" cargo build --release --quiet --manifest-path "$work/Cargo.toml"
"${CARGO_TARGET_DIR:-$work/target}/release/ab-append" "$dir" "$threads" "$slice" "$rounds" "$mode"
