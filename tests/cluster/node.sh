#!/usr/bin/env bash
# node.sh: one more node for the running test cluster, on this same host: its own containerd, kubelet,
# cgroup root, CNI bridge and pod range, and its own kubelet address (the node's name).
# Usage: node.sh up ADDRESS [IMAGE...]   ADDRESS is a loopback address (127.0.0.2, ...) and the node's
#                                        name (the API server dials the kubelet there); IMAGEs are
#                                        podman images to import into its containerd
#        node.sh down ADDRESS            stop it, delete the Node, undo what it made
#        node.sh list                    the extra nodes that are up
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

usage() { sed -n '3,8p' "$0" >&2; exit 2; }

[[ $# -ge 1 ]] || usage
cmd=$1
if [[ $cmd == list ]]; then
  [[ -d $STATE/nodes ]] && ls "$STATE/nodes"
  exit 0
fi
[[ $# -ge 2 && $2 =~ ^127\.[0-9]+\.[0-9]+\.([0-9]+)$ && $2 != 127.0.0.1 ]] || usage
need_root
ADDRESS=$2
shift 2
K=${BASH_REMATCH[1]}
NODE_DIR=$STATE/nodes/$ADDRESS

# This node's share of everything the first node has (see components.sh).
NODE_NAME=$ADDRESS
CTRD=$NODE_DIR/containerd
CTRD_SOCK=$CTRD/containerd.sock
CTRD_NAME=containerd-$ADDRESS
CNI=$NODE_DIR/cni
BRIDGE=${BRIDGE}n$K
KUBELET_NAME=kubelet-$ADDRESS
KUBELET_DIR=$NODE_DIR/kubelet
KUBELET_ADDRESS=$ADDRESS
# The admin's identity: a node name outside tokens.csv needs no API server restart.
KUBELET_KUBECONFIG=$KUBECONFIG_ADMIN
CGROUP_ROOT=${CGROUP_ROOT:-}/gadgetbook-node-$K

node_up() {
  alive kube-apiserver || die "the cluster is not up: run $HERE/up.sh first"
  # shellcheck source=/dev/null
  source "$STATE/cluster.env"
  # 10.N.64.0/24 is the first node's; this one takes 10.N.(64+K).0/24.
  local prefix=${POD_SUBNET%.*.*}
  POD_SUBNET=$prefix.$((64 + K)).0/24
  mkdir -p "$NODE_DIR" "$PIDS" "$LOGS"
  # shellcheck source-path=SCRIPTDIR source=components.sh
  source "$HERE/components.sh"
  start_containerd
  GADGETBOOK_CONTAINERD_DIR=$CTRD "$HERE/images.sh" cluster
  if [[ $# -gt 0 ]]; then
    GADGETBOOK_CONTAINERD_DIR=$CTRD "$HERE/import-image.sh" "$@"
  fi
  start_kubelet
  wait_node_ready
  log "node $NODE_NAME Ready; pods on $POD_SUBNET, bridge $BRIDGE, cgroups under $CGROUP_ROOT"
}

node_down() {
  [[ -d $NODE_DIR ]] || { log "no node $ADDRESS"; return 0; }
  local pid
  if pid=$(pid_of "$KUBELET_NAME"); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$KUBELET_NAME" || break; sleep 0.1; done
    alive "$KUBELET_NAME" && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$PIDS/$KUBELET_NAME.pid"
  api DELETE "/api/v1/nodes/$NODE_NAME" >/dev/null 2>&1 || true
  if alive "$CTRD_NAME"; then
    local id
    for id in $(ctr_ tasks ls -q); do ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
    for id in $(ctr_ tasks ls -q); do ctr_ tasks delete -f "$id" >/dev/null 2>&1 || true; done
    for id in $(ctr_ containers ls -q); do ctr_ containers delete "$id" >/dev/null 2>&1 || true; done
    pid=$(pid_of "$CTRD_NAME")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$CTRD_NAME" || break; sleep 0.1; done
    alive "$CTRD_NAME" && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$PIDS/$CTRD_NAME.pid"
  # Shims of this containerd (found by their -address) and what they still run.
  local d cmd p
  for d in /proc/[0-9]*; do
    cmd=$(cmdline_of "${d#/proc/}")
    if [[ $cmd == *containerd-shim* && $cmd == *"-address $CTRD_SOCK "* ]]; then
      for p in $(ps -o pid= --ppid "${d#/proc/}"); do kill -KILL "$p" 2>/dev/null || true; done
      kill -KILL "${d#/proc/}" 2>/dev/null || true
    fi
  done
  local m
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
  done < <(awk -v d="$NODE_DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | uniq)
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    local veth
    for veth in $(ip -o link show master "$BRIDGE" | awk -F': ' '{print $2}' | cut -d@ -f1); do
      ip link del "$veth" 2>/dev/null || true
    done
    ip link del "$BRIDGE"
  fi
  local root=${CGROUP_ROOT#/}
  for d in /sys/fs/cgroup/*/"$root" /sys/fs/cgroup/"$root"; do
    [[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  if (($(awk -v d="$NODE_DIR/" 'index($5, d) == 1 {n++} END {print n + 0}' /proc/self/mountinfo) > 0)); then
    die "mounts remain under $NODE_DIR; not deleting it"
  fi
  rm -rf --one-file-system "$NODE_DIR"
  rmdir "$STATE/nodes" 2>/dev/null || true
  log "node $ADDRESS removed"
}

case $cmd in
up) node_up "$@" ;;
down) node_down ;;
*) usage ;;
esac
