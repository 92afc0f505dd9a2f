#!/usr/bin/env bash
# Runs every Switchyard test on this machine, as root, on a fresh Debian 12:
# installs what the tests need (Debian packages, the Docker Engine 28 used
# beside Debian's 20.10), builds, checks formatting and lints, and runs the
# whole suite (unit, kernel, UML-kernel, protocol, multi-host and
# real-dockerd tests). The dockerds and etcds the tests need are started by
# the tests themselves, each inside a network namespace the test made, and
# stopped by them.
#
#   sudo scripts/test.sh            # everything
#   sudo scripts/test.sh -E 'test(ping)'   # extra args go to cargo nextest
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${SWITCHYARD_SHARED:-$ROOT/../shared}

[ "$(id -u)" = 0 ] || { echo "scripts/test.sh: run as root (the tests make network namespaces and run dockerd)" >&2; exit 1; }
[ -d "$SHARED/tools" ] || { echo "scripts/test.sh: ../shared (fixtures and tools) must sit beside the repository; not found at $SHARED" >&2; exit 1; }

# --- 1. Debian packages --------------------------------------------------------
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
command -v dockerd >/dev/null || need+=(docker.io)
command -v nsenter >/dev/null || need+=(util-linux)
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v iptables >/dev/null || need+=(iptables)
[ -x /usr/bin/linux.uml ] || need+=(user-mode-linux)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v objdump >/dev/null || need+=(binutils)
command -v nft >/dev/null || need+=(nftables)
command -v openssl >/dev/null || need+=(openssl)
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
command -v faketime >/dev/null || need+=(faketime)
command -v python3 >/dev/null || need+=(python3)
command -v radvd >/dev/null || need+=(radvd)
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || need+=(busybox-static)
if ((${#need[@]})); then
    echo "scripts/test.sh: installing ${need[*]}" >&2
    # Installing docker.io must not start the machine's own dockerd (it
    # would change the host's bridge and firewall): deny service starts.
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
    fi
    trap '[ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}"
fi

# --- 2. Docker Engines 28 and 29 beside 20.10 (unpacked under /opt, nothing replaced)
"$SHARED/tools/docker-engine.sh" fetch 28 >/dev/null
"$SHARED/tools/docker-engine.sh" fetch 29 >/dev/null

# --- 3. Rust tools -----------------------------------------------------------------
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest

# --- 4. Build, lint, test ------------------------------------------------------------
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings
cargo build --workspace --all-targets -q
# The plugin the tests run carries the test hooks (cargo feature
# `test-hooks`); a release build never does.
cargo build -p switchyard --features test-hooks -q
export SWITCHYARD_BIN=$ROOT/target/debug/switchyard
# The packaging tests (managed plugin, .deb) package the release build.
cargo build --release -p switchyard -q
export SWITCHYARD_RELEASE_BIN=$ROOT/target/release/switchyard
cargo nextest run --workspace --no-fail-fast "$@"
