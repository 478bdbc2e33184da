#!/usr/bin/env bash
# Keeps Debian's kernel headers (linux-headers-<arch> and what it needs to compile against) as .deb files in
# the cache, for the %%bcc tests: they unpack them into a temporary directory and link it for the running
# kernel only while they run. Nothing is installed. With the files present it does nothing.
set -euo pipefail
cache=${GADGETBOOK_CACHE:-/var/cache/gadgetbook}/kernel-headers
arch=$(dpkg --print-architecture)
if compgen -G "$cache/linux-headers-*-common_*.deb" >/dev/null && compgen -G "$cache/linux-kbuild-*.deb" >/dev/null; then
    exit 0
fi
meta=linux-headers-$arch
flavour=$(apt-cache depends "$meta" | awk '/Depends:/ {print $2; exit}')
if [[ -z "$flavour" ]]; then
    apt-get update -qq
    flavour=$(apt-cache depends "$meta" | awk '/Depends:/ {print $2; exit}')
fi
# The flavour's own package, its common headers and kbuild (the compiler package is not needed by bcc).
wanted=("$flavour" $(apt-cache depends "$flavour" | awk '/Depends:/ && $2 !~ /compiler/ {print $2}'))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -q "${wanted[@]}" 2>/dev/null)
mkdir -p "$cache"
rm -f "$cache"/*.deb
mv "$tmp"/*.deb "$cache/"
echo "kernel headers: $(ls "$cache" | tr '\n' ' ')"
