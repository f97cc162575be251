#!/usr/bin/env bash
# Starts a 3-node etcd 3.4 cluster on loopback with etcd's default settings (fsync
# on every commit, 100 ms heartbeat, 1 s election timeout).
#
#   ./start-etcd.sh STATE_DIR [BASE_PORT]
#
# STATE_DIR (created; must be empty or absent) receives everything: the data
# directories n1..n3 (so all three nodes share one disk), their logs, and what the
# load generator reads: `system`, `endpoints` (client addresses in node order), and
# per node `nodeI.pid` and `nodeI.start` (relaunches node I with the same data,
# writing its new pid). Node I listens for clients on BASE_PORT+2*(I-1) and for
# peers on the port after (default base 23791). Stop with ./stop.sh STATE_DIR.
set -euo pipefail
state=${1:?usage: start-etcd.sh STATE_DIR [BASE_PORT]}
base=${2:-23791}
command -v etcd >/dev/null || { echo "etcd not found: run ./setup.sh" >&2; exit 2; }
mkdir -p "$state"
state=$(cd "$state" && pwd)
if [ -e "$state/system" ]; then echo "$state already holds a cluster" >&2; exit 2; fi

cluster=""
for i in 1 2 3; do
    peer=$((base + 2 * (i - 1) + 1))
    cluster+="${cluster:+,}n$i=http://127.0.0.1:$peer"
done
endpoints=""
for i in 1 2 3; do
    client=$((base + 2 * (i - 1)))
    peer=$((client + 1))
    endpoints+="${endpoints:+,}127.0.0.1:$client"
    cat >"$state/node$i.start" <<SCRIPT
#!/usr/bin/env bash
# Launches etcd node $i in the background (same data directory: a restart rejoins).
cd "$state"
nohup etcd --name n$i --data-dir "$state/n$i" \\
    --listen-client-urls http://127.0.0.1:$client --advertise-client-urls http://127.0.0.1:$client \\
    --listen-peer-urls http://127.0.0.1:$peer --initial-advertise-peer-urls http://127.0.0.1:$peer \\
    --initial-cluster $cluster --initial-cluster-token flashlog-bench --initial-cluster-state new \\
    >>"$state/n$i.log" 2>&1 </dev/null &
echo \$! >"$state/node$i.pid"
SCRIPT
    chmod +x "$state/node$i.start"
done
echo etcd >"$state/system"
echo "$endpoints" >"$state/endpoints"
for i in 1 2 3; do "$state/node$i.start"; done
echo "etcd: 3 nodes starting, clients at $endpoints, state in $state"
