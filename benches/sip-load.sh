#!/usr/bin/env bash
# The highest call rate `clinicdesk phone --auto-answer` holds, and its CPU.
#
# sipp's built-in uac calls the phone at 100, 200, 300... calls/s, DURATION
# seconds each step, calls of LENGTH_MS (ended by sipp's BYE; each call has
# its RTP session of silence). A rate is held when sipp reports no failed call
# and placed them at that rate. The phone's CPU is its utime+stime from
# /proc/PID/stat over the step, as % of one core; sipp's own is beside it
# (on a small machine sipp, single-threaded, may be the limit). Stops after
# the first step that is not held.
#
#   cargo build --release --bin clinicdesk
#   benches/sip-load.sh [BIN]        # BIN: default $CARGO_TARGET_DIR or target/, release
#   RATES="100 200 400" DURATION=20 LENGTH_MS=1000 benches/sip-load.sh
#
# Needs sipp (Debian: sip-tester). Linux only (/proc).
set -euo pipefail

target_dir=${CARGO_TARGET_DIR:-$(dirname "$0")/../target}
bin=${1:-$target_dir/release/clinicdesk}
rates=${RATES:-"100 200 300 400 500 600 700 800 900 1000 1200 1400 1600 1800 2000"}
duration=${DURATION:-20}
length_ms=${LENGTH_MS:-1000}

command -v sipp >/dev/null || { echo "sipp is not installed: apt-get install sip-tester" >&2; exit 1; }
[ -x "$bin" ] || { echo "$bin not found: cargo build --release --bin clinicdesk" >&2; exit 1; }

work=$(mktemp -d)
phone_pid=
feeder_pid=
cleanup() {
  [ -n "$phone_pid" ] && kill "$phone_pid" 2>/dev/null || true
  [ -n "$feeder_pid" ] && kill "$feeder_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# The phone reads commands from a FIFO kept open by a sleeper, its events go to a file.
mkfifo "$work/in"
sleep infinity >"$work/in" &
feeder_pid=$!
CLINICDESK_LOG=warn "$bin" --profile "$work/profile" phone --listen 127.0.0.1:0 --auto-answer \
  <"$work/in" >"$work/events" 2>"$work/phone.log" &
phone_pid=$!
exec 3>"$work/in"
for _ in $(seq 50); do grep -q '"started"' "$work/events" 2>/dev/null && break; sleep 0.1; done
grep -q '"started"' "$work/events" || { echo "the phone did not start:"; cat "$work/phone.log"; exit 1; } >&2
addr=$(sed -n 's/.*"listen":"\([^"]*\)".*/\1/p' "$work/events" | head -1)

stats() {
  local before
  before=$(grep -c '"stats"' "$work/events" || true)
  echo stats >&3
  for _ in $(seq 100); do
    [ "$(grep -c '"stats"' "$work/events" || true)" -gt "$before" ] && break
    sleep 0.1
  done
  grep '"stats"' "$work/events" | tail -1
}
field() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }

version=$("$bin" --version 2>/dev/null || echo clinicdesk)
echo "$version, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), calls of ${length_ms} ms, ${duration} s a step"
printf '%-8s %-7s %-7s %-7s %-8s %-9s %-9s %-9s %-9s %-8s\n' \
  "rate/s" "calls" "ok" "failed" "retrans" "placed/s" "to_200ms" "phone%" "sipp%" "rss_MiB"
highest=0
for rate in $rates; do
  calls=$((rate * duration))
  csv="$work/sipp-$rate.csv"
  t0=$(date +%s.%N)
  p0=$(ticks "$phone_pid")
  set +e
  sipp -sn uac "$addr" -i 127.0.0.1 -nostdin -r "$rate" -m "$calls" -d "$length_ms" \
    -l $((rate * 4)) -timeout $((duration * 3 + 60)) -trace_stat -fd 1 -stf "$csv" >"$work/sipp-$rate.out" 2>&1 &
  sipp_pid=$!
  s_ticks=0
  while kill -0 "$sipp_pid" 2>/dev/null; do
    s_ticks=$(ticks "$sipp_pid" 2>/dev/null || echo "$s_ticks")
    sleep 0.5
  done
  wait "$sipp_pid"
  status=$?
  set -e
  p1=$(ticks "$phone_pid")
  t1=$(date +%s.%N)
  kill -0 "$phone_pid" 2>/dev/null || { echo "the phone died at $rate calls/s:"; tail -20 "$work/phone.log"; exit 1; } >&2
  # The last line of sipp's statistics, and the second at which the last call was placed.
  read -r ok failed retrans rtt placed_at < <(awk -F';' -v total="$calls" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    NF > 10 {
      ok = $col["SuccessfulCall(C)"]; failed = $col["FailedCall(C)"]; retrans = $col["Retransmissions(C)"]
      # Response time 1: the mean time from INVITE to its 200, as hh:mm:ss:usec.
      split($col["ResponseTime1(C)"], t, ":"); rtt = (t[1] * 3600 + t[2] * 60 + t[3]) * 1000 + t[4] / 1000
      split($col["ElapsedTime(C)"], e, ":"); secs = e[1] * 3600 + e[2] * 60 + e[3]
      if (placed == "" && $col["OutgoingCall(C)"] >= total) placed = secs
    }
    END { printf "%s %s %s %.1f %s\n", ok, failed, retrans, rtt, (placed == "" ? 0 : placed) }' "$csv")
  wall=$(echo "$t1 - $t0" | bc -l)
  placed_rate=$( [ "$placed_at" -gt 0 ] && echo "$calls / $placed_at" | bc -l || echo 0)
  phone_cpu=$(echo "100 * ($p1 - $p0) / $hz / $wall" | bc -l)
  sipp_cpu=$(echo "100 * $s_ticks / $hz / $wall" | bc -l)
  rss=$(stats | field rss_kib)
  printf '%-8s %-7s %-7s %-7s %-8s %-9.0f %-9s %-9.0f %-9.0f %-8.1f\n' \
    "$rate" "$calls" "$ok" "$failed" "$retrans" "$placed_rate" "$rtt" "$phone_cpu" "$sipp_cpu" "$(echo "$rss / 1024" | bc -l)"
  # Held: sipp succeeded with every call, placed at (nearly) the rate asked (1 s resolution).
  if [ "$status" -eq 0 ] && [ "$ok" -eq "$calls" ] && [ "$failed" -eq 0 ] \
    && [ "$(echo "$placed_rate >= 0.9 * $rate" | bc -l)" -eq 1 ]; then
    highest=$rate
  else
    echo "not held at $rate calls/s (sipp exit $status)"
    break
  fi
done
echo "highest rate held: $highest calls/s"
after=$(stats)
echo "phone now: $after"
