# components.sh: starting one node's containerd and kubelet, and the helpers to start and wait for a
# daemon; sourced by up.sh (the first node) and node.sh (more nodes). Set before calling: CTRD, CTRD_SOCK,
# CTRD_NAME, CNI, BRIDGE, POD_SUBNET, KUBELET_DIR, KUBELET_NAME, KUBELET_ADDRESS, KUBELET_PORT,
# KUBELET_HEALTHZ_PORT, KUBELET_KUBECONFIG, NODE_NAME, CGROUP_ROOT (common.sh sets the first node's).
# shellcheck shell=bash
TIMEOUT=${GADGETBOOK_UP_TIMEOUT:-180}

# ---- show the tail of a component's log and fail -------------------------------------
fail_with_log() {
  local name=$1
  shift
  log "ERROR: $*"
  if [[ -f $LOGS/$name.log ]]; then
    log "last lines of $LOGS/$name.log:"
    tail -n 25 "$LOGS/$name.log" >&2
  fi
  exit 1
}

# wait_for NAME SECONDS CMD...: poll CMD once a second; the component must stay alive.
wait_for() {
  local name=$1 limit=$2 start=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    alive "$name" || fail_with_log "$name" "$name exited during start-up"
    ((SECONDS - start < limit)) || fail_with_log "$name" "$name not ready after ${limit}s"
    sleep 0.5
  done
}

# start NAME CMD...: run CMD in its own session (so a Ctrl-C in the calling test run does
# not reach it) with output to $LOGS/NAME.log, and record its pid.
start() {
  local name=$1
  shift
  if alive "$name"; then
    log "$name already running (pid $(pid_of "$name"))"
    return
  fi
  log "starting $name"
  # Without job control a background child is not a group leader, so setsid execs
  # in place and $! is the daemon's own pid.
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  local pid=$! i
  echo "$pid" >"$PIDS/$name.pid"
  # Until the fork has exec'd, the child's command line is this script's and alive()
  # would call it dead: wait for the exec (or the exit).
  for ((i = 0; i < 100; i++)); do
    alive "$name" && return
    [[ -d /proc/$pid && $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || break
    sleep 0.05
  done
  alive "$name" || fail_with_log "$name" "$name exited right after start"
}

start_containerd() {
  mkdir -p "$CTRD" "$CNI/net.d" "$CNI/ipam"
  cat >"$CNI/net.d/10-gadgetbook.conflist" <<CNI
{
  "cniVersion": "0.4.0",
  "name": "gadgetbook",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_SUBNET"}]],
              "routes": [{"dst": "$SERVICE_SUBNET"}], "dataDir": "$CNI/ipam"}},
    {"type": "loopback"}
  ]
}
CNI
  # The one route out of a pod: to the Services' range (the API server's address, up.sh), nothing else.
  # Everything containerd writes stays under $CTRD: root, state, socket, the "opt"
  # plugin dir (default /opt/containerd) and the pods' network-namespace mounts.
  cat >"$CTRD/config.toml" <<TOML
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
[grpc]
  address = "$CTRD_SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Without it runc is asked for oom_score_adj values this host does not allow.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CNI/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # No systemd here: cgroupfs, matching the kubelet's cgroupDriver.
        SystemdCgroup = false
        # runc's own state (default /run/containerd/runc) also under $CTRD.
        Root = "$CTRD/runc"
TOML
  start "$CTRD_NAME" containerd --config "$CTRD/config.toml"
  wait_for "$CTRD_NAME" 30 ctr --address "$CTRD_SOCK" version
}

