#!/usr/bin/env bash
# Stops the cluster a start-*.sh script started in STATE_DIR (SIGTERM, then SIGKILL
# after 10 s) and, with --remove, deletes STATE_DIR.
#
#   ./stop.sh STATE_DIR [--remove]
set -uo pipefail
state=${1:?usage: stop.sh STATE_DIR [--remove]}
[ -d "$state" ] || exit 0
pids=()
for f in "$state"/node*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" && pids+=("$pid"); fi
done
for _ in $(seq 100); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
done
for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"; done
if [ "${2:-}" = --remove ]; then rm -rf "$state"; fi
exit 0
