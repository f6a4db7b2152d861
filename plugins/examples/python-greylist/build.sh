#!/usr/bin/env bash
# Builds the python-greylist example plugin into a WebAssembly component.
#
# Usage: plugins/examples/python-greylist/build.sh OUT.wasm   (from any directory)
#
# Needs python3 (tested: 3.11) with the venv module (Debian: apt-get install
# python3-venv), and PyPI the first time. The venv holding componentize-py is a
# cache: $POSTERN_PY_VENV, default target/py-venv under the repository root.
# It is created and filled from requirements.txt when missing or when
# requirements.txt changed (a stamp holds its hash), so a warm build is just
# the componentize step. Concurrent builds share the venv safely (flock).
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUT.wasm" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out_dir="$(mkdir -p "$(dirname "$1")" && cd "$(dirname "$1")" && pwd)"
out="$out_dir/$(basename "$1")"
venv="${POSTERN_PY_VENV:-$root/target/py-venv}"

# The postern interface is a symlink into the repository's wit/ (one source of
# truth); fail clearly if the checkout lost it.
if [[ ! -f "$here/wit/deps/postern-mta/postern.wit" ]]; then
    echo "$0: $here/wit/deps/postern-mta/postern.wit is missing (symlink to wit/postern.wit)" >&2
    exit 1
fi

mkdir -p "$(dirname "$venv")"
(
    flock 9
    stamp="$venv/.postern-requirements.sha256"
    req_hash="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
    if [[ -x "$venv/bin/componentize-py" && "$(cat "$stamp" 2>/dev/null)" == "$req_hash" ]]; then
        exit 0
    fi
    if [[ ! -x "$venv/bin/python" ]]; then
        python3 -m venv "$venv" || {
            echo "$0: cannot create a venv in $venv (Debian: apt-get install python3-venv)" >&2
            exit 1
        }
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    echo "$req_hash" > "$stamp"
) 9> "$venv.lock"

# componentize-py adds $VIRTUAL_ENV's site-packages to the Python path, and
# otherwise whatever `python3` on PATH has: point it at our venv, so the
# result does not depend on the machine's other Python packages.
cd "$here"
tmp="$(mktemp "$out.XXXXXX.tmp")"
trap 'rm -f "$tmp"' EXIT
VIRTUAL_ENV="$venv" "$venv/bin/componentize-py" --quiet \
    -d wit -w greylist \
    componentize app -p . -o "$tmp"
chmod "$(printf %o $((0666 & ~0$(umask))))" "$tmp"  # mktemp made it 0600
mv -f "$tmp" "$out"
trap - EXIT
echo "built $out ($(stat -c %s "$out") bytes)"
