#!/usr/bin/env bash
# down.sh: stop the test cluster started by up.sh and undo its side effects on the host; safe to run twice or after a partial up.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"
need_root

# stop NAME...: SIGTERM the recorded pids together, wait up to 10 s, then SIGKILL.
# Only pids from our pid files (checked to still be ours by pid_of).
stop() {
  local name pid i names=()
  for name in "$@"; do
    if pid=$(pid_of "$name"); then
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      names+=("$name")
    else
      rm -f "$PIDS/$name.pid"
    fi
  done
  # A gone or zombie process has no command line any more, so alive turns false.
  local still
  for ((i = 0; i < 100; i++)); do
    still=0
    for name in "${names[@]}"; do
      if alive "$name"; then still=1; fi
    done
    ((still)) || break
    sleep 0.1
  done
  for name in "$@"; do
    if pid=$(pid_of "$name"); then
      log "$name did not exit on SIGTERM, killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDS/$name.pid"
  done
}

# descendants PID: all processes below PID (children first walked from /proc).
descendants() {
  local parent=$1 p
  for p in $(ps -o pid= --ppid "$parent"); do
    descendants "$p"
    echo "$p"
  done
}

# Shims of *this* containerd: runc v2 shims re-parent to init, so find them by the
# -address argument (our socket) rather than by name.
our_shims() {
  local d cmd
  for d in /proc/[0-9]*; do
    cmd=$(cmdline_of "${d#/proc/}")
    if [[ $cmd == *containerd-shim* && $cmd == *"-address $CTRD_SOCK "* ]]; then
      echo "${d#/proc/}"
    fi
  done
}

# Kill every container through containerd while it still runs, so the shims exit by
# themselves and containerd releases its mounts.
stop_containers() {
  alive containerd || return 0
  local ns id
  for ns in $(ctr --address "$CTRD_SOCK" namespaces ls -q); do
    for id in $(ctr --address "$CTRD_SOCK" -n "$ns" tasks ls -q); do
      ctr --address "$CTRD_SOCK" -n "$ns" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    for id in $(ctr --address "$CTRD_SOCK" -n "$ns" tasks ls -q); do
      ctr --address "$CTRD_SOCK" -n "$ns" tasks delete -f "$id" >/dev/null 2>&1 || true
    done
    for id in $(ctr --address "$CTRD_SOCK" -n "$ns" containers ls -q); do
      ctr --address "$CTRD_SOCK" -n "$ns" containers delete "$id" >/dev/null 2>&1 || true
    done
  done
}

# If containerd was already gone, shims and their containers may remain: kill the
# containers (the shims' descendants) first, then the shims.
kill_shims() {
  local shim p
  for shim in $(our_shims); do
    log "killing leftover shim $shim and its processes"
    for p in $(descendants "$shim"); do kill -KILL "$p" 2>/dev/null || true; done
    kill -KILL "$shim" 2>/dev/null || true
  done
}

# Unmount everything below DIR, deepest first (pod volumes, rootfs overlays, shm, netns).
unmount_below() {
  local dir=$1 m
  [[ -d $dir ]] || return 0
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
  done < <(awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | uniq)
}

mounts_below() { awk -v d="$1/" 'index($5, d) == 1 {n++} END {print n + 0}' /proc/self/mountinfo; }

remove_interfaces() {
  local veth
  # Pod veths die with their network namespaces; remove any that outlived them.
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    for veth in $(ip -o link show master "$BRIDGE" | awk -F': ' '{print $2}' | cut -d@ -f1); do
      ip link del "$veth" 2>/dev/null || true
    done
    log "removing bridge $BRIDGE"
    ip link del "$BRIDGE"
  fi
}

# Other clusters still up on this host (their own state dirs): they keep the shared things.
others_up() {
  local f
  for f in "$SHARED"/users/*; do
    [[ -e $f && ${f##*/} != "$SHARED_ID" ]] && return 0
  done
  return 1
}

