#!/usr/bin/env bash
# Run the harness against the simulated hub, the way a CI job does, and keep
# the reports (JSON run record + JUnit XML + HTML report) of every run in OUT_DIR.
#
#   ci/sim-run.sh [OUT_DIR]          default OUT_DIR: target/ci-reports
#
# Runs: the default plan on every shipped simulator profile, the production
# plan on the 4-relay AC profile and the smoke plan on the battery profile.
# Every run happens even if an earlier one failed; the script exits with the
# first non-zero harness exit code (see the README's exit-code table), so the
# job fails while the reports of all runs are kept.
#
# Environment: VEGEHUB_HARNESS_BIN  use this binary instead of building
#              target/release/vegehub-harness.
set -uo pipefail
cd "$(dirname "$0")/.."

out="${1:-target/ci-reports}"
mkdir -p "$out" || exit 2

bin="${VEGEHUB_HARNESS_BIN:-}"
if [ -z "$bin" ]; then
    cargo build --release --locked --quiet || exit 2
    bin=target/release/vegehub-harness
fi

status=0
run() { # NAME PROFILE [PLAN]
    local name="$1" profile="$2" plan="${3:-}"
    local args=("--sim=$profile" --color never
        --report-json "$out/$name.json" --junit "$out/$name.junit.xml"
        --report-html "$out/$name.html")
    [ -n "$plan" ] && args+=(--plan "$plan")
    echo "== $name: --sim $profile ${plan:+--plan $plan}"
    "$bin" "${args[@]}"
    local code=$?
    echo "== $name: exit $code"
    if [ "$code" -ne 0 ] && [ "$status" -eq 0 ]; then
        status=$code
    fi
}

for profile in hub-new-firmware hub-old-firmware hub-4-relay-ac hub-battery-sensor; do
    run "default-$profile" "$profile"
done
run production-hub-4-relay-ac hub-4-relay-ac scenarios/production-4-relay-ac.json
run smoke-hub-battery-sensor hub-battery-sensor scenarios/smoke.json

echo "reports kept in $out:"
ls -1 "$out"
exit "$status"
