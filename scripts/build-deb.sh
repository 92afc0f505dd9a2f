#!/usr/bin/env bash
# Builds Switchyard's Debian package from a staged tree with dpkg-deb (no
# extra tool): the binary, the systemd unit, the documented default config
# as a conffile, the docs; the state directory is made by postinst.
#
#   scripts/build-deb.sh [--bin PATH] [OUTDIR]    OUTDIR defaults to target/debian
#   dpkg -i target/debian/switchyard_<version>_<arch>.deb
#   systemctl enable --now switchyard
#
# --bin defaults to target/release/switchyard (built with
# `cargo build --release -p switchyard` when missing). Prints the .deb's path.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. "$ROOT/scripts/release-bin.sh"
release_args build-deb.sh "$ROOT/target/debian" 2,12p "$@"
for c in dpkg-deb dpkg; do
    command -v $c >/dev/null || { echo "build-deb.sh: needs $c (Debian package dpkg)" >&2; exit 1; }
done

VERSION=$(awk -F'"' '/^\[workspace.package\]/{w=1} w && /^version *=/{print $2; exit}' Cargo.toml)
[ -n "$VERSION" ] || { echo "build-deb.sh: no [workspace.package] version in Cargo.toml" >&2; exit 1; }
ARCH=$(dpkg --print-architecture)
# The glibc the binary was linked against (its newest GLIBC_x.y symbol).
GLIBC=$(objdump -T "$BIN" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1 || true)
DEPENDS="libc6 (>= ${GLIBC:-2.34}), libgcc-s1"

mkdir -p "$OUT"
STAGE=$(mktemp -d "$OUT/stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
chmod 0755 "$STAGE"
install -D -m 0755 "$BIN" "$STAGE/usr/bin/switchyard"
install -D -m 0644 configs/switchyard.service "$STAGE/lib/systemd/system/switchyard.service"
install -D -m 0644 configs/switchyard.toml "$STAGE/etc/switchyard/switchyard.toml"
install -D -m 0644 README.md "$STAGE/usr/share/doc/switchyard/README.md"
install -d -m 0755 "$STAGE/usr/share/doc/switchyard/examples"
cp -r configs/examples/. "$STAGE/usr/share/doc/switchyard/examples/"
chmod -R u=rwX,go=rX "$STAGE/usr/share/doc/switchyard/examples"
printf 'Switchyard\nLicense: Apache-2.0\nOn Debian systems the license is in /usr/share/common-licenses/Apache-2.0.\n' \
    >"$STAGE/usr/share/doc/switchyard/copyright"
install -d -m 0755 "$STAGE/DEBIAN"
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE/" -e "s/@DEPENDS@/$DEPENDS/" \
    packaging/deb/control.in >"$STAGE/DEBIAN/control"
echo /etc/switchyard/switchyard.toml >"$STAGE/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "packaging/deb/$s" "$STAGE/DEBIAN/$s"; done

DEB=$OUT/switchyard_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >/dev/null
echo "$DEB"
