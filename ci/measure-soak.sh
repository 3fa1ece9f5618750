#!/usr/bin/env bash
# Measure a long soak: the default plan, without the actuators' auto-off
# wait (the only fixed wait in it), CYCLES times against one simulated hub
# (the harness's own --sim, on loopback), over one session.
#
#   ci/measure-soak.sh [CYCLES] [PROFILE]   (default 500, hub-new-firmware;
#                                            builds the binary first)
#   VEGEHUB_MEASURE_RELEASE=1 ci/measure-soak.sh   measures the release build
#
# Prints: time per cycle (mean, median, max), connections opened over the
# whole soak (goal 1), harness memory (RSS) at cycle 1 and the last cycle
# (goal: no growth beyond noise), harness sockets at cycle 1 and the last,
# and the trend verdict. Exit status is the harness's (3 = a slow leak).
set -euo pipefail
cd "$(dirname "$0")/.."
cycles="${1:-500}"
profile="${2:-hub-new-firmware}"
if [ "${VEGEHUB_MEASURE_RELEASE:-}" = 1 ]; then
    cargo build --quiet --release --bin vegehub-harness
    bin="$PWD/target/release/vegehub-harness"
else
    cargo build --quiet --bin vegehub-harness
    bin="$PWD/target/debug/vegehub-harness"
fi
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

# The default plan with the auto-off check off.
python3 - "$work/plan.json" <<'EOF'
import json, sys
plan = json.load(open("scenarios/default.json"))
for step in plan["scenarios"]:
    if step["scenario"] == "actuators":
        step["auto_off_check"] = False
plan["description"] = "default plan without the auto-off wait (ci/measure-soak.sh)"
json.dump(plan, open(sys.argv[1], "w"), indent=2)
EOF

set +e
NO_COLOR=1 "$bin" --sim="$profile" --plan "$work/plan.json" --repeat "$cycles" -q \
    --report-json "$work/run.json" >"$work/out.txt" 2>&1
code=$?
set -e

python3 - "$work/run.json" "$code" <<'EOF'
import json, statistics, sys
r = json.load(open(sys.argv[1]))
s = r["soak"]
c = s["cycles"]
d = [x["duration"] for x in c]
mib = lambda b: "n/a" if b is None else f"{b / 1048576:.1f} MiB"
print(f"cycles: {len(c)} ({sum(1 for x in c if x['failed'])} failed), whole run {r['duration_ms'] / 1000:.1f} s")
print(f"time per cycle: mean {statistics.mean(d):.1f} ms, median {statistics.median(d):.1f} ms, max {max(d):.1f} ms")
print(f"connections opened over the soak: {c[-1]['connections_total']} (ledger: opened {r['ledger']['connections_opened']}, closed {r['ledger']['connections_closed']}, sessions {r['ledger']['sessions']})")
print(f"harness memory: cycle 1 {mib(c[0]['rss_bytes'])}, cycle {c[-1]['cycle']} {mib(c[-1]['rss_bytes'])}")
print(f"harness sockets: cycle 1 {c[0]['sockets_open']}, cycle {c[-1]['cycle']} {c[-1]['sockets_open']}")
if s["trends"]:
    for t in s["trends"]:
        print("trend: SLOW LEAK:", t["message"])
else:
    print("trend: no growth" if s["judged"] else "trend: not judged")
print(f"exit code: {sys.argv[2]}")
EOF
exit "$code"
