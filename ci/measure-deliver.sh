#!/usr/bin/env bash
# Measure what setup's delivery check adds: the `setup` scenario alone
# against the simulated hub (--sim, loopback), ROUNDS runs with
# deliver_check off (today's setup) and ROUNDS with deliver_check required
# (receiver, update/send, the hub's POST, body check), both generations.
#
#   ci/measure-deliver.sh [ROUNDS]    (default 20; builds the binary first)
#
# Prints per generation the median and max of the scenario's duration (ms,
# from the run record) for each mode, and the added time (median difference).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-20}"
cargo build --quiet --bin vegehub-harness
bin="$PWD/target/debug/vegehub-harness"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for check in off required; do
    printf '{"scenarios": [{"scenario": "setup", "allow_changes": true, "deliver_check": "%s"}]}\n' \
        "$check" >"$work/$check.json"
done
for profile in hub-new-firmware hub-old-firmware; do
    for check in off required; do
        : >"$work/$profile-$check.txt"
        for _ in $(seq "$rounds"); do
            NO_COLOR=1 "$bin" --sim="$profile" --plan "$work/$check.json" -q \
                --report-json "$work/run.json" >/dev/null 2>&1
            python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); s=r["hubs"][0]["scenarios"][0]; assert s["outcome"]=="passed", s; print(s["duration_ms"])' \
                "$work/run.json" >>"$work/$profile-$check.txt"
        done
    done
    python3 - "$profile" "$work/$profile-off.txt" "$work/$profile-required.txt" <<'PY'
import statistics, sys
off = [float(x) for x in open(sys.argv[2])]
req = [float(x) for x in open(sys.argv[3])]
m_off, m_req = statistics.median(off), statistics.median(req)
print(f"{sys.argv[1]}: setup {m_off:.0f} ms median (max {max(off):.0f}); "
      f"with delivery check {m_req:.0f} ms median (max {max(req):.0f}); added {m_req - m_off:.0f} ms")
PY
done
