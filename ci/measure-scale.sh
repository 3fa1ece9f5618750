#!/usr/bin/env bash
# Measure the harness at scale: many hubs in one run, one hub on a busy
# host, and discovery of many advertised hubs. Prints one line per figure
# with the target next to it; exits 1 if a target is missed.
#
#   ci/measure-scale.sh [CASES...]     default: shelf-300 shelf-1000 reports-300
#                                      reports-1000 busy-host discover-300
#
# Cases:
#   shelf-300    one `sim --count 300`, one harness run over all 300 hubs,
#                every scenario with --write-config --actuators --setup, auto-off check off
#                (plan written below): exit 0, wall < 3 s, harness CPU
#                (user+sys) < 1.5 s, peak RSS < 128 MiB, <= 1 connection per hub
#   shelf-1000   the same with 1,000 hubs: exit 0, every hub passes
#   reports-300  shelf-300 with all three report files (--report-json,
#                --junit, --report-html), which are rewritten while the run
#                goes on: exit 0, wall < 3 s, harness CPU < 2 s, peak RSS
#                < 160 MiB, and the final files read back complete
#   reports-1000 the same with 1,000 hubs: exit 0, files complete
#   busy-host    one hub, median of 7 runs on a quiet host and again with
#                10,000 idle established TCP sockets held by another
#                process: busy < 1.5x quiet
#   discover-300 `sim --count 300 --advertise` and `discover --expect 300`,
#                inside a private network namespace (unshare -rn; nothing
#                leaves it): < 2 s
#
# Environment: VEGEHUB_HARNESS_BIN  use this binary instead of building
#              target/release/vegehub-harness.
set -uo pipefail
cd "$(dirname "$0")/.."

bin="${VEGEHUB_HARNESS_BIN:-}"
if [ -z "$bin" ]; then
    cargo build --release --locked --quiet || exit 2
    bin="$PWD/target/release/vegehub-harness"
fi
export VEGEHUB_HARNESS_BIN="$bin"

cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(shelf-300 shelf-1000 reports-300 reports-1000 busy-host discover-300)

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
missed=0

