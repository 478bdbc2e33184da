#!/usr/bin/env bash
# images.sh: build the cluster's images without any registry (pause, busybox test app, Debian base) and import them into containerd.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

usage() {
  cat >&2 <<USAGE
usage: $0 cluster   build (if not cached) and import the pause and test-app images into the cluster's containerd
       $0 archives  only build the OCI archives into $CACHE/images
       $0 base      build (if not cached) the podman image $BASE_IMAGE
USAGE
  exit 2
}

# podman only works here with runc + cgroupfs (hybrid cgroups, no systemd).
export CONTAINERS_CONF=$HERE/containers.conf
IMAGES=$CACHE/images

# Cache key for an image: hash of everything its content depends on.
key_of() { cat "$@" | sha256sum | cut -c1-16; }

# podman_archive NAME ROOTFS_DIR OUT [--change ...]: import a root filesystem as NAME
# into podman and save it as an OCI archive whose ref.name is NAME, which
# `ctr image import` turns into the image name the kubelet asks for.
podman_archive() {
  local name=$1 root=$2 out=$3
  shift 3
  tar -C "$root" --numeric-owner -c . | podman import -q "$@" - "$name" >/dev/null
  # Write next to the target, then rename: a killed run never leaves a truncated archive.
  rm -f "$out.tmp"
  podman save -q --format oci-archive -o "$out.tmp" "$name"
  mv "$out.tmp" "$out"
  # Only the archive is needed; do not leave a copy (untagged on rebuild) in podman.
  podman rmi -f "$name" >/dev/null
}

pause_archive() {
  local key out
  key=$(key_of "$HERE/pause.c" "$HERE/images.sh")
  out=$IMAGES/pause-$key.oci.tar
  if [[ ! -s $out ]]; then
    log "building $PAUSE_IMAGE"
    # Archives of other inputs stay: another checkout (other scripts) may be importing them now.
    local tmp
    tmp=$(mktemp -d)
    # Static so the image needs nothing but this one file.
    gcc -static -O2 -s -o "$tmp/pause" "$HERE/pause.c"
    mkdir -p "$tmp/root" && mv "$tmp/pause" "$tmp/root/pause"
    podman_archive "$PAUSE_IMAGE" "$tmp/root" "$out" --change 'ENTRYPOINT ["/pause"]'
    rm -rf "$tmp"
  fi
  echo "$out"
}

testapp_archive() {
  local key out bbver
  bbver=$(dpkg-query -W -f='${Version}' busybox-static)
  key=$(printf '%s' "$bbver" | key_of - "$HERE/images.sh")
  out=$IMAGES/testapp-$key.oci.tar
  if [[ ! -s $out ]]; then
    log "building $TESTAPP_IMAGE from busybox-static $bbver"
    # Archives of other inputs stay: another checkout (other scripts) may be importing them now.
    local tmp root applet
    tmp=$(mktemp -d)
    root=$tmp/root
    mkdir -p "$root"/{bin,etc,tmp,root,proc,sys,dev,var/tmp}
    chmod 1777 "$root/tmp" "$root/var/tmp"
    cp /bin/busybox "$root/bin/busybox"
    # One symlink per applet: sh, nc, cat, sleep, ls, wget, ... all from one static binary.
    for applet in $(/bin/busybox --list); do
      [[ $applet == busybox ]] || ln -sf busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    podman_archive "$TESTAPP_IMAGE" "$root" "$out" \
      --change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]'
    rm -rf "$tmp"
  fi
  echo "$out"
}

# import_archive FILE NAME: import into the cluster's containerd unless already there. Through a hard
# link of our own: scripts of other checkouts may delete archives of inputs they do not know.
import_archive() {
  local file=$1 name=$2 link
  [[ -S $CTRD_SOCK ]] || die "containerd socket $CTRD_SOCK missing: run up.sh first"
  if ctr_ images ls -q | grep -qxF "$name"; then
    return
  fi
  log "importing $name"
  link=$(mktemp -u "$file.import.XXXXXX")
  ln "$file" "$link" || return 1
  ctr_ images import "$link" >/dev/null || true
  rm -f "$link"
  ctr_ images ls -q | grep -qxF "$name"
}

# The Debian base for the node-pod image (images/Containerfile, FROM ${BASE}).
# debootstrap takes ~40 s, so the root filesystem tarball is cached, keyed by the
# include list; the podman image carries the key as a label to detect staleness.
BASE_INCLUDE=python3,python3-venv,libbpf1,libcap2,libseccomp2,ca-certificates
BASE_SUITE=bookworm
BASE_STRIP="/usr/share/doc /usr/share/man /usr/share/locale /usr/share/info"
base_image() {
  local key tarball have=
  key=$(printf '%s %s minbase %s' "$BASE_SUITE" "$BASE_INCLUDE" "$BASE_STRIP" | key_of -)
  tarball=$IMAGES/base-$BASE_SUITE-$key.tar
  if podman image exists "$BASE_IMAGE"; then
    have=$(podman image inspect --format '{{index .Config.Labels "gadgetbook.base-key"}}' "$BASE_IMAGE")
  fi
  if [[ $have == "$key" ]]; then
    log "$BASE_IMAGE is current"
    return
  fi
  if [[ ! -s $tarball ]]; then
    log "debootstrap $BASE_SUITE with $BASE_INCLUDE (about 40 s)"
    local tmp
    tmp=$(mktemp -d "$IMAGES/.base.XXXXXX")
    debootstrap --variant=minbase --include="$BASE_INCLUDE" "$BASE_SUITE" "$tmp/root" \
      http://deb.debian.org/debian >"$tmp/debootstrap.log" 2>&1 ||
      { tail -20 "$tmp/debootstrap.log" >&2; rm -rf "$tmp"; die "debootstrap failed"; }
    # Drop the downloaded .debs and apt lists, and what nothing in a container reads: they only make
    # the image bigger (documentation, manual pages and translations are ~55 MB of a 177 MB base).
    rm -rf "$tmp/root/var/cache/apt/archives/"*.deb "$tmp/root/var/lib/apt/lists/"*
    local d
    for d in $BASE_STRIP; do rm -rf "${tmp:?}/root$d"; mkdir -p "$tmp/root$d"; done
    tar -C "$tmp/root" --numeric-owner -c . >"$tmp/root.tar"
    mv "$tmp/root.tar" "$tarball"
    rm -rf "$tmp"
  fi
  log "importing $BASE_IMAGE"
  podman import -q --change "LABEL gadgetbook.base-key=$key" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' "$tarball" "$BASE_IMAGE" >/dev/null
}

main() {
  [[ $# -eq 1 ]] || usage
  need_root
  mkdir -p "$IMAGES"
  local pause testapp
  case $1 in
  archives)
    pause_archive
    testapp_archive
    ;;
  cluster)
    local attempt
    for attempt in 1 2 3; do
      pause=$(pause_archive)
      testapp=$(testapp_archive)
      if import_archive "$pause" "$PAUSE_IMAGE" && import_archive "$testapp" "$TESTAPP_IMAGE"; then
        return
      fi
      log "import failed (attempt $attempt); building the archives again"
    done
    die "could not import $PAUSE_IMAGE and $TESTAPP_IMAGE into $CTRD_SOCK"
    ;;
  base) base_image ;;
  *) usage ;;
  esac
}

main "$@"