start_kubelet() {
  local k=$KUBELET_DIR
  mkdir -p "$k/root" "$k/pki" "$k/volume-plugins"
  cat >"$k/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failSwapOn: false
# No kube-proxy and no iptables side effects on the host.
makeIPTablesUtilChains: false
protectKernelDefaults: false
# The API server reaches the kubelet on loopback only; no client certificates needed.
address: $KUBELET_ADDRESS
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: $KUBELET_ADDRESS
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
clusterDomain: cluster.local
# A test host's disk is often fuller than the default thresholds allow.
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"}
# Images come from local imports only: never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
# Post status changes every 2 s (default 10 s): Ready is seen ~8 s sooner. Unchanged
# status is still reported only once a minute, so this adds little API traffic.
nodeStatusUpdateFrequency: 2s
nodeStatusReportFrequency: 1m
YAML
  # The kubelet rewrites these sysctls at start; keep the host's values for the last down.sh.
  # Saved once: after a crash, or with another cluster up, the current values may be a kubelet's.
  if [[ ! -s $SHARED/sysctl.saved ]]; then
    local s
    for s in "${KUBELET_SYSCTLS[@]}"; do
      echo "$s=$(sysctl -n "$s")"
    done >"$SHARED/sysctl.saved.tmp"
    mv "$SHARED/sysctl.saved.tmp" "$SHARED/sysctl.saved"
  fi
  [[ -s $STATE/sysctl.saved ]] || cp "$SHARED/sysctl.saved" "$STATE/sysctl.saved"
  if [[ -n $CGROUP_ROOT ]]; then
    local h
    for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
      [[ -e $h/cgroup.procs ]] && mkdir -p "$h${CGROUP_ROOT#/}"
    done
  fi
  start "$KUBELET_NAME" "$BIN/kubelet" --config="$k/config.yaml" \
    --kubeconfig="$KUBELET_KUBECONFIG" \
    --container-runtime=remote --container-runtime-endpoint="unix://$CTRD_SOCK" \
    --pod-infra-container-image="$PAUSE_IMAGE" \
    --root-dir="$k/root" --cert-dir="$k/pki" --volume-plugin-dir="$k/volume-plugins" \
    --hostname-override="$NODE_NAME" ${CGROUP_ROOT:+--cgroup-root="$CGROUP_ROOT"} --v=1
}

node_json() { api GET "/api/v1/nodes/$NODE_NAME"; }
node_ready() { node_json | grep -q '"type":"Ready","status":"True"'; }

wait_node_ready() {
  local start=$SECONDS last=-10
  until node_ready 2>/dev/null; do
    alive "$KUBELET_NAME" || fail_with_log "$KUBELET_NAME" "kubelet exited before the node became Ready"
    if ((SECONDS - start >= TIMEOUT)); then
      log "node status: $(node_json 2>&1 | grep -o '"conditions":\[[^]]*\]' || echo 'node not registered')"
      fail_with_log "$KUBELET_NAME" "node $NODE_NAME not Ready after ${TIMEOUT}s"
    fi
    if ((SECONDS - last >= 5)); then
      log "waiting for node $NODE_NAME to be Ready ($((SECONDS - start))s)"
      last=$SECONDS
    fi
    sleep 1
  done
  # The kubelet registers the node with node.kubernetes.io/not-ready:NoSchedule and the
  # (disabled) node-lifecycle controller would remove it once Ready: do it here.
  # NodeSpec.taints has no merge key, so a JSON patch that tests the key at an index
  # and removes that entry, tried at each index: other taints stay as they are.
  local i
  for i in 0 1 2 3 4 5 6 7; do
    node_json | grep -q 'node.kubernetes.io/not-ready' || break
    api PATCH "/api/v1/nodes/$NODE_NAME" -H 'Content-Type: application/json-patch+json' \
      --data "[{\"op\":\"test\",\"path\":\"/spec/taints/$i/key\",\"value\":\"node.kubernetes.io/not-ready\"},
               {\"op\":\"remove\",\"path\":\"/spec/taints/$i\"}]" >/dev/null 2>&1 || true
  done
  if node_json | grep -q 'node.kubernetes.io/not-ready'; then
    die "could not remove the node.kubernetes.io/not-ready taint"
  fi
}
