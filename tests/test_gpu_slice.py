"""The GPU slice (tools/gpu_slice.sh) at toy scale on the CPU: claim 1's seeds interleaved, then the LR sweep's
brackets, written where the results layer reads them; a rerun redoes nothing; a budget too short for a run stops the
slice cleanly, keeping what finished and leaving no half-written record or running process behind."""
import os, subprocess, sys
from pathlib import Path
from resnet_fast.claims import experiment_table

REPO = Path(__file__).resolve().parents[1]

def gpu_slice(out:Path, budget:int, seeds='0 1'):
    env = os.environ | dict(PRESET='smoke', DEVICE='cpu', BUDGET=str(budget), OUT=str(out), SEEDS=seeds, PYTHON=sys.executable,
                            BRACKETS='batch_size=128 train_size=1000 lr_mult=16 seed=0')
    return subprocess.run(['bash', str(REPO / 'tools' / 'gpu_slice.sh')], env=env, capture_output=True, text=True, timeout=1800)

def test_the_slice_runs_claim_1_by_seed_then_the_brackets_and_a_rerun_redoes_nothing(tmp_path):
    res = gpu_slice(tmp_path / 'results', 1200)
    assert res.returncode == 0 and 'every run done within the budget' in res.stdout, res.stdout[-3000:] + res.stderr[-3000:]
    sweeps = [line.split('resnet-fast sweep ')[1].split(' (')[0] for line in res.stdout.splitlines() if 'resnet-fast sweep ' in line]
    assert sweeps == ['batch_size --points seed=0', 'batch_size --points seed=1', 'lr_sweep --points batch_size=128 train_size=1000 lr_mult=16 seed=0']
    claim1 = experiment_table(tmp_path / 'results' / 'smoke', 'batch_size')
    assert sorted(zip(claim1.batch_size, claim1.seed)) == [(128, 0), (128, 1), (256, 0), (256, 1)]
    brackets = experiment_table(tmp_path / 'results' / 'smoke', 'lr_sweep')
    assert list(brackets.lr_mult) == [16] and list(brackets.batch_size) == [128]
    again = gpu_slice(tmp_path / 'results', 1200)
    assert again.returncode == 0 and again.stdout.count('0 combinations to run') == 3, again.stdout[-3000:]

def test_a_short_budget_stops_the_slice_cleanly_keeping_only_whole_runs(tmp_path):
    res = gpu_slice(tmp_path / 'results', 60)  # 30 s for all its sweeps: far too few for its five runs, each with its own kernel
    assert res.returncode == 0 and 'every run done' not in res.stdout, res.stdout[-3000:] + res.stderr[-3000:]
    assert 'stopped at the budget' in res.stdout or 'the budget is spent' in res.stdout
    for experiment in ('batch_size', 'lr_sweep'):  # whatever finished is whole: a notebook and its metrics, in results.csv; nothing partial
        folder = tmp_path / 'results' / 'smoke' / experiment
        done = sorted(p.stem for p in folder.glob('*.ipynb'))
        assert done == sorted(p.stem for p in folder.glob('*.json') if not p.name.endswith('.failed.json'))
        assert not list(folder.glob('.*partial*'))
        table = experiment_table(tmp_path / 'results' / 'smoke', experiment)
        assert (sorted(table.name) if table is not None else []) == done
    ps = subprocess.run(['ps', '-eo', 'args'], capture_output=True, text=True).stdout
    assert str(tmp_path) not in ps  # no run of the slice is left running
    for budget in ('ten', '30'):
        bad = subprocess.run(['bash', str(REPO / 'tools' / 'gpu_slice.sh')], env=os.environ | dict(BUDGET=budget), capture_output=True, text=True)
        assert bad.returncode == 2 and f"BUDGET={budget} is not allowed" in bad.stderr
