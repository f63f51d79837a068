"""The experiment notebooks run end to end under papermill (smoke preset), with the commands the docs show.

The sweep runner's tests (grids, time estimate, resuming, failures, faults) are in test_sweep.py and test_sweep_ray.py."""
import json, subprocess, sys
from pathlib import Path
import pytest
from resnet_fast.forgetting import forgetting_schedule
from resnet_fast.records import write_atomic
from resnet_fast.presets import PRESETS

REPO = Path(__file__).resolve().parents[1]
PAPERMILL = [sys.executable, '-m', 'papermill']

@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '1')  # many small kernels: one thread each is fastest on 2 cores

def test_forgetting_schedule():
    s = forgetting_schedule(PRESETS['paper'].recipe().schedule, 5, 25).at(30, 128, 0.25)  # the ResNet-18 recipe's peak at batch 128 is 0.1
    assert s(5) == pytest.approx(0.025) and s(30) == pytest.approx(0.025) and s(0) == 0

def test_bad_parameter_in_papermill_fails_fast(tmp_path):
    res = subprocess.run(PAPERMILL + [str(REPO / 'nbs' / '05_lr_sweep.ipynb'), str(tmp_path / 'o.ipynb'), '-p', 'lr_mult', '-1',
                                      '-r', 'preset', 'smoke', '--cwd', str(REPO / 'nbs')], capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and 'lr_mult=-1' in res.stderr + res.stdout

def test_forgetting_notebook_with_the_issue_command(tmp_path):
    "The documented command shape, from the repository root, with the smoke preset and a non-diverging lr_mult."
    out, metrics = tmp_path / 'out.ipynb', tmp_path / 'm.json'
    res = subprocess.run(PAPERMILL + ['nbs/04_forgetting.ipynb', str(out), '-p', 'lr_mult', '0.25', '-r', 'preset', 'smoke',
                                      '-r', 'metrics_path', str(metrics)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    m = json.loads(metrics.read_text())
    assert m['params']['lr_mult'] == 0.25 and not m['summary']['diverged']
    p = PRESETS['smoke']; epochs = p.forgetting_warmup + p.forgetting_constant
    models = range(max(1, epochs - 2), epochs + 1)  # the last three epochs' models, each replaying the epochs before it
    assert [r['model_epoch'] for r in m['replay_models']] == list(models)
    assert len(m['replay']) == sum(min(p.forgetting_replay, e) for e in models) * (p.train_size // 128)
    assert all(r['loss'] > 0 for r in m['replay'])
    ages = [r['age_unseen'] for r in m['replay_models']]
    assert m['summary']['forgetting_age_unseen'] == pytest.approx(sum(p.forgetting_replay if a is None else a for a in ages) / len(ages))

def test_write_atomic_leaves_no_partial_file(tmp_path):
    write_atomic(tmp_path / 'a.json', '{"x": 1}')
    assert json.loads((tmp_path / 'a.json').read_text()) == {'x': 1} and [p.name for p in tmp_path.iterdir()] == ['a.json']

def test_the_card_command_from_a_fresh_clone_shows_the_committed_run(tmp_path):
    "`papermill nbs/04_forgetting.ipynb out.ipynb -p lr_mult 4`, from the repository root, finds the committed run of the default preset and trains nothing."
    out, metrics = tmp_path / 'out.ipynb', tmp_path / 'm.json'
    res = subprocess.run(PAPERMILL + ['nbs/04_forgetting.ipynb', str(out), '-p', 'lr_mult', '4', '-r', 'metrics_path', str(metrics)],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    committed = json.loads((REPO / 'results' / 'fast_sgd' / 'forgetting' / 'lr_mult=4_seed=0.json').read_text())
    shown = json.loads(metrics.read_text())
    assert shown['summary'] == pytest.approx(committed['summary']) and 'showing the committed result' in out.read_text()
