#!/usr/bin/env bash
# Builds Switchyard's managed (v2) Docker plugin as a directory that
# `docker plugin create` takes: OUT/config.json (packaging/plugin/config.json)
# and OUT/rootfs (the binary, nft, ip and tc, and the shared libraries they
# link; nothing else).
# No registry, no `docker build`, nothing to install.
#
#   scripts/build-plugin.sh [--bin PATH] [OUT]     OUT defaults to target/plugin
#   docker plugin create switchyard target/plugin
#   docker plugin enable switchyard
#
# --bin defaults to target/release/switchyard (built with
# `cargo build --release -p switchyard` when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. "$ROOT/scripts/release-bin.sh"
release_args build-plugin.sh "$ROOT/target/plugin" 2,13p "$@"
command -v ldd >/dev/null || { echo "build-plugin.sh: needs ldd (Debian package libc-bin)" >&2; exit 1; }

rm -rf "$OUT"
R=$OUT/rootfs
mkdir -p "$R/usr/bin" "$R/run/docker/plugins" "$R/var/lib/switchyard" "$R/etc" "$R/tmp" \
    "$R/proc" "$R/sys" "$R/dev"
chmod 1777 "$R/tmp"
install -m 0755 "$BIN" "$R/usr/bin/switchyard"

# The programs Switchyard runs for VXLAN networks: nft (the members-only
# allow-list, Debian package nftables), ip and tc (encrypted networks' IPsec
# states and plaintext guard, package iproute2). In /usr/bin, which a
# process without PATH searches.
tools=""
for t in nft ip tc; do
    p=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v "$t" || true)
    if [ -z "$p" ]; then
        echo "build-plugin.sh: $t not found: the plugin will lack it (install nftables and iproute2, then build again)" >&2
        continue
    fi
    install -m 0755 "$p" "$R/usr/bin/$t"
    tools="$tools $p"
done

# The shared libraries the binary and those programs link (glibc, libgcc_s,
# libmnl, …) and the dynamic loader, each at the path it has on this
# machine: the loader finds them there without a cache. `ldd` prints
# "name => /path (addr)" or "/lib64/ld-linux-x86-64.so.2 (addr)".
libs=$(for b in "$BIN" $tools; do ldd "$b"; done |
    awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
[ -n "$libs" ] || echo "build-plugin.sh: $BIN links no shared library (static): rootfs holds the binary alone" >&2
for lib in $libs; do
    mkdir -p "$R$(dirname "$lib")"
    cp -L "$lib" "$R$lib"
done
# glibc's name lookups (etcd endpoints given by host name) read these.
printf 'hosts: files dns\n' >"$R/etc/nsswitch.conf"
: >"$R/etc/hosts"
: >"$R/etc/resolv.conf"

cp "$ROOT/packaging/plugin/config.json" "$OUT/config.json"
# The binary and the programs must start in the rootfs as they will in the
# plugin.
if command -v chroot >/dev/null && [ "$(id -u)" = 0 ]; then
    chroot "$R" /usr/bin/switchyard --version >/dev/null 2>&1 ||
        chroot "$R" /usr/bin/switchyard --help >/dev/null ||
        { echo "build-plugin.sh: the binary does not start inside $R" >&2; exit 1; }
    for t in $tools; do
        n=$(basename "$t")
        chroot "$R" "/usr/bin/$n" -V >/dev/null 2>&1 || chroot "$R" "/usr/bin/$n" -v >/dev/null 2>&1 ||
            { echo "build-plugin.sh: $n does not start inside $R" >&2; exit 1; }
    done
fi
echo "$OUT"
