#!/usr/bin/env bash
# Create the virtual environment (if missing) and install ee-asr with what it needs.
#   VENV=.venv  PYTHON=python3  TORCH_SPEC="torch==2.13.0"  TORCH_PIP_OPTS=""  VENV_OPTS=""
# A torch already importable in the venv is kept (use VENV_OPTS=--system-site-packages to see
# a system-wide CUDA torch); otherwise TORCH_SPEC is installed. Every later install is
# constrained to the torch found, so no dependency can swap in a CUDA build.
set -euo pipefail
venv=${VENV:-.venv}
python=${PYTHON:-python3}
torch_spec=${TORCH_SPEC:-torch==2.13.0}

if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv with $($python --version)"
  # shellcheck disable=SC2086
  "$python" -m venv ${VENV_OPTS:-} "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
fi
pip=("$venv/bin/python" -m pip install -q)
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "installing $torch_spec"
  # shellcheck disable=SC2086
  "${pip[@]}" ${TORCH_PIP_OPTS:-} "$torch_spec"
fi
torch_version=$("$venv/bin/python" -c "import torch; print(torch.__version__)")
echo "torch==$torch_version" > "$venv/torch-constraint.txt"
echo "using torch $torch_version"
"${pip[@]}" --no-deps espnet==202511
"${pip[@]}" -c "$venv/torch-constraint.txt" -r requirements.txt
"${pip[@]}" -c "$venv/torch-constraint.txt" --no-deps -e .
"$venv/bin/python" -c "import ee_asr.models.registry" 2>&1 | grep -v flash_attn || true
touch "$venv/.installed"
echo "installed into $venv"
