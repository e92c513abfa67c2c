# Sourced by every recipe: puts the repository's .venv and package first.
MAIN_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
export MAIN_ROOT
if [ -x "$MAIN_ROOT/.venv/bin/python" ]; then
  export PATH="$MAIN_ROOT/.venv/bin:$PATH"
fi
export PYTHONPATH="$MAIN_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export LC_ALL=C
