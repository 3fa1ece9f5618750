#!/usr/bin/env bash
# Compile and lint the crate for Windows and macOS from this Linux machine:
# `cargo clippy -D warnings` of lib, bin and tests (clippy type-checks as it
# goes, so a compile error fails it like `cargo check` would) for each
# target in CROSS_TARGETS.
#
# How: Debian's rustc-web with its matching std sources builds the targets'
# std (-Zbuild-std, allowed on a stable compiler by RUSTC_BOOTSTRAP=1); no
# Windows or Apple SDK is needed to type-check. The rustup toolchain cannot
# do this (no matching std sources for it).
#
# Cost (measured on 2 shared cores): the packages install once (about
# 20 s); the first run builds each target's std and dependencies, about
# 4-5 minutes a target on a busy machine; later runs reuse the target
# directory below, outside the checkout, so a fresh clone on the same
# machine is checked in about 20 s for the four targets after a source
# change, 1-2 s with none.
#
#   CROSS_TARGETS   targets to check (default: Windows msvc and gnu, macOS
#                   Apple silicon and Intel)
#   CROSS_CACHE     target directory (default: ~/.cache/vegehub-harness/cross-check)
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(${CROSS_TARGETS:-x86_64-pc-windows-msvc x86_64-pc-windows-gnu aarch64-apple-darwin x86_64-apple-darwin})
cache=${CROSS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vegehub-harness/cross-check}

packages=(rustc-web cargo-web rust-web-src libstd-rust-web-dev rust-web-clippy)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || {
        echo "cross-check: needs Debian's ${missing[*]} (apt-get not found)" >&2
        exit 1
    }
    sudo=()
    [[ $(id -u) == 0 ]] || sudo=(sudo)
    echo "cross-check: installing ${missing[*]}" >&2
    "${sudo[@]}" apt-get update -qq
    # Installed together so rust-web-src matches rustc-web's version.
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${packages[@]}" >/dev/null
fi

# Debian's tools live in /usr/bin; put them before rustup's. The rustup
# proxies' own settings must not leak into Debian's cargo.
unset RUSTUP_TOOLCHAIN CARGO_BUILD_TARGET
export PATH=/usr/bin:$PATH RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$cache
mkdir -p "$cache"

target_args=()
for t in "${targets[@]}"; do target_args+=(--target "$t"); done

echo "cross-check: clippy for ${targets[*]} ($(rustc --version))" >&2
start=$SECONDS
cargo clippy --quiet --locked -Zbuild-std=std,panic_abort --all-targets "${target_args[@]}" \
    -- -D warnings
echo "cross-check: passed in $((SECONDS - start)) s" >&2
