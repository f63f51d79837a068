#!/usr/bin/env bash
# Part 2's campaign at the fast_sgd preset on a 2-core CPU, as resumable sweeps that keep both cores busy.
#
# Run it from a git worktree at a fixed commit, so that code changed meanwhile cannot leak into the runs:
#   git worktree add ../campaign COMMIT && cd ../campaign
#   PYTHON=/path/to/repo/.venv/bin/python RESULTS=/path/to/repo/results bash tools/campaign_fast_sgd.sh STAGE
# The worktree's package is imported first (PYTHONPATH), so its notebooks and code are the ones that run; every
# record names that commit (its metrics' sweep.commit). Stop it at any time (Ctrl-C, or `kill -INT -- -PGID` of a
# campaign started with setsid): every sweep resumes where it stopped when the same stage is run again, without
# redoing a finished combination. Every run uses one torch thread, so its numbers do not depend on the stage.
#
# Stages, in order:
#   shown   the runs the chapters show by default (forgetting at 4x, the LR sweep's batch 128 at factor 1 on the full
#           set, batch 512 at 1.1), two lanes side by side
#   grid    seed 0 of the whole LR sweep, two runs at a time
#   seeds   the forgetting experiment's seeds (3 at 4x first, then 2 at 1/4x) beside claim 1's (5 per batch size, by seed)
#   decide  more seeds where the LR sweep's verdicts are decided, chosen from seed 0's results: give the points with
#           POINTS (e.g. POINTS='batch_size=128 train_size=6250,50000 lr_mult=4,8 seed=1,2'; several sets separated
#           by '|') and, for claim 4b at equal steps, EQUAL_STEPS (e.g. 'train_size=6250 epochs=20 seed=0,1,2')
set -uo pipefail
cd "$(dirname "$0")/.."
RESULTS=${RESULTS:-results}
PYTHON=${PYTHON:-.venv/bin/python}
STAGE=${1:?give a stage: shown, grid, seeds or decide}
LOGS="$RESULTS/fast_sgd/logs"
mkdir -p "$LOGS"

sweep() {
  echo "$(date -u +%FT%TZ) commit $(git rev-parse HEAD): resnet-fast sweep $* --preset fast_sgd --threads 1"
  PYTHONPATH="$PWD" "$PYTHON" -c 'import sys; from resnet_fast.cli import main; sys.exit(main())' \
    sweep "$@" --preset fast_sgd --threads 1 --out "$RESULTS" 2>&1
  rc=$?; [ $rc -eq 130 ] && exit 130  # stopped (Ctrl-C): end this lane here, not go on to its next sweep
  return $rc
}

case "$STAGE" in
  shown)
    sweep forgetting --points 'lr_mult=4 seed=0' >> "$LOGS/lane_a.log" &
    { sweep lr_sweep --points 'batch_size=128 train_size=50000 lr_mult=1 seed=0'
      sweep batch_size --points 'batch_size=512 seed=0'; } >> "$LOGS/lane_b.log" & ;;
  grid)
    sweep lr_sweep --workers 2 >> "$LOGS/lane_a.log" & ;;
  seeds)  # claim 1's seeds interleaved (seed 1 at both batch sizes, then seed 2, ...), so that a stop leaves both sizes equally far
    { sweep forgetting --points 'lr_mult=4'; sweep forgetting; } >> "$LOGS/lane_a.log" &
    { sweep batch_size --points 'seed=0'; for s in 1 2 3 4; do sweep batch_size --points "seed=$s"; done; } >> "$LOGS/lane_b.log" & ;;
  decide)
    { IFS='|' read -ra sets <<< "${POINTS:-}"
      for points in "${sets[@]}"; do [ -n "$points" ] && sweep lr_sweep --workers 2 --points "$points"; done
      [ -n "${EQUAL_STEPS:-}" ] && sweep lr_sweep --workers 2 --points "batch_size=512 $EQUAL_STEPS"; } >> "$LOGS/lane_a.log" & ;;
  *) echo "unknown stage '$STAGE': use shown, grid, seeds or decide" >&2; exit 2 ;;
esac
wait
