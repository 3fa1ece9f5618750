#!/usr/bin/env bash
# The whole test suite: the README's test command, also run by .ci/run.
# Installs, with the system's package manager, the few tools the tests
# drive besides cargo: xmllint (JUnit files are validated against
# ci/junit-10.xsd), and unshare/ip/script (mDNS tests run in their own
# network namespace; terminal tests use a pseudo-terminal), and, with pip,
# the public Python clients the compatibility tests run against the
# simulator (ci/compat-venv.sh: target/compat-venv, pinned versions).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v xmllint >/dev/null || need+=(libxml2-utils)
command -v ip >/dev/null || need+=(iproute2)
{ command -v unshare >/dev/null && command -v script >/dev/null; } || need+=(util-linux)
if ((${#need[@]})) && [[ $(uname -s) == Linux ]] && command -v apt-get >/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "ci/test.sh: installing ${need[*]}" >&2
    $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
ci/compat-venv.sh
exec cargo test "$@"
