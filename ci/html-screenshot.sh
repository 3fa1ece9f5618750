#!/usr/bin/env bash
# Make the README's screenshot of the HTML report (ci/html-report.png): two
# simulated hubs on loopback, one that reboots mid-run (a flaky scenario),
# one of the wrong model whose config restore is refused (failed
# measurements, a hub left modified), the production plan, then headless
# chromium (Debian's `chromium` package) and `pngquant` (Debian's
# `pngquant`) to keep the PNG small.
#
#   ci/html-screenshot.sh [OUT_PNG]      default: ci/html-report.png
#
# Environment: VEGEHUB_HARNESS_BIN  use this binary instead of target/debug.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-ci/html-report.png}"
bin="${VEGEHUB_HARNESS_BIN:-}"
if [ -z "$bin" ]; then
    cargo build --quiet
    bin=target/debug/vegehub-harness
fi
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# Start a simulated hub; its URL is the first line it prints.
sim() { # NAME PROFILE FAULT
    "$bin" sim --profile "$2" --fault "$3" >"$work/$1.out" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        [ -s "$work/$1.out" ] && break
        sleep 0.1 # polling the sim's first line, with a deadline
    done
    head -1 "$work/$1.out" | sed 's|^http://||'
}
a="$(sim a hub-4-relay-ac 'reboot-after:3,down=1s')"
b="$(sim b hub-new-firmware 'status:500@config/set,after=1')"

mkdir -p "$work/backups"
VEGEHUB_HARNESS_BACKUP_DIR="$work/backups" "$bin" --device "$a" --device "$b" \
    --plan scenarios/production-4-relay-ac.json --write-config --actuators --setup --retries 5 \
    --station bench-3 --operator "Ana Pereira" --color never \
    --report-html "$work/report.html" >/dev/null 2>&1 || true

chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --no-first-run --hide-scrollbars --window-size=1000,1400 \
    --screenshot="$work/shot.png" "file://$work/report.html" >/dev/null 2>&1
pngquant --force --quality 60-90 --output "$out" "$work/shot.png"
ls -l "$out"
