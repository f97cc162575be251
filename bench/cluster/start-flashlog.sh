#!/usr/bin/env bash
# Starts a 3-node flashlog cluster on loopback and forms it:
#
#   ./start-flashlog.sh STATE_DIR [BASE_PORT]
#
# Uses `$FLASHLOG_BIN` (default: `flashlog` on PATH) and passes
# `$FLASHLOG_SERVE_ARGS` (default none: the server's defaults) to each `serve`.
# Each node runs
# `flashlog serve --id I --listen 127.0.0.1:PORT --dir STATE_DIR/nI` (its log under
# the default `SyncPolicy::Always`), node I on BASE_PORT+I-1 (default base 24791);
# once all three answer, `flashlog cluster init` forms the cluster. STATE_DIR gets
# the same files as start-etcd.sh writes (`system`, `endpoints`, `nodeI.pid`,
# `nodeI.start`, logs). Stop with ./stop.sh STATE_DIR.
set -euo pipefail
state=${1:?usage: start-flashlog.sh STATE_DIR [BASE_PORT]}
base=${2:-24791}
bin=${FLASHLOG_BIN:-flashlog}
command -v "$bin" >/dev/null || { echo "flashlog binary '$bin' not found (set FLASHLOG_BIN)" >&2; exit 2; }
bin=$(command -v "$bin")
mkdir -p "$state"
state=$(cd "$state" && pwd)
if [ -e "$state/system" ]; then echo "$state already holds a cluster" >&2; exit 2; fi

endpoints=""
init_args=()
for i in 1 2 3; do
    port=$((base + i - 1))
    endpoints+="${endpoints:+,}127.0.0.1:$port"
    init_args+=(--node "$i=127.0.0.1:$port")
    cat >"$state/node$i.start" <<SCRIPT
#!/usr/bin/env bash
# Launches flashlog node $i in the background (same directory: a restart rejoins).
cd "$state"
nohup "$bin" serve --id $i --listen 127.0.0.1:$port --dir "$state/n$i" ${FLASHLOG_SERVE_ARGS:-} \\
    >>"$state/n$i.log" 2>&1 </dev/null &
echo \$! >"$state/node$i.pid"
SCRIPT
    chmod +x "$state/node$i.start"
done
echo flashlog >"$state/system"
echo "$endpoints" >"$state/endpoints"
for i in 1 2 3; do "$state/node$i.start"; done

# Wait (up to 30 s) until every node accepts connections, then form the cluster.
for i in 1 2 3; do
    port=$((base + i - 1))
    for _ in $(seq 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
        sleep 0.1
    done
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || {
        echo "flashlog node $i did not listen on port $port; its log:" >&2
        tail -20 "$state/n$i.log" >&2
        exit 1
    }
done
"$bin" cluster init "${init_args[@]}"
echo "flashlog: 3 nodes formed, clients at $endpoints, state in $state"
