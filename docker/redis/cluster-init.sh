#!/usr/bin/env bash
# One-shot: forms the Redis Cluster from the nodes given as arguments (host:port …; six of them:
# three primaries, three replicas). Idempotent: if the cluster is already formed (a later
# `docker compose up`), it only waits for cluster_state:ok and exits 0.
set -euo pipefail

if [ "$#" -lt 6 ]; then
  echo "usage: $0 host:port host:port host:port host:port host:port host:port" >&2
  exit 2
fi

info() { redis-cli -h "${1%:*}" -p "${1##*:}" cluster info 2>/dev/null | tr -d '\r'; }
field() { awk -F: -v k="$1" '$1 == k { print $2 }'; }

wait_ok() {
  for _ in $(seq 1 60); do
    local all_ok=1
    for node in "$@"; do
      [ "$(info "$node" | field cluster_state)" = ok ] || all_ok=0
    done
    if [ "$all_ok" = 1 ]; then
      echo "redis-cluster-init: cluster_state:ok on every node"
      return 0
    fi
    sleep 1
  done
  echo "redis-cluster-init: the cluster did not reach cluster_state:ok" >&2
  return 1
}

for node in "$@"; do
  for attempt in $(seq 1 60); do
    [ "$(redis-cli -h "${node%:*}" -p "${node##*:}" ping 2>/dev/null | tr -d '\r')" = PONG ] && break
    if [ "$attempt" = 60 ]; then
      echo "redis-cluster-init: ${node} does not answer" >&2
      exit 1
    fi
    sleep 1
  done
done

if [ "$(info "$1" | field cluster_state)" = ok ]; then
  echo "redis-cluster-init: cluster already formed"
  exit 0
fi

# Nodes that already know each other were formed before (and are recovering): do not create again.
for node in "$@"; do
  if [ "$(info "$node" | field cluster_known_nodes)" != 1 ]; then
    echo "redis-cluster-init: ${node} is already part of a cluster; waiting for it"
    wait_ok "$@"
    exit $?
  fi
done

redis-cli --cluster create "$@" --cluster-replicas 1 --cluster-yes
wait_ok "$@"
