#!/usr/bin/env bash
# Installs what the cluster benchmark needs and builds its load generator:
# etcd 3.4 (Debian's `etcd-server`) and `protoc` (Debian's `protobuf-compiler`,
# which the `etcd-client` crate needs at build time). Installing needs root; it
# reads nothing from stdin. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")"
need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v protoc >/dev/null || need+=(protobuf-compiler)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup.sh: installing ${need[*]} needs root (or install them yourself)" >&2
        exit 2
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${need[@]}" </dev/null ||
        { apt-get update -q </dev/null && apt-get install -y -q --no-install-recommends "${need[@]}" </dev/null; }
fi
# Debian's package may start a system etcd on the default ports (2379/2380); the
# benchmark uses its own ports and data directories, so it is left alone.
etcd --version | sed -n 1p
protoc --version
cargo build --release --locked