verdict() { # verdict LABEL VALUE OP LIMIT UNIT
    local ok
    ok=$(awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN { r = op == "<" ? v < l : op == "<=" ? v <= l : v >= l; print r ? "ok" : "MISSED" }')
    printf '  %-34s %10s %-4s (target %s %s %s) %s\n' "$1" "$2" "$5" "$3" "$4" "$5" "$ok"
    [ "$ok" = ok ] || missed=1
}

# The plan: every scenario of the default plan, the auto-off check off.
plan="$work/no-auto-off.json"
sed 's/"auto_off_check": true/"auto_off_check": false/' scenarios/default.json >"$plan"
grep -q '"auto_off_check": false' "$plan" || { echo "cannot write the plan" >&2; exit 2; }

# start_shelf N [ARGS...]: start `sim --count N` and wait (bounded) for its N
# URL lines; sets $shelf_out.
start_shelf() {
    local n=$1
    shift
    shelf_out="$work/shelf-$n.out"
    : >"$shelf_out"
    "$bin" sim --count "$n" "$@" >"$shelf_out" 2>"$work/shelf-$n.err" &
    pids+=($!)
    local deadline=$((SECONDS + 60))
    until [ "$(wc -l <"$shelf_out")" -ge "$n" ]; do
        if [ $SECONDS -gt $deadline ] || ! kill -0 "${pids[-1]}" 2>/dev/null; then
            echo "sim --count $n did not start:" >&2
            cat "$work/shelf-$n.err" >&2
            exit 2
        fi
        sleep 0.05 # a bounded wait for the simulator's output
    done
}

devices() { # the --device arguments for the first N lines of $shelf_out
    head -n "$1" "$shelf_out" | awk '{ sub("http://", "", $1); printf "--device\n%s\n", $1 }'
}

# run_harness OUT ARGS...: one harness run under GNU time; sets code, wall,
# cpu, rss_kib.
run_harness() {
    local out=$1
    shift
    local t0 t1
    t0=$(date +%s%N)
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" \
        "$bin" --color never --backup-dir "$work/backups" "$@" </dev/null >"$out" 2>"$out.err"
    code=$?
    t1=$(date +%s%N)
    # (GNU time puts "Command exited with non-zero status N" first; its
    # wall clock has 10 ms steps, so the wall time is taken here.)
    read -r _ user sys rss_kib < <(tail -n 1 "$work/time")
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
}

shelf() { # shelf N [reports]
    local n=$1 reports=${2:-}
    start_shelf "$n"
    mapfile -t args < <(devices "$n")
    local out="$work/run-$n.txt" files=()
    if [ -n "$reports" ]; then
        rm -f "$work/run.json" "$work/run.xml" "$work/run.html"
        files=(--report-json "$work/run.json" --junit "$work/run.xml" --report-html "$work/run.html")
    fi
    run_harness "$out" "${args[@]}" --write-config --actuators --setup --plan "$plan" "${files[@]}"
    local opened passed
    opened=$(sed -n 's/^ *connections: opened \([0-9]*\).*/\1/p' "$out" | head -n1)
    passed=$(sed -n 's/^test result: .*\. \([0-9]*\) passed.*/\1/p' "$out")
    if [ -n "$reports" ]; then
        echo "$n hubs from one sim --count $n, every scenario, no auto-off wait, all three report files:"
    else
        echo "$n hubs from one sim --count $n, every scenario, no auto-off wait:"
    fi
    verdict "exit code" "$code" "<=" 0 ""
    verdict "scenarios passed" "${passed:-0}" ">=" "$((n * 6))" ""
    verdict "connections per hub" "$(awk -v o="${opened:-0}" -v n="$n" 'BEGIN { printf "%.2f", o / n }')" "<=" 1 ""
    if [ -n "$reports" ]; then
        # The final files, read back: the record finished with every
        # scenario, the JUnit file parses with as many test cases, the HTML
        # report shows the count.
        verdict "scenarios in the three reports" "$(python3 - "$work" "$n" <<'PY'
import json, sys, xml.etree.ElementTree as ET
work, n = sys.argv[1], int(sys.argv[2])
r = json.load(open(f"{work}/run.json"))
ok = r["status"] == "finished" and r["summary"]["passed"] == n * 6 and len(r["hubs"]) == n
cases = len(ET.parse(f"{work}/run.xml").getroot().findall(".//testcase"))
html = open(f"{work}/run.html").read()
ok = ok and f'data-count="passed">{n * 6}</b>' in html
print(cases if ok else 0)
PY
)" ">=" "$((n * 6))" ""
        printf '  %-34s %10s KiB  (json, junit, html)\n' "report sizes" \
            "$(( ($(stat -c %s "$work/run.json") + $(stat -c %s "$work/run.xml") + $(stat -c %s "$work/run.html")) / 1024 ))"
    fi
    if [ "$n" -le 300 ] && [ -n "$reports" ]; then
        verdict "wall" "$wall" "<" 3 s
        verdict "harness CPU (user+sys)" "$cpu" "<" 2 s
        verdict "peak memory (RSS)" "$((rss_kib / 1024))" "<" 160 MiB
    elif [ "$n" -le 300 ]; then
        verdict "wall" "$wall" "<" 3 s
        verdict "harness CPU (user+sys)" "$cpu" "<" 1.5 s
        verdict "peak memory (RSS)" "$((rss_kib / 1024))" "<" 128 MiB
    else
        printf '  %-34s %10s s    (no target)\n' wall "$wall"
        printf '  %-34s %10s s    (no target)\n' "harness CPU (user+sys)" "$cpu"
        printf '  %-34s %10s MiB  (no target)\n' "peak memory (RSS)" "$((rss_kib / 1024))"
    fi
    if [ "$code" -ne 0 ]; then
        grep -v ' \.\.\. ok$' "$out" | tail -n 20
        tail -n 5 "$out.err"
    fi
    kill "${pids[-1]}" 2>/dev/null
    wait "${pids[-1]}" 2>/dev/null
}

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# hold_sockets: start a process holding 10,000 established TCP sockets
# (5,000 loopback pairs) until its stdin (fd 9) closes.
hold_sockets() {
    rm -f "$work/ready" "$work/hold"
    mkfifo "$work/hold"
    python3 -c '
import socket, sys
lst = socket.socket()
lst.bind(("127.0.0.1", 0))
lst.listen(1024)
held = []
for _ in range(5000):
    c = socket.create_connection(lst.getsockname())
    s, _ = lst.accept()
    held += [c, s]
open(sys.argv[1], "w").write(str(len(held)))
sys.stdin.read()
' "$work/ready" <"$work/hold" &
    holder=$!
    exec 9>"$work/hold"
    local deadline=$((SECONDS + 60))
    until [ -s "$work/ready" ]; do
        [ $SECONDS -gt $deadline ] && { echo "the idle sockets did not open" >&2; exit 2; }
        sleep 0.05 # a bounded wait for the socket holder
    done
}

