#!/usr/bin/env bash
# Part 2 on a GPU lent for a few minutes: claim 1 (batch 512 at 1.1x against batch 128 at 1x, seeds interleaved so
# that a stop leaves both batch sizes equally far) and then the instability brackets on the full set, at the article's
# own preset, as resumable sweeps that stop themselves before the budget is spent.
#
#   BUDGET=540 bash tools/gpu_slice.sh                      # on the GPU machine, from the repository's root
#   PRESET=smoke DEVICE=cpu BUDGET=300 OUT=toy-results SEEDS='0 1' BRACKETS='batch_size=128 train_size=1000 lr_mult=1,16 seed=0' \
#     bash tools/gpu_slice.sh                                # the same at toy scale on a CPU (the smoke grid's sizes)
#
# Every sweep gets what is left of BUDGET seconds (`timeout -s INT`): at the deadline the run in flight is recorded
# as interrupted and every finished one is kept under OUT/PRESET/EXPERIMENT/ (the records the results chapter
# reads), so running the script again, with a new budget, goes on where it stopped without redoing a finished run.
# The script exits 0 when the budget ends the work, and with the sweep's own status when a sweep fails.
#
# Settings (environment):
#   BUDGET    seconds the whole slice may take, at least 60 (default 540: a 10-minute call with time to copy the records back)
#   PRESET    the scale (default paper: ResNet-18, 35 epochs, the article's exact settings)
#   DEVICE    where to train (default cuda)
#   OUT       results folder (default results)
#   SEEDS     claim 1's seeds, in order (default '0 1 2 3 4')
#   BRACKETS  the LR sweep's points, one set per sweep, sets separated by '|' (default: batch 128 at factors 4-16 and
#             batch 512 at 1-4, full set, seed 0: the factors around where the article puts each instability)
#   PYTHON    the interpreter that has torch and papermill (default .venv/bin/python if present, else python3)
set -uo pipefail
cd "$(dirname "$0")/.."
BUDGET=${BUDGET:-540}; PRESET=${PRESET:-paper}; DEVICE=${DEVICE:-cuda}; OUT=${OUT:-results}; SEEDS=${SEEDS:-0 1 2 3 4}
BRACKETS=${BRACKETS:-batch_size=128 train_size=50000 lr_mult=4,8,16 seed=0|batch_size=512 train_size=50000 lr_mult=1,2,4 seed=0}
if [ -z "${PYTHON:-}" ]; then if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi; fi
case "$BUDGET" in ''|*[!0-9]*) echo "gpu_slice: BUDGET=$BUDGET is not allowed: give whole seconds (at least 60)" >&2; exit 2 ;; esac
BUDGET=$((10#$BUDGET))  # 0540 is 540 seconds, not octal
[ "$BUDGET" -ge 60 ] || { echo "gpu_slice: BUDGET=$BUDGET is not allowed: give whole seconds (at least 60)" >&2; exit 2; }
end=$((SECONDS + BUDGET))

sweep() {
  local left=$((end - SECONDS - 30))  # 30 s to record the run in flight as interrupted (killed 15 s after the interrupt at worst)
  if [ $left -le 0 ]; then echo "gpu_slice: the budget is spent; not started: sweep $*"; exit 0; fi
  echo "$(date -u +%FT%TZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown): resnet-fast sweep $* ($left s left)"
  PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" timeout -s INT -k 15 "$left" "$PYTHON" -c 'import sys; from resnet_fast.cli import main; sys.exit(main())' \
    sweep "$@" --preset "$PRESET" --device "$DEVICE" --out "$OUT"
  local rc=$?
  # 124: timeout interrupted it at the deadline; 137: killed 15 s later, still not stopped; 130: stopped by a Ctrl-C
  if [ $rc -eq 124 ] || [ $rc -eq 137 ] || [ $rc -eq 130 ]; then echo "gpu_slice: stopped at the budget; run it again to go on"; exit 0; fi
  [ $rc -eq 0 ] || { echo "gpu_slice: sweep $1 failed (exit $rc)" >&2; exit $rc; }
}

for seed in $SEEDS; do sweep batch_size --points "seed=$seed"; done
IFS='|' read -ra sets <<< "$BRACKETS"
for points in "${sets[@]}"; do sweep lr_sweep --points "$points"; done
echo "gpu_slice: every run done within the budget"