restore_sysctls() {
  [[ -s $SHARED/sysctl.saved ]] || return 0
  local line
  while read -r line; do
    sysctl -q -w "$line" >/dev/null || log "could not restore $line"
  done <"$SHARED/sysctl.saved"
  rm -f "$SHARED/sysctl.saved"
}

# The kubelet makes $CGROUP_ROOT/kubepods cgroups in every hierarchy (cgroupfs driver); they are
# empty once the containers are gone.
remove_cgroups() {
  local d root=${CGROUP_ROOT#/}
  for d in /sys/fs/cgroup/*/"${root:+$root/}"kubepods /sys/fs/cgroup/"${root:+$root/}"kubepods; do
    [[ -d $d ]] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || log "some cgroups under $d are still busy"
  done
  if [[ -n $root ]]; then
    for d in /sys/fs/cgroup/*/"$root" /sys/fs/cgroup/"$root"; do
      [[ -d $d ]] && rmdir "$d" 2>/dev/null
    done
  fi
  return 0
}

# socat forks a child per connection: stop the whole process group (it runs in its own session).
stop_service_proxy() {
  local pid
  if pid=$(pid_of service-proxy); then
    kill -TERM -- "-$pid" 2>/dev/null || true
  fi
  stop service-proxy
  rm -f "$PIDS/service-proxy.lock"
  if [[ -s $STATE/cluster.env ]]; then
    # shellcheck source=/dev/null
    source "$STATE/cluster.env"
    ip addr del "$SERVICE_IP/32" dev lo 2>/dev/null || true
  fi
}

remove_global_paths() {
  [[ -s $SHARED/created-paths ]] || return 0
  local p
  while read -r p; do
    [[ -e $p ]] || continue
    if (($(mounts_below "$p") > 0)); then
      unmount_below "$p"
    fi
    rm -rf --one-file-system "$p"
  done <"$SHARED/created-paths"
  rm -f "$SHARED/created-paths"
}

main() {
  if [[ ! -d $STATE ]]; then
    remove_interfaces
    log "nothing to stop ($STATE does not exist)"
    return
  fi
  # Extra nodes (node.sh) first, each with its own kubelet and containerd.
  local n
  for n in "$STATE"/nodes/*; do
    [[ -d $n ]] && "$HERE/node.sh" down "${n##*/}"
  done
  # The kubelet first so it does not restart what we stop; containerd last among the
  # container side so it can clean up the containers and their mounts itself.
  stop kubelet
  stop kube-scheduler kube-controller-manager
  stop_service_proxy
  stop kube-apiserver
  stop_containers
  stop containerd
  kill_shims
  stop etcd

  unmount_below "$STATE"
  remove_interfaces
  remove_cgroups
  # A cluster started by an older checkout's up.sh kept these in its state dir only.
  mkdir -p "$SHARED"
  local f
  for f in sysctl.saved created-paths; do
    [[ -s $SHARED/$f || ! -s $STATE/$f ]] || cp "$STATE/$f" "$SHARED/$f"
    rm -f "$STATE/$f"
  done
  rm -f "$SHARED/users/$SHARED_ID"
  if others_up; then
    log "another cluster is up on this host: sysctls and shared paths stay until its down.sh"
  else
    restore_sysctls
    remove_global_paths
    rm -rf "$SHARED"
  fi

  # Delete the state (etcd data, images, certificates) so the next up.sh starts from a
  # clean cluster; keep logs/ for a look after a failed run. Refuse if anything is still
  # mounted there: rm would descend into it.
  if (($(mounts_below "$STATE") > 0)); then
    die "mounts remain under $STATE; not deleting it"
  fi
  find "$STATE" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf --one-file-system {} +
  local d left=()
  for d in /proc/[0-9]*; do
    [[ $(cmdline_of "${d#/proc/}") != *"$STATE/"* ]] || left+=("${d#/proc/}")
  done
  ((${#left[@]} == 0)) || log "WARNING: processes still mention $STATE: ${left[*]}"
  log "cluster stopped"
}

main
