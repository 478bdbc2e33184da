#!/usr/bin/env bash
# import-image.sh IMAGE...: copy podman images into the test cluster's containerd (k8s.io namespace) so pods can use them without a registry.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

[[ $# -ge 1 ]] || { echo "usage: $0 IMAGE..." >&2; exit 2; }
need_root
export CONTAINERS_CONF=$HERE/containers.conf
[[ -S $CTRD_SOCK ]] || die "containerd socket $CTRD_SOCK missing: run up.sh first"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for image in "$@"; do
  podman image exists "$image" || die "podman has no image $image"
  # The OCI archive's ref.name is the full image name; ctr keeps it as the image name,
  # which is what a pod spec with imagePullPolicy: Never/IfNotPresent finds.
  podman save -q --format oci-archive -o "$tmp/image.tar" "$image"
  ctr_ images import "$tmp/image.tar" >/dev/null
  rm -f "$tmp/image.tar"
  log "imported $image"
done
