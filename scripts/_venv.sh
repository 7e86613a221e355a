# Sourced by the other scripts: a virtual environment in .venv with uprof installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${UPROF_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
# Re-install only when pyproject.toml changed since the last install.
stamp="$VENV/.uprof-installed-$1"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  echo "==> installing uprof ($1) into $VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  if [ "$1" = "test" ] || [ "$1" = "bench" ]; then
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[$1]"
  else
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[sqlite,native]"
  fi
  touch "$stamp"
fi

# The request path compiled to C for these sources (uprof.native): once per version of the
# sources, and never needed: without it the same code serves interpreted. The tests use a build
# that matches and do not make one (an edit would mean a minute's wait before every run).
native_build() {
  if ! UPROF_NATIVE=auto "$VENV/bin/uprof" native status | grep -q "^on:"; then
    echo "==> compiling the request path with mypyc (once for these sources, ~1 min)" >&2
    "$VENV/bin/uprof" native build >&2 \
      || echo "==> the native build failed; serving the interpreted code, as fast as before it" >&2
  fi
}
if [ "$1" != "test" ]; then
  native_build
fi
