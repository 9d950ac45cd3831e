#!/usr/bin/env bash
# The base install (no PyTorch) on every Python the package supports that this machine has:
# a fresh venv per version, `pip install .`, `active demo`, and the test files that need no
# PyTorch. Not part of the default test run (each version is a full install, minutes each).
#
#   bash scripts/check_pythons.sh [3.11 3.12 3.13]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if (($#)); then versions=("$@"); else versions=(3.11 3.12 3.13); fi
tests=(tests/test_analysis_report.py tests/test_analyze_cli.py tests/test_ap.py
       tests/test_bad_input.py tests/test_batch.py tests/test_formats.py tests/test_io.py
       tests/test_report.py tests/test_splits.py tests/test_synth.py tests/test_video.py
       tests/test_layers.py)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
status=0
for v in "${versions[@]}"; do
  py="$(command -v "python$v" || true)"
  if [[ -z "$py" && -x "$HOME/.pyenv/bin/pyenv" ]]; then
    # only an installed pyenv version of this minor (pyenv prefix "" would name the current one)
    match="$("$HOME/.pyenv/bin/pyenv" versions --bare | grep "^$v\." | tail -1 || true)"
    [[ -n "$match" ]] && py="$HOME/.pyenv/versions/$match/bin/python"
  fi
  if [[ -z "$py" || ! -x "$py" ]]; then echo "python $v: not found, skipped"; continue; fi
  env="$work/py$v"
  "$py" -m venv "$env"
  if "$env/bin/pip" install -q "$root" pytest pytest-timeout hypothesis httpx >"$work/pip-$v.log" 2>&1 \
     && (cd "$work" && "$env/bin/active" demo >"$work/demo-$v.log" 2>&1) \
     && "$env/bin/python" -c "import active.inference.detect, sys; assert 'torch' not in sys.modules" \
     && (cd "$root" && "$env/bin/python" -m pytest -q -p no:cacheprovider "${tests[@]}" | tail -1); then
    echo "python $v ($("$env/bin/python" -V)): base install, demo and torch-free tests passed"
  else
    echo "python $v: FAILED (logs in $work, kept)"; trap - EXIT; status=1
  fi
done
exit $status
