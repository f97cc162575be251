#!/usr/bin/env bash
# The whole comparison, one command: a 3-node etcd, then a 3-node flashlog, each
# on loopback with its data in one temporary directory (same disk), each measured
# with the same load generator (durable writes, then linearizable reads, at each
# client count; then leader failovers), and the results appended as a section
# with tables and SVG plots to docs/benchmarks.md.
#
#   bench/cluster/run.sh
#
# Settings (environment): CLIENTS (default 1,16,64,256), DURATION seconds per row
# (10), WARMUP (1), KILLS (5), SYSTEMS (etcd,flashlog), ETCD_CONNS (1),
# FLASHLOG_BIN (default: build flashlog-cli in the main workspace and use that),
# FLASHLOG_DESC (what the report says the flashlog binary is; default its commit),
# FLASHLOG_SERVE_ARGS (extra flags for each `flashlog serve`, see start-flashlog.sh),
# RESULTS (default results/cluster: the raw JSON lines and the plots), MARKDOWN
# (default docs/benchmarks.md), TMPDIR (where the data directories go).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
clients=${CLIENTS:-1,16,64,256}
duration=${DURATION:-10}
warmup=${WARMUP:-1}
kills=${KILLS:-5}
systems=${SYSTEMS:-etcd,flashlog}
results=${RESULTS:-$root/results/cluster}
markdown=${MARKDOWN:-$root/docs/benchmarks.md}

"$here/setup.sh"
bench="${CARGO_TARGET_DIR:-$here/target}/release/flashlog-cluster-bench"

mkdir -p "$results"
results=$(cd "$results" && pwd)
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
out="$results/run-$stamp.jsonl"
work=$(mktemp -d "${TMPDIR:-/tmp}/flashlog-cluster-bench.XXXXXX")
cleanup() {
    for s in etcd flashlog; do "$here/stop.sh" "$work/$s"; done
    rm -rf "$work"
}
trap cleanup EXIT

measure() { # SYSTEM: start it, load it, fail it over, stop it
    local system=$1 state="$work/$1"
    "$here/start-$system.sh" "$state"
    "$bench" wait --state "$state" --timeout 60
    "$bench" load --state "$state" --op write --clients "$clients" --duration "$duration" \
        --warmup "$warmup" --etcd-conns "${ETCD_CONNS:-1}" --out "$out"
    "$bench" load --state "$state" --op read --clients "$clients" --duration "$duration" \
        --warmup "$warmup" --etcd-conns "${ETCD_CONNS:-1}" --out "$out"
    "$bench" failover --state "$state" --kills "$kills" --out "$out"
    "$here/stop.sh" "$state"
    du -sh "$state"/n1 | sed "s|^|$system node 1 data: |"
}

notes=()
for system in ${systems//,/ }; do
    case $system in
    etcd) measure etcd ;;
    flashlog)
        if [ -z "${FLASHLOG_BIN:-}" ]; then
            (cd "$root" && cargo build --release -q -p flashlog-cli)
            FLASHLOG_BIN="${CARGO_TARGET_DIR:-$root/target}/release/flashlog"
        fi
        if "$FLASHLOG_BIN" serve --help >/dev/null 2>&1; then
            export FLASHLOG_BIN
            measure flashlog
        else
            echo "run.sh: $FLASHLOG_BIN has no 'serve' command: flashlog not measured" >&2
            notes+=("flashlog not measured: the binary has no \`serve\` command.")
        fi
        ;;
    *) echo "run.sh: unknown system $system" >&2; exit 2 ;;
    esac
done

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
flashlog_desc=${FLASHLOG_DESC:-"flashlog at \`$commit\`"}
note="Run of $(date -u '+%Y-%m-%d %H:%M') UTC: $(nproc) cores, $(etcd --version | sed -n 1p), $flashlog_desc; $duration s per row after a $warmup s warm-up, $kills leader kills; raw results \`${out#"$root"/}\`. ${notes[*]:-}"
"$bench" report "$out" --markdown "$markdown" --plots "$results" --note "$note"
