#!/usr/bin/env bash
# Part 2's campaign at the fast_sgd preset on a 2-core CPU: two lanes of resumable sweeps side by side, one core each.
#
# Run it from a git worktree at a fixed commit, so that code changed meanwhile cannot leak into the runs:
#   git worktree add ../campaign COMMIT && cd ../campaign
#   PYTHON=/path/to/repo/.venv/bin/python RESULTS=/path/to/repo/results bash tools/campaign_fast_sgd.sh [stage]
# The worktree's package is imported first (PYTHONPATH), so its notebooks and code are the ones that run; every
# record names that commit (its metrics' sweep.commit). Stop it at any time (Ctrl-C, or kill the lanes): every sweep
# resumes where it stopped when the script is run again, without redoing a finished combination.
#
# Stages (the argument; default seed0):
#   seed0  the runs the chapters show first, then seed 0 of every experiment's grid, then claim 1's seeds
#   seeds  more seeds where the verdicts are decided: give the points with POINTS_128, POINTS_512 and EQUAL_STEPS
#          (e.g. POINTS_128='train_size=6250,50000 lr_mult=4,8,16 seed=1,2'), chosen from seed 0's results
set -uo pipefail
cd "$(dirname "$0")/.."
RESULTS=${RESULTS:-results}
PYTHON=${PYTHON:-.venv/bin/python}
STAGE=${1:-seed0}
LOGS="$RESULTS/fast_sgd/logs"
mkdir -p "$LOGS"

sweep() {  # one core per lane: the two lanes together use the machine, each run with one torch thread
  echo "$(date -u +%FT%TZ) commit $(git rev-parse HEAD): resnet-fast sweep $* --preset fast_sgd --workers 1 --threads 1"
  PYTHONPATH="$PWD" "$PYTHON" -c 'import sys; from resnet_fast.cli import main; sys.exit(main())' \
    sweep "$@" --preset fast_sgd --workers 1 --threads 1 --results-dir "$RESULTS" 2>&1
}

case "$STAGE" in
  seed0)
    lane_a() {
      sweep forgetting --points 'lr_mult=4 seed=0'  # the run chapter 04 shows
      sweep forgetting
      sweep batch_size --points 'batch_size=128'
    }
    lane_b() {
      sweep lr_sweep --points 'batch_size=128 train_size=50000 lr_mult=1 seed=0'  # the run chapter 05 shows
      sweep batch_size --points 'batch_size=512 seed=0'  # the run chapter 03 shows
      sweep lr_sweep
      sweep batch_size --points 'batch_size=512'
    } ;;
  seeds)
    lane_a() { [ -n "${POINTS_128:-}" ] && sweep lr_sweep --points "batch_size=128 $POINTS_128"; }
    lane_b() {
      [ -n "${POINTS_512:-}" ] && sweep lr_sweep --points "batch_size=512 $POINTS_512"
      [ -n "${EQUAL_STEPS:-}" ] && sweep lr_sweep --points "batch_size=512 $EQUAL_STEPS"
    } ;;
  *) echo "unknown stage '$STAGE': use seed0 or seeds" >&2; exit 2 ;;
esac

# Ctrl-C (or `kill -INT -- -PGID` of a campaign started with setsid) stops both lanes' sweeps cleanly.
lane_a >> "$LOGS/lane_a.log" &
lane_b >> "$LOGS/lane_b.log" &
wait
