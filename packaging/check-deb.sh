#!/bin/bash
# The Debian package end to end on this machine, as root (a release build:
# ~10 minutes, so not part of `make test`):
#   1. make deb (or, with --no-build, package target/release/clinicdesk as it is);
#   2. installs it with apt-get (which brings its Depends);
#   3. /usr/bin/clinicdesk --version;
#   4. desktop-file-validate and appstreamcli validate on the installed files;
#   5. xdg-mime names ClinicDesk for tel:, sip: and callto:;
#   6. with the installed window open (under Xvfb, its phone registered with
#      sipp as the PBX), `xdg-open tel:+74951234567` makes that window call
#      the number: sipp receives the INVITE, and no second window stays;
#   7. removes the package again (dpkg -r), unless --keep.
#
#   packaging/check-deb.sh [--no-build] [--keep]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=1 keep=0
for arg in "$@"; do
  case $arg in
    --no-build) build=0 ;;
    --keep) keep=1 ;;
    *) echo "usage: $0 [--no-build] [--keep]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "check-deb.sh installs a package: run it as root" >&2; exit 1; }

step() { echo; echo "==> $*"; }
fail() { echo "check-deb.sh: FAILED: $*" >&2; exit 1; }

for p in xvfb sip-tester xdg-utils desktop-file-utils appstream; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="${missing:-} $p"
done
if [ -n "${missing:-}" ]; then
  step "Installing what the check needs:$missing"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi

if [ "$build" = 1 ]; then
  step "make deb"
  make deb
else
  step "packaging/deb/build.sh --no-build"
  packaging/deb/build.sh --no-build
fi
deb=$(ls -t target/debian/clinicdesk_*.deb | head -n1)
step "The package: $deb ($(du -h "$deb" | cut -f1))"
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
dpkg-deb --contents "$deb" | awk '{print $1, $6}'

step "Installing it: apt-get install ./$deb"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "./$deb" | tail -n 3
dpkg -s clinicdesk | grep -E '^(Status|Version|Depends):'

step "clinicdesk --version"
/usr/bin/clinicdesk --version

step "Validating the installed desktop file and AppStream metadata"
desktop-file-validate /usr/share/applications/clinicdesk.desktop && echo "desktop-file-validate: clean"
appstreamcli validate --no-net /usr/share/metainfo/app.clinicdesk.clinicdesk.metainfo.xml

step "Who opens tel:, sip: and callto: links (xdg-mime query default)"
for scheme in tel sip callto; do
  handler=$(xdg-mime query default "x-scheme-handler/$scheme")
  echo "x-scheme-handler/$scheme: $handler"
  [ "$handler" = clinicdesk.desktop ] || fail "x-scheme-handler/$scheme is handled by '$handler'"
done

step "xdg-open tel:+74951234567 with the installed window open (Xvfb, sipp as the PBX)"
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
  if [ "$keep" = 0 ] && dpkg-query -W -f='${Status}' clinicdesk 2>/dev/null | grep -q 'install ok installed'; then
    echo; echo "==> Removing the package again: dpkg -r clinicdesk"
    dpkg -r clinicdesk | tail -n 1
  fi
}
trap cleanup EXIT
for n in $(seq 150 199); do [ -e "/tmp/.X$n-lock" ] || { display=":$n"; break; }; done
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 & pids+=($!)
port=
for p in $(seq 25060 10 25560); do ss -Huln "sport = :$p" | grep -q . || { port=$p; break; }; done
[ -n "$port" ] || fail "no free UDP port for sipp"
(cd "$work" && exec sipp -i 127.0.0.1 -p "$port" -mp $((port + 4)) -nostdin \
  -sf "$root/tests/it/sipp/registrar_then_callee.xml" -m 20 -timeout 120 \
  -trace_msg -message_file sipp.msg >sipp.out 2>&1) & pids+=($!)
profile="$work/profile"
mkdir -p "$profile"
printf 'language = "en"\ndeadline_notifications = false\n[sip]\nserver = "127.0.0.1:%s"\nusername = "101"\n' "$port" \
  > "$profile/settings.toml"
export DISPLAY="$display" CLINICDESK_PROFILE="$profile" CLINICDESK_SIP_PASSWORD=secret
unset WAYLAND_DISPLAY DBUS_SESSION_BUS_ADDRESS
sleep 1
/usr/bin/clinicdesk >"$work/window.log" 2>&1 & window=$!; pids+=("$window")
for _ in $(seq 1 150); do [ -S "$profile/window.sock" ] && break; sleep 0.2; done
[ -S "$profile/window.sock" ] || { cat "$work/window.log"; fail "the window did not open its socket"; }
echo "the window (pid $window) listens on $profile/window.sock"
before=$(pgrep -c -x clinicdesk || true)
xdg-open tel:+74951234567
for _ in $(seq 1 150); do grep -q 'INVITE sip:+74951234567@' "$work/sipp.msg" 2>/dev/null && break; sleep 0.2; done
grep -q 'INVITE sip:+74951234567@' "$work/sipp.msg" 2>/dev/null || { cat "$work/window.log"; fail "sipp saw no INVITE"; }
grep -m1 'INVITE sip:+74951234567@' "$work/sipp.msg"
sleep 1
after=$(pgrep -c -x clinicdesk || true)
echo "clinicdesk processes before xdg-open: $before, after: $after"
[ "$after" = "$before" ] || fail "a second clinicdesk process stayed"
grep -E 'handed over|calling a number' "$work/window.log" | sed 's/\x1b\[[0-9;]*m//g'
echo
echo "==> check-deb.sh: all checks passed"
