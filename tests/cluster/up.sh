#!/usr/bin/env bash
# up.sh: start a real single-node Kubernetes 1.20 cluster on this host (containerd, etcd, control plane, kubelet); idempotent.
# Usage: up.sh          start what is not running, wait for the node to be Ready
#        up.sh --check  exit 0 if the cluster is up and the API answers, 1 otherwise
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

COMPONENTS=(containerd etcd kube-apiserver service-proxy kube-controller-manager kube-scheduler kubelet)
T0=$SECONDS

if [[ ${1-} == --check ]]; then
  for c in "${COMPONENTS[@]}"; do alive "$c" || exit 1; done
  [[ $(api GET /readyz 2>/dev/null) == ok ]] || exit 1
  exit 0
fi
[[ $# -eq 0 ]] || die "usage: $0 [--check]"
need_root
for c in kube-apiserver kube-controller-manager kube-scheduler kubelet; do
  [[ -x $BIN/$c ]] || die "$BIN/$c missing: run $HERE/install.sh first"
done

mkdir -p "$PIDS" "$LOGS" "$PKI"
# shellcheck source-path=SCRIPTDIR source=components.sh
source "$HERE/components.sh"


port_in_use() { ss -Hltn "sport = :$1" | grep -q .; }

# ---- one-time setup: subnet, certificates, tokens, kubeconfigs --------------------------

ip2int() {
  local a b c d
  IFS=. read -r a b c d <<<"$1"
  echo $(((a << 24) | (b << 16) | (c << 8) | d))
}

# overlaps A/LEN B/LEN: do the two prefixes share any address?
overlaps() {
  local n1=${1%/*} l1=${1#*/} n2=${2%/*} l2=${2#*/} l mask
  l=$((l1 < l2 ? l1 : l2))
  mask=$(((0xffffffff << (32 - l)) & 0xffffffff))
  (($(($(ip2int "$n1") & mask)) == $(($(ip2int "$n2") & mask))))
}

# Pick 10.N.0.0/16 that no route or address on this host touches: pods get
# 10.N.64.0/24 on our bridge, services 10.N.128.0/24 (no kube-proxy: only for the API).
pick_subnet() {
  local used=() p n cand ok
  while read -r p; do
    [[ $p == */* ]] || p=$p/32
    used+=("$p")
  done < <({
    ip -4 route show table all | awk '{ if ($1 ~ /^(local|broadcast|unreachable|prohibit|blackhole|throw)$/) print $2; else print $1 }'
    ip -4 -o addr show | awk '{print $4}'
  } | grep -E '^[0-9.]+(/[0-9]+)?$' | sort -u)
  local taken=""
  [[ -d $SHARED/users ]] && taken=$(cat "$SHARED"/users/* 2>/dev/null | awk '{print $2}')
  for n in $(seq 213 250); do
    cand=10.$n.0.0/16
    ok=1
    if grep -qxF "10.$n" <<<"$taken"; then continue; fi
    for p in "${used[@]}"; do
      if overlaps "$cand" "$p"; then ok=0 && break; fi
    done
    if ((ok)); then
      echo "$n"
      return
    fi
  done
  die "no free 10.N.0.0/16 for the cluster among 10.213-250"
}

setup_once() {
  if [[ ! -s $STATE/cluster.env ]]; then
    local n
    n=$(pick_subnet)
    cat >"$STATE/cluster.env.tmp" <<ENV
POD_SUBNET=10.$n.64.0/24
SERVICE_SUBNET=10.$n.128.0/24
SERVICE_IP=10.$n.128.1
ENV
    mv "$STATE/cluster.env.tmp" "$STATE/cluster.env"
  fi
  # shellcheck source=/dev/null
  source "$STATE/cluster.env"

  # Paths outside $STATE that the kubelet and containerd create: remember which were absent,
  # once for all the clusters up on this host, so the last down.sh removes only those.
  mkdir -p "$SHARED/users"
  if [[ ! -e $SHARED/created-paths ]]; then
    local p
    for p in "${GLOBAL_PATHS[@]}"; do
      [[ -e $p ]] || echo "$p"
    done >"$SHARED/created-paths"
  fi
  echo "$STATE ${POD_SUBNET%.*.*}" >"$SHARED/users/$SHARED_ID"
  # Also where scripts of an older checkout look for it (they may stop this cluster).
  [[ -e $STATE/created-paths ]] || cp "$SHARED/created-paths" "$STATE/created-paths"

  if [[ ! -s $PKI/apiserver.crt ]]; then
    log "generating CA, API server certificate and service-account keys"
    local tmp
    tmp=$(mktemp -d "$PKI/.gen.XXXXXX")
    # Explicit CA extensions: strict verifiers (newer Python/OpenSSL) want keyUsage and SKI.
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -keyout "$tmp/ca.key" -out "$tmp/ca.crt" -subj /CN=gadgetbook-cluster-ca \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
      -addext subjectKeyIdentifier=hash 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$tmp/apiserver.key" \
      -out "$tmp/apiserver.csr" -subj /CN=kube-apiserver 2>/dev/null
    cat >"$tmp/ext.cnf" <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
subjectAltName=IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EXT
    openssl x509 -req -sha256 -days 3650 -in "$tmp/apiserver.csr" -CA "$tmp/ca.crt" \
      -CAkey "$tmp/ca.key" -CAcreateserial -extfile "$tmp/ext.cnf" -out "$tmp/apiserver.crt" 2>/dev/null
    openssl genrsa -out "$tmp/sa.key" 2048 2>/dev/null
    openssl rsa -in "$tmp/sa.key" -pubout -out "$tmp/sa.pub" 2>/dev/null
    # One random token per identity. The kubelet is system:node:localhost so the Node
    # authorizer applies; controller-manager and scheduler use their bootstrap roles.
    tok() { openssl rand -hex 24; }
    {
      echo "$(tok),admin,admin,system:masters"
      echo "$(tok),system:node:$NODE_NAME,kubelet,system:nodes"
      echo "$(tok),system:kube-controller-manager,kcm"
      echo "$(tok),system:kube-scheduler,scheduler"
      echo "$(tok),gadgetbook-viewer,viewer"
    } >"$tmp/tokens.csv"
    chmod 600 "$tmp"/*.key "$tmp/tokens.csv"
    mv "$tmp"/{ca.key,ca.crt,apiserver.key,apiserver.crt,sa.key,sa.pub,tokens.csv} "$PKI/"
    rm -rf "$tmp"
  fi

  local user file
  for user in admin system:node:$NODE_NAME system:kube-controller-manager system:kube-scheduler gadgetbook-viewer; do
    case $user in
    admin) file=$KUBECONFIG_ADMIN ;;
    system:node:*) file=$STATE/kubelet.kubeconfig ;;
    system:kube-controller-manager) file=$STATE/controller-manager.kubeconfig ;;
    system:kube-scheduler) file=$STATE/scheduler.kubeconfig ;;
    gadgetbook-viewer) file=$STATE/kubeconfig-viewer ;;
    esac
    [[ -s $file ]] || write_kubeconfig "$file" "$user"
  done
}

# write_kubeconfig FILE USER: token auth, CA embedded so the file can be copied anywhere.
write_kubeconfig() {
  local file=$1 user=$2 token ca
  token=$(awk -F, -v u="$user" '$2 == u {print $1}' "$PKI/tokens.csv")
  ca=$(base64 -w0 <"$PKI/ca.crt")
  umask 077
  cat >"$file.tmp" <<KC
apiVersion: v1
kind: Config
clusters:
- name: gadgetbook
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $ca
users:
- name: $user
  user:
    token: $token
contexts:
- name: gadgetbook
  context: {cluster: gadgetbook, user: $user, namespace: default}
current-context: gadgetbook
KC
  mv "$file.tmp" "$file"
  umask 022
}

# ---- components -------------------------------------------------------------------------


start_etcd() {
  start etcd etcd --name gadgetbook --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "gadgetbook=http://127.0.0.1:$ETCD_PEER_PORT"
  wait_for etcd 30 curl -sf --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"
}

start_apiserver() {
  start kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
    --secure-port="$API_PORT" --insecure-port=0 \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range="$SERVICE_SUBNET" \
    --allow-privileged=true \
    --kubelet-preferred-address-types=Hostname,InternalIP \
    --cert-dir="$STATE/apiserver-certs"
  wait_for kube-apiserver 60 api_ready
}

api_ready() { [[ $(api GET /readyz) == ok ]]; }

# No kube-proxy here: pods reach the API server at the `kubernetes` Service's address, as they
# would in any cluster (in-cluster config), through socat on that address (added to lo) forwarding
# to the API server on loopback. Node pods check callers' rights this way.
start_service_proxy() {
  ip addr show dev lo | grep -q " $SERVICE_IP/32 " || ip addr add "$SERVICE_IP/32" dev lo
  # -L: a lock file under the state dir, which also puts $STATE in socat's command line (pid_of).
  alive service-proxy || rm -f "$PIDS/service-proxy.lock"
  start service-proxy socat -L "$PIDS/service-proxy.lock" "TCP-LISTEN:443,bind=$SERVICE_IP,fork,reuseaddr" \
    "TCP:127.0.0.1:$API_PORT"
}

start_controllers() {
  mkdir -p "$STATE/flexvolume"
  # nodeipam: the bridge CNI allocates addresses itself. nodelifecycle: with one node it
  # would only add NoExecute taints when the kubelet is slow; we drop the not-ready taint
  # ourselves below. --flex-volume-plugin-dir: default is under /usr/libexec.
  start kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$STATE/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --port=0 --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --flex-volume-plugin-dir="$STATE/flexvolume" \
    --controllers='*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle' \
    --cert-dir="$STATE/controller-manager-certs"
  start kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig="$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig="$STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig="$STATE/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --port=0 --leader-elect=false \
    --cert-dir="$STATE/scheduler-certs"
}



# Pods are rejected until their namespace's "default" service account and its token
# secret exist, which the controller-manager creates: waiting for them proves the
# controllers run.
default_sa_has_token() {
  api GET /api/v1/namespaces/default/serviceaccounts/default | grep -q '"secrets":\[{'
}
wait_default_sa() {
  wait_for kube-controller-manager 60 default_sa_has_token
}

# $STATE/kubeconfig-viewer: read-only access (the built-in "view" role), for tests
# that must not be able to change the cluster.
bind_viewer() {
  local out
  out=$(api POST /apis/rbac.authorization.k8s.io/v1/clusterrolebindings \
    -H 'Content-Type: application/json' -o /dev/null -w '%{http_code}' --data '{
      "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
      "metadata": {"name": "gadgetbook-viewer"},
      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
      "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "gadgetbook-viewer"}]
    }' 2>/dev/null) || true
  # 201 created, 409 already there (second run).
  [[ $out == 201 || $out == 409 ]] || die "could not create the gadgetbook-viewer binding (HTTP $out)"
}

main() {
  setup_once
  if ! alive kube-apiserver && port_in_use "$API_PORT"; then
    die "port $API_PORT is taken by another process (set GADGETBOOK_API_PORT)"
  fi
  start_containerd
  "$HERE/images.sh" cluster
  start_etcd
  start_apiserver
  start_service_proxy
  start_controllers
  start_kubelet
  wait_node_ready
  wait_default_sa
  bind_viewer
  alive kube-scheduler || fail_with_log kube-scheduler "kube-scheduler exited"
  log "cluster up in $((SECONDS - T0))s; node $NODE_NAME Ready; pods on $POD_SUBNET"
  log "kubeconfig: $KUBECONFIG_ADMIN"
}

main
