#!/usr/bin/env bash
# Builds the js-subject-tag example plugin into a WebAssembly component.
#
# Usage: plugins/examples/js-subject-tag/build.sh OUT.wasm   (from any directory)
#
# Needs node and npm (tested: node 20), and the npm registry the first time.
# `npm ci` installs the exact versions in package-lock.json into ./node_modules;
# it is skipped when node_modules already matches the lock file (a stamp holds
# the lock file's hash), so a warm build is just the componentize step.
# Concurrent builds are safe (flock).
#
# Toolchain notes (pitfalls of componentize-js 0.23.0 found while measuring):
# - componentize-js is called directly: `jco componentize` cannot read the WIT
#   directory with preview2-shim 0.26 (no preopens).
# - @bytecodealliance/preview2-shim is pinned to 0.25.0 in package.json because
#   componentize-js 0.23.0 needs it at run time without declaring it.
# - `-d http -d fetch-event` keeps wasi:http out of the component's imports;
#   no `--aot` (it downloads weval from GitHub at build time).
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUT.wasm" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out_dir="$(mkdir -p "$(dirname "$1")" && cd "$(dirname "$1")" && pwd)"
out="$out_dir/$(basename "$1")"

# The postern interface is a symlink into the repository's wit/ (one source of
# truth); fail clearly if the checkout lost it.
if [[ ! -f "$here/wit/deps/postern-mta/postern.wit" ]]; then
    echo "$0: $here/wit/deps/postern-mta/postern.wit is missing (symlink to wit/postern.wit)" >&2
    exit 1
fi

cd "$here"
(
    # Concurrent builds must not run `npm ci` (which empties node_modules) at once.
    flock 9
    stamp=node_modules/.postern-lock.sha256
    lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
    if [[ ! -x node_modules/.bin/componentize-js || "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]]; then
        npm ci --no-audit --no-fund
        echo "$lock_hash" > "$stamp"
    fi
) 9> .npm-ci.lock

# Write next to OUT and rename, so a watcher never sees a half-written file.
tmp="$(mktemp "$out.XXXXXX.tmp")"
trap 'rm -f "$tmp"' EXIT
node_modules/.bin/componentize-js \
    --wit wit --world-name subject-tag \
    -d http -d fetch-event \
    -o "$tmp" app.js
chmod "$(printf %o $((0666 & ~0$(umask))))" "$tmp"  # mktemp made it 0600
mv -f "$tmp" "$out"
trap - EXIT
echo "built $out ($(stat -c %s "$out") bytes)"
