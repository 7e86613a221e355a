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
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[sqlite]"
  fi
  touch "$stamp"
fi