release_sockets() {
    exec 9>&-
    wait "$holder" 2>/dev/null
}

busy_host() {
    start_shelf 1
    mapfile -t args < <(devices 1)
    local quiet=() busy=() held=0
    # Quiet and busy runs alternate, so the load other processes put on the
    # machine falls on both alike.
    for _ in 1 2 3 4 5 6 7; do
        run_harness "$work/one.txt" "${args[@]}" --write-config --actuators --setup --plan "$plan"
        [ "$code" -eq 0 ] || { echo "quiet run failed (exit $code)"; cat "$work/one.txt"; missed=1; }
        quiet+=("$wall")
        hold_sockets
        held=$(cat "$work/ready")
        run_harness "$work/one.txt" "${args[@]}" --write-config --actuators --setup --plan "$plan"
        [ "$code" -eq 0 ] || { echo "busy run failed (exit $code)"; cat "$work/one.txt"; missed=1; }
        busy+=("$wall")
        release_sockets
    done
    local q b
    q=$(median "${quiet[@]}")
    b=$(median "${busy[@]}")
    echo "one hub, quiet host vs $held idle established TCP sockets held by another process (median of 7, alternating):"
    printf '  %-34s %10s s\n' "quiet" "$q" "busy" "$b"
    verdict "busy / quiet" "$(awk -v q="$q" -v b="$b" 'BEGIN { printf "%.2f", b / (q > 0 ? q : 0.01) }')" "<" 1.5 x
}

discover_300() {
    # Inside a private network namespace: the hubs and the browse never
    # touch this machine's network.
    local result
    result=$(unshare -rn bash -s "$bin" <<'EOF'
set -u
bin=$1
ip link set lo up
out=$(mktemp)
"$bin" sim --count 300 --advertise >"$out" 2>/dev/null &
sim=$!
deadline=$((SECONDS + 120))
until [ "$(wc -l <"$out")" -ge 300 ]; do
    if [ $SECONDS -gt $deadline ] || ! kill -0 $sim 2>/dev/null; then echo "fail sim"; exit 0; fi
    sleep 0.05 # a bounded wait for the simulator's output
done
start=$(date +%s%N)
n=$("$bin" discover --expect 300 --timeout 30 --json 2>/dev/null | grep -c '"instance"')
end=$(date +%s%N)
echo "ok $n $(( (end - start) / 1000000 ))"
kill $sim
wait $sim 2>/dev/null
rm -f "$out"
EOF
)
    echo "discovery of 300 advertised hubs (sim --count 300 --advertise), private netns:"
    case "$result" in
    ok*)
        read -r _ found ms <<<"$result"
        verdict "hubs found" "$found" ">=" 300 ""
        verdict "discover --expect 300" "$(awk -v m="$ms" 'BEGIN { printf "%.2f", m / 1000 }')" "<" 2 s
        ;;
    *)
        echo "  could not run: $result"
        missed=1
        ;;
    esac
}

for c in "${cases[@]}"; do
    case "$c" in
    shelf-300) shelf 300 ;;
    shelf-1000) shelf 1000 ;;
    reports-300) shelf 300 reports ;;
    reports-1000) shelf 1000 reports ;;
    busy-host) busy_host ;;
    discover-300) discover_300 ;;
    *)
        echo "unknown case $c" >&2
        exit 2
        ;;
    esac
done
exit "$missed"
