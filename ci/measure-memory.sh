#!/usr/bin/env bash
# Peak memory of a one-hub harness run, whatever the hub sends: a simulated
# hub (a separate process, on 127.0.0.1) answers normally, with 50 MB
# answers on every endpoint, with 1 MB actuator-status answers while the
# harness polls, and with 200 KB status answers (under the harness's 256 KiB
# answer limit, so read whole and parsed on every poll).
#
#   ci/measure-memory.sh [TARGET_MIB]      (default 32; builds the binary first)
#
# For each case it prints the harness's exit code, its peak resident set
# size (/usr/bin/time -v, "Maximum resident set size"), and the size of the
# JSON run record; it exits 1 if any peak is at or above TARGET_MIB. The
# debug build is measured (the one the tests run); a release build uses less.
set -euo pipefail
cd "$(dirname "$0")/.."
target_mib="${1:-32}"
cargo build --quiet --bin vegehub-harness
bin="$PWD/target/debug/vegehub-harness"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -m 700 "$work/backups"

# Start a simulated hub with these faults; sets $hub to HOST:PORT.
start_hub() {
    local fifo="$work/fifo.$RANDOM"
    mkfifo "$fifo"
    local faults=()
    for f in "$@"; do faults+=(--fault "$f"); done
    "$bin" sim --profile hub-new-firmware "${faults[@]}" >"$fifo" 2>/dev/null &
    pids+=($!)
    local url
    read -r url _rest <"$fifo"   # the first line is the URL: served from now on
    rm "$fifo"
    hub="${url#http://}"
}

fail=0
printf '%-34s %5s %12s %14s\n' case exit "peak MiB" "report bytes"
measure() {
    local name="$1"; shift
    local args=("$@")
    local report="$work/$name.json"
    set +e
    VEGEHUB_HARNESS_BACKUP_DIR="$work/backups" NO_COLOR=1 /usr/bin/time -v \
        "$bin" --device "$hub" --write-config --timeout 5s --verify-timeout 2s --on-seconds 1 \
        --report-json "$report" "${args[@]}" >"$work/$name.out" 2>"$work/$name.err"
    local code=$?
    set -e
    local kb
    kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/$name.err")
    local mib
    mib=$(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }')
    local size=0
    [ -f "$report" ] && size=$(stat -c %s "$report")
    printf '%-34s %5s %12s %14s\n' "$name" "$code" "$mib" "$size"
    if awk -v k="$kb" -v t="$target_mib" 'BEGIN { exit !(k / 1024 >= t) }'; then
        fail=1
    fi
}

start_hub
measure healthy --actuators --setup

start_hub 'huge:50M'
measure "50 MB answers, every endpoint" --actuators --setup

start_hub 'huge:1M@actuators/status'
measure "1 MB status polls" --actuators --setup

start_hub 'huge:200K@actuators/status'
measure "200 KB status polls (read)" --actuators --setup

echo "target: every peak under $target_mib MiB"
if [ "$fail" = 1 ]; then
    echo "FAIL: a run reached $target_mib MiB" >&2
    exit 1
fi
echo "ok"
