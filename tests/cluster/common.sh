# common.sh: paths, ports and helpers shared by the tests/cluster scripts (sourced, not run).
# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are used by the scripts that source this file

K8S_VERSION=1.20.2
CACHE=${GADGETBOOK_CACHE:-/var/cache/gadgetbook}
BIN=$CACHE/kubernetes-$K8S_VERSION/bin
STATE=${GADGETBOOK_CLUSTER_DIR:-/var/lib/gadgetbook-cluster}
PIDS=$STATE/pids
LOGS=$STATE/logs
PKI=$STATE/pki
# The first node's containerd (GADGETBOOK_CONTAINERD_DIR points the image scripts at another node's).
CTRD=${GADGETBOOK_CONTAINERD_DIR:-$STATE/containerd}
CTRD_SOCK=$CTRD/containerd.sock
CTRD_NAME=containerd
CNI=$STATE/cni
KUBECONFIG_ADMIN=$STATE/kubeconfig

# Loopback ports, chosen away from the defaults so a packaged etcd or a real
# control plane on the same host does not collide with the test cluster. Every one
# can be moved, so that two checkouts run a cluster each (see README.md).
ETCD_PORT=${GADGETBOOK_ETCD_PORT:-23790}
ETCD_PEER_PORT=${GADGETBOOK_ETCD_PEER_PORT:-23800}
API_PORT=${GADGETBOOK_API_PORT:-16443}
KCM_PORT=${GADGETBOOK_KCM_PORT:-10257}
SCHED_PORT=${GADGETBOOK_SCHED_PORT:-10259}
KUBELET_PORT=${GADGETBOOK_KUBELET_PORT:-10250}
KUBELET_HEALTHZ_PORT=${GADGETBOOK_KUBELET_HEALTHZ_PORT:-10248}

BRIDGE=${GADGETBOOK_BRIDGE:-gbk8s0}
NODE_NAME=localhost
# The kubelet's pods live under $CGROUP_ROOT/kubepods in every cgroup hierarchy ("" = the root).
CGROUP_ROOT=${GADGETBOOK_CGROUP_ROOT:-}
KUBELET_NAME=kubelet
KUBELET_DIR=$STATE/kubelet
KUBELET_ADDRESS=127.0.0.1
KUBELET_KUBECONFIG=$STATE/kubelet.kubeconfig
PAUSE_IMAGE=registry.k8s.io/pause:3.6
TESTAPP_IMAGE=localhost/gadgetbook-testapp:1
BASE_IMAGE=localhost/gadgetbook-base:bookworm-slim

# Dirs outside $STATE that are hard-coded: the kubelet's pod logs and device-plugin dir,
# and /run/containerd/s where containerd 1.6 puts its shims' sockets. up.sh records
# which of them it created so down.sh removes only those.
GLOBAL_PATHS=(/var/log/pods /var/log/containers /var/lib/kubelet /run/containerd)
# Sysctls the kubelet sets at start-up; saved before and restored by down.sh.
KUBELET_SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops)
# What several clusters on one host share (the global paths above, the sysctls, subnets in use):
# the first up.sh records the host as it was, the last down.sh puts it back.
SHARED=/run/gadgetbook-clusters
SHARED_ID=$(printf '%s' "$STATE" | sha1sum | cut -c1-16)

log() { printf '[%s] %s\n' "${0##*/}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (containerd, kubelet, mounts, sysctls)"
}

ctr_() { ctr --address "$CTRD_SOCK" --namespace k8s.io "$@"; }

# cmdline_of PID: the command line with spaces for NULs (empty if gone or a zombie).
cmdline_of() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" || true; }

# pid_of NAME: the recorded pid, if that process is alive and is really ours.
# Our daemons all carry $STATE in their command line, which guards against a
# recycled pid belonging to someone else (and a zombie has an empty cmdline).
pid_of() {
  local f=$PIDS/$1.pid pid
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ $(cmdline_of "$pid") == *"$STATE"* ]] || return 1
  echo "$pid"
}

alive() { pid_of "$1" >/dev/null; }

admin_token() { sed -n 's/^\([^,]*\),admin,.*/\1/p' "$PKI/tokens.csv"; }

# api METHOD PATH [curl args...]: call the API server as admin (no kubectl needed).
api() {
  local method=$1 path=$2
  shift 2
  # A non-curl user agent: the API server pretty-prints JSON for curl, and callers grep
  # the compact form.
  curl -sS --fail --max-time 10 -A gadgetbook-cluster --cacert "$PKI/ca.crt" \
    -H "Authorization: Bearer $(admin_token)" -X "$method" \
    "https://127.0.0.1:$API_PORT$path" "$@"
}
