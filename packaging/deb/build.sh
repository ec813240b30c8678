#!/bin/bash
# Builds the Debian package of ClinicDesk from this repository:
#   target/debian/clinicdesk_<version>-<revision>_<arch>.deb
# Run by `make deb` (which installs what this needs first). Reproducible: the
# files' times are the last commit's (SOURCE_DATE_EPOCH), owners root, so the
# same binary always gives the same package, byte for byte.
#
#   packaging/deb/build.sh [--no-build]   --no-build: package target/release/clinicdesk as it is
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

build=1
[ "${1:-}" = "--no-build" ] && build=0

step() { echo "==> $*"; }
need() { command -v "$1" >/dev/null || { echo "build.sh: $1 is missing: install the Debian package $2 (make deb does)" >&2; exit 1; }; }
need dpkg-deb dpkg
need dpkg-shlibdeps dpkg-dev
need rsvg-convert librsvg2-bin
need desktop-file-validate desktop-file-utils
need appstreamcli appstream

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
revision=1
arch=$(dpkg --print-architecture)
[ -n "$version" ] || { echo "build.sh: no version in Cargo.toml" >&2; exit 1; }
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

linux=assets/linux
metainfo=$linux/app.clinicdesk.clinicdesk.metainfo.xml
step "Checking the desktop file and the AppStream metadata"
desktop-file-validate "$linux/clinicdesk.desktop"
appstreamcli validate --no-net "$metainfo"

if [ "$build" = 1 ]; then
  step "Building the release binary (cargo build --release --locked)"
  cargo build --release --locked --bin clinicdesk
fi
binary=target/release/clinicdesk
[ -x "$binary" ] || { echo "build.sh: $binary is missing: build it first (or drop --no-build)" >&2; exit 1; }

out=target/debian
stage=$out/stage
step "Staging the package tree in $stage"
rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$stage/usr/bin" "$stage/usr/share/applications" "$stage/usr/share/metainfo" \
  "$stage/usr/share/doc/clinicdesk" "$stage/usr/share/icons/hicolor/scalable/apps"
# Without debug information: the package is for running, not debugging.
objcopy --strip-debug "$binary" "$stage/usr/bin/clinicdesk"
chmod 0755 "$stage/usr/bin/clinicdesk"
install -m 0644 "$linux/clinicdesk.desktop" "$stage/usr/share/applications/clinicdesk.desktop"
install -m 0644 "$metainfo" "$stage/usr/share/metainfo/$(basename "$metainfo")"
install -m 0644 "$linux/clinicdesk.svg" "$stage/usr/share/icons/hicolor/scalable/apps/clinicdesk.svg"
step "Rendering the icon in the hicolor sizes (rsvg-convert)"
for size in 16 22 24 32 48 64 128 256 512; do
  dir="$stage/usr/share/icons/hicolor/${size}x${size}/apps"
  mkdir -p "$dir"
  rsvg-convert --width "$size" --height "$size" --format png "$linux/clinicdesk.svg" --output "$dir/clinicdesk.png"
done
install -m 0644 packaging/deb/copyright "$stage/usr/share/doc/clinicdesk/copyright"
{
  echo "clinicdesk ($version-$revision) unstable; urgency=medium"
  echo
  echo "  * Package built from the ClinicDesk repository ($(git rev-parse --short HEAD 2>/dev/null || echo unknown))."
  echo
  echo " -- ClinicDesk maintainers <maintainers@clinicdesk.invalid>  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n > "$stage/usr/share/doc/clinicdesk/changelog.Debian.gz"

step "Finding the shared libraries the binary links (dpkg-shlibdeps)"
# dpkg-shlibdeps wants a debian/control beside it: a throwaway one in a scratch directory.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/debian"
printf 'Source: clinicdesk\n\nPackage: clinicdesk\nArchitecture: any\n' > "$scratch/debian/control"
shlibs=$(cd "$scratch" && dpkg-shlibdeps -O "$root/$stage/usr/bin/clinicdesk" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "build.sh: dpkg-shlibdeps found no libraries" >&2; exit 1; }
# What the window opens at run time (dlopen, so no shlibs sees it): GL/EGL,
# X11 with its keyboard and cursor libraries, Wayland. The default fonts are
# inside the binary.
runtime="libgl1, libegl1, libx11-6, libx11-xcb1, libxcursor1, libxrandr2, libxi6, libxkbcommon0, libxkbcommon-x11-0, libwayland-client0, libwayland-egl1"
depends="$shlibs, $runtime"
installed_size=$(du -sk --apparent-size "$stage/usr" | cut -f1)

cat > "$stage/DEBIAN/control" <<EOF
Package: clinicdesk
Version: $version-$revision
Architecture: $arch
Maintainer: ClinicDesk maintainers <maintainers@clinicdesk.invalid>
Installed-Size: $installed_size
Depends: $depends
Recommends: libgl1-mesa-dri, gnome-keyring | kwalletmanager, libasound2-plugins, xdg-utils
Suggests: pulseaudio | pipewire-pulse
Section: comm
Priority: optional
Description: softphone and CRM for the operators of medical clinics
 A SIP softphone and a CRM in one window for the people who answer a
 medical clinic's phones. When a call comes in, the operator sees who is
 calling and that person's history; after the call the inquiry is recorded
 in a few keystrokes. Works from a local SQLite replica of the clinic's
 PostgreSQL database.
 .
 Registers itself for tel:, sip: and callto: links: a click on a phone
 number calls it in the ClinicDesk window already open.
EOF

# The same times and no group- or world-writable bits, whatever the checkout had.
find "$stage" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
chmod -R u+rwX,go+rX,go-w "$stage"
deb="$out/clinicdesk_${version}-${revision}_${arch}.deb"
step "Writing $deb"
rm -f "$deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb"
rm -rf "$stage"
echo "==> $deb ($(du -h "$deb" | cut -f1)); install it with: sudo apt install ./$deb"
echo "    Depends: $depends"
