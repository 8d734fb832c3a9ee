#!/usr/bin/env bash
# The benchmark's private dockerd: `dockerd.sh start` starts it (idempotent) with its own data root,
# exec root, pidfile and socket under bench/.state/docker, no bridge and no iptables rules, and
# waits until it answers; `dockerd.sh stop` stops it by the PID in its pidfile. It never touches a
# system-wide dockerd. Clients use: /usr/bin/docker -H unix://bench/.state/docker/docker.sock
set -euo pipefail
state=${BENCH_STATE:-$(cd "$(dirname "$0")/.." && pwd)/.state}
dir=$state/docker
sock=$dir/docker.sock
pidfile=$dir/dockerd.pid
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
case "${1:-}" in
  start)
    running && exit 0
    mkdir -p "$dir/data" "$dir/exec"
    dockerd --bridge=none --iptables=false --ip-masq=false \
      --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$pidfile" \
      -H "unix://$sock" >"$dir/dockerd.log" 2>&1 &
    for _ in $(seq 1 120); do
      /usr/bin/docker -H "unix://$sock" version >/dev/null 2>&1 && exit 0
      kill -0 $! 2>/dev/null || break
      sleep 0.5
    done
    echo "dockerd did not come up; its log:" >&2
    tail -20 "$dir/dockerd.log" >&2
    exit 1
    ;;
  stop)
    running || exit 0
    pid=$(cat "$pidfile")
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.5; done
    echo "dockerd ($pid) did not stop within 30 s" >&2
    exit 1
    ;;
  *) echo "usage: dockerd.sh start|stop" >&2; exit 2 ;;
esac
