#!/usr/bin/env bash
# Make (or bring up to date) target/compat-venv: a Python virtual
# environment with the public clients of ci/compat-requirements.txt, which
# the compatibility tests (tests/it/compat.rs) run against the simulator.
# Run by ci/test.sh; idempotent and quick when nothing changed (a stamp
# holds the requirements it was made from).
#
# The `vegehub` client declares Python >= 3.12. The interpreter is, in
# order: $VEGEHUB_COMPAT_PYTHON, python3.13, python3.12, python3 when new
# enough, then pyenv's 3.12+ builds. Where there is none (the machine's
# python3 is 3.11), python3 >= 3.11 is used with pip's
# --ignore-requires-python, said on stderr: the client's code runs on 3.11
# (checked), and the tests must not depend on an interpreter a machine may
# lack. None of these: exit 1 saying so.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/compat-venv
req=ci/compat-requirements.txt
stamp=$venv/.requirements

new_enough() { # PYTHON [MINOR], default 12
    "$1" -c "import sys; sys.exit(0 if sys.version_info >= (3, ${2:-12}) else 1)" 2>/dev/null
}

pick_python() {
    local c
    for c in "${VEGEHUB_COMPAT_PYTHON:-}" python3.13 python3.12 python3; do
        [[ -n $c ]] && command -v "$c" >/dev/null && new_enough "$c" && { command -v "$c"; return; }
    done
    local root
    root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
    for c in $(ls -d "$root"/versions/3.1[2-9]* 2>/dev/null | sort -rV); do
        new_enough "$c/bin/python3" && { echo "$c/bin/python3"; return; }
    done
    return 1
}

if [[ -x $venv/bin/python ]] && new_enough "$venv/bin/python" 11 && cmp -s "$req" "$stamp"; then
    exit 0
fi
pip_extra=()
if ! py=$(pick_python); then
    if command -v python3 >/dev/null && new_enough python3 11; then
        py=$(command -v python3)
        pip_extra=(--ignore-requires-python)
        echo "ci/compat-venv.sh: no Python >= 3.12 here; installing the clients for" \
            "$("$py" --version) with --ignore-requires-python" >&2
    else
        echo "ci/compat-venv.sh: no Python >= 3.11 found (the vegehub client wants 3.12);" \
            "install one (e.g. pyenv install 3.12) or set VEGEHUB_COMPAT_PYTHON" >&2
        exit 1
    fi
fi
echo "ci/compat-venv.sh: making $venv with $("$py" --version) from $req" >&2
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    ${pip_extra[@]+"${pip_extra[@]}"} -r "$req"
cp "$req" "$stamp"
