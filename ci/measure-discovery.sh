#!/usr/bin/env bash
# Measure how long `discover` takes, inside a private network namespace
# (never on this machine's network), against simulated hubs on loopback.
#
#   ci/measure-discovery.sh [ROUNDS]      (default 5; builds the binary first)
#
# Three cases, each ROUNDS times, printed as min/median/max in ms:
#   first-hub   `discover --expect 1`: time until the first hub resolves
#   expect-3    `discover --expect 3` with three hubs: time to return
#   quiet       `discover` (no --expect) with three hubs: time to return,
#               i.e. the last hub plus the quiet period
# and once, `fresh`: `--expect 3` right after the hubs started.
#
# The hubs idle for 2 s before each measured browse. That is the condition
# measured, not a settling wait: an mDNS responder multicasts a record at
# most once a second, so a hub that has just announced or answered (true of
# a hub switched on a moment ago, or of the previous round here) answers
# only the querier's retry at ~1 s; the `fresh` line shows that case.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
cargo build --quiet --bin vegehub-harness
bin="$PWD/target/debug/vegehub-harness"

if [ "${VEGEHUB_MEASURE_IN_NETNS:-}" != 1 ]; then
    exec env VEGEHUB_MEASURE_IN_NETNS=1 unshare -rn "$0" "$rounds"
fi
ip link set lo up

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
for profile in hub-new-firmware hub-old-firmware hub-4-relay-ac; do
    fifo=$(mktemp -u)
    mkfifo "$fifo"
    "$bin" sim --advertise --profile "$profile" >"$fifo" 2>/dev/null &
    pids+=($!)
    read -r _url <"$fifo"     # the URL line: the hub is served and announced
    rm "$fifo"
done

field() { # field NAME < json: the number after "NAME":
    sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" | head -n1
}
first_resolved() {
    sed -n 's/.*"resolved_ms": *\([0-9]*\).*/\1/p' | sort -n | head -n1
}
stats() { # stats LABEL values...
    local label=$1
    shift
    printf '%s\n' "$@" | sort -n | awk -v l="$label" '
        { v[NR] = $1 }
        END { printf "%-10s min %5d  median %5d  max %5d ms  (n=%d)\n", l, v[1], v[int((NR + 1) / 2)], v[NR], NR }'
}

fresh=$("$bin" discover --expect 3 --json | field elapsed_ms)

first=() expect3=() quiet=()
for _ in $(seq "$rounds"); do
    sleep 2
    first+=("$("$bin" discover --expect 1 --json | first_resolved)")
    sleep 2
    expect3+=("$("$bin" discover --expect 3 --json | field elapsed_ms)")
    sleep 2
    quiet+=("$("$bin" discover --json | field elapsed_ms)")
done

echo "discovery times, 3 simulated hubs on loopback in a private netns:"
stats first-hub "${first[@]}"
stats expect-3 "${expect3[@]}"
stats quiet "${quiet[@]}"
printf '%-10s %d ms (hubs announced an instant before)\n' fresh "$fresh"
