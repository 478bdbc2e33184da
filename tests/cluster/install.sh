#!/usr/bin/env bash
# install.sh: install the Debian packages the test cluster needs and build Kubernetes 1.20.2 from Debian's source package (cached).
set -euo pipefail

# Everything the scripts under tests/cluster/ use. Checked one by one so a second run
# on a prepared machine needs neither the network nor apt's lock.
PACKAGES=(
  etcd-server containerd runc containernetworking-plugins iptables iproute2 conntrack
  golang-go make rsync dpkg-dev gcc libc6-dev golang-github-modern-go-reflect2-dev
  podman debootstrap busybox-static openssl ca-certificates curl socat
)

K8S_VERSION=1.20.2
# The five binaries the cluster runs; kubectl only for debugging by hand (nothing depends on it).
K8S_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)
CACHE=${GADGETBOOK_CACHE:-/var/cache/gadgetbook}
BIN_DIR=$CACHE/kubernetes-$K8S_VERSION/bin
# Bumped whenever the way the binaries are built changes, so an older cache is rebuilt.
# 2: vendored reflect2 1.0.1 replaced by Debian's 1.0.2 (1.0.1 crashes under Go >= 1.18).
RECIPE=2

log() { printf '[install] %s\n' "$*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
  log "must run as root (installs packages, later runs containerd and the kubelet)"
  exit 1
fi

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  if ((${#missing[@]} == 0)); then
    log "all Debian packages present"
    return
  fi
  log "installing: ${missing[*]}"
  apt-get update -qq
  # --no-install-recommends keeps containerd/podman from pulling in docker-ish extras.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Debian ships etcd-server and containerd with systemd units; with no systemd here they
# do not start, but on a systemd host a packaged etcd/containerd would be running on the
# default ports/sockets. The cluster uses its own ports and sockets, so both can coexist.

have_binaries() {
  local c
  for c in "${K8S_CMDS[@]}"; do
    [[ -x $BIN_DIR/$c ]] || return 1
  done
  [[ $(cat "$CACHE/kubernetes-$K8S_VERSION/RECIPE" 2>/dev/null) == "$RECIPE" ]]
}

build_kubernetes() {
  if have_binaries; then
    log "kubernetes $K8S_VERSION binaries cached in $BIN_DIR"
    return
  fi
  mkdir -p "$CACHE"
  # Temp dir on the same filesystem as the cache so the final mv is an atomic rename:
  # an interrupted build leaves only a .build.* dir, never a half-filled bin/.
  local work
  work=$(mktemp -d "$CACHE/.build.XXXXXX")
  # shellcheck disable=SC2064  # expand $work now: it is local to this function
  trap "rm -rf '$work'" EXIT

  # A private apt configuration with only a deb-src line, so the machine's own
  # sources.list and package lists stay untouched.
  mkdir -p "$work/apt/lists/partial" "$work/apt/parts" "$work/src"
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" \
    >"$work/apt/sources.list"
  local aptopts=(
    -o "Dir::Etc::SourceList=$work/apt/sources.list"
    -o "Dir::Etc::SourceParts=$work/apt/parts"
    -o "Dir::State::Lists=$work/apt/lists"
    -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
    # The temp dir is private to root; fetching as _apt would only print warnings.
    -o "APT::Sandbox::User=root"
  )
  log "fetching the kubernetes source package"
  apt-get "${aptopts[@]}" update -qq
  (cd "$work/src" && apt-get "${aptopts[@]}" -qq source --download-only kubernetes)
  local dsc
  dsc=$(ls "$work"/src/kubernetes_*.dsc)
  # bookworm's version is 1.20.5+really1.20.2-...: refuse anything that is not 1.20.2 code.
  if ! grep -Eq "^Version: .*(really)?$K8S_VERSION-" "$dsc"; then
    log "unexpected source version in $dsc:"; grep '^Version' "$dsc" >&2
    exit 1
  fi
  dpkg-source --no-check -x "$dsc" "$work/src/kubernetes" >/dev/null

  # Kubernetes 1.20 vendors github.com/modern-go/reflect2 v1.0.1, which reaches into
  # Go's map internals and makes the API server and kubelet die with "fatal error:
  # fault" in mapiternext when built with Go >= 1.18 (bookworm has 1.19). v1.0.2 is
  # the upstream fix with the same API; Debian packages it, so swap it in.
  local reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
  rm -rf "$work/src/kubernetes/vendor/github.com/modern-go/reflect2"
  mkdir -p "$work/src/kubernetes/vendor/github.com/modern-go/reflect2"
  cp "$reflect2"/*.go "$work/src/kubernetes/vendor/github.com/modern-go/reflect2/"

  # `make WHAT=` runs the code generators (openapi-gen) a plain `go build` would miss.
  # The tree is fully vendored: GOPROXY=off proves nothing is fetched. The GOCACHE lives
  # in the cache dir so a rebuild after a wiped bin/ is quicker.
  local what=() c
  for c in "${K8S_CMDS[@]}"; do what+=("cmd/$c"); done
  log "building ${what[*]} (about 8 minutes on 2 cores)"
  local start=$SECONDS
  mkdir -p "$CACHE/gocache" "$work/home"
  (
    cd "$work/src/kubernetes"
    export GOCACHE=$CACHE/gocache GOPROXY=off GOFLAGS=-mod=vendor CGO_ENABLED=0 HOME=$work/home
    # No .git in a source package: give the version explicitly so `kubelet --version`
    # and the node's kubeletVersion say v1.20.2 rather than v0.0.0-master.
    export KUBE_GIT_VERSION=v$K8S_VERSION KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20 KUBE_GIT_TREE_STATE=clean
    make WHAT="${what[*]}"
  )
  log "build took $((SECONDS - start)) s"

  mkdir -p "$work/out/bin"
  echo "$RECIPE" >"$work/out/RECIPE"
  for c in "${K8S_CMDS[@]}"; do
    install -m 0755 "$work/src/kubernetes/_output/bin/$c" "$work/out/bin/$c"
  done
  rm -rf "$CACHE/kubernetes-$K8S_VERSION"
  mv "$work/out" "$CACHE/kubernetes-$K8S_VERSION"
  log "binaries in $BIN_DIR"
}

install_packages
build_kubernetes
