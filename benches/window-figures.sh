#!/usr/bin/env bash
# Figures of the real window on the full-size bench replica (200k people,
# 1M calls): time to the first frame and to the first call-log rows, CPU of
# the idle window over 10 s, resident memory, and frame times while the call
# log is scrolled with the mouse wheel. Needs xvfb and xdotool, and the bench
# replica (`cargo bench --bench store` creates it in target/bench-data).
#   benches/window-figures.sh [path/to/clinicdesk]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/debug/clinicdesk}
REPLICA=${CLINICDESK_REPLICA:-target/bench-data/replica-200000-1000000.sqlite}
[ -x "$BIN" ] || { echo "build first: cargo build"; exit 1; }
[ -f "$REPLICA" ] || { echo "no $REPLICA: run cargo bench --bench store first"; exit 1; }
command -v Xvfb >/dev/null || { echo "install xvfb"; exit 1; }
command -v xdotool >/dev/null || { echo "install xdotool"; exit 1; }

WORK=$(mktemp -d)
trap 'kill $APP $XVFB 2>/dev/null || true; rm -rf "$WORK"' EXIT
cp "$REPLICA" "$WORK/replica.sqlite"
printf 'language = "en"\nuser_login = "operator"\n' > "$WORK/settings.toml"
DISPLAY_NO=:$((70 + RANDOM % 20))
Xvfb $DISPLAY_NO -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
XVFB=$!
sleep 1
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
DISPLAY=$DISPLAY_NO CLINICDESK_FRAME_STATS=1 CLINICDESK_LOG=info "$BIN" --profile "$WORK" 2> "$WORK/log" &
APP=$!
for _ in $(seq 1 600); do grep -q "first call log rows" "$WORK/log" && break; sleep 0.1; done
grep -E "first frame|first call log rows" "$WORK/log" | sed 's/^.*INFO //'
sleep 3
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' /proc/$APP/stat; }
c0=$(cpu); sleep 10; c1=$(cpu)
echo "idle window: $(( (c1 - c0) * 1000 / ticks )) ms of CPU in 10 s"
echo "resident memory after start: $(grep VmRSS /proc/$APP/status | awk '{print $2/1024 " MiB"}')"
WID=$(DISPLAY=$DISPLAY_NO xdotool search --name ClinicDesk | head -1)
DISPLAY=$DISPLAY_NO xdotool mousemove --window "$WID" 700 400
for _ in $(seq 1 4); do DISPLAY=$DISPLAY_NO xdotool click --repeat 100 --delay 8 5; done
sleep 1
grep "frame times" "$WORK/log" | sed 's/^.*INFO //'
echo "resident memory after scrolling: $(grep VmRSS /proc/$APP/status | awk '{print $2/1024 " MiB"}')"
