"The experiment notebooks run end to end under papermill (smoke preset), and the sweep runner resumes and survives failures."
import csv, json, os, shutil, subprocess, sys
from pathlib import Path
import pytest
from resnet_fast.experiments import (PRESETS, check_parameters, combination_name, combination_work, forgetting_schedule, get_experiments,
                                     get_preset, sweep, write_atomic)

REPO = Path(__file__).resolve().parents[1]
PAPERMILL = [sys.executable, '-m', 'papermill']

@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '1')  # many small kernels: one thread each is fastest on 2 cores

def test_grids_and_names():
    cpu = PRESETS['cpu']
    assert len(get_experiments('lr_sweep')[0].grid(cpu)) == 8 * 4 * 2
    assert {(d['batch_size'], d['lr_mult']) for d in get_experiments('batch_size')[0].grid(cpu)} == {(128, 1.0), (512, 1.1)}
    assert [d['lr_mult'] for d in get_experiments('forgetting')[0].grid(cpu)] == [4, 0.25]
    assert combination_name(dict(seed=0, lr_mult=0.125, batch_size=128)) == 'batch_size=128_lr_mult=0.125_seed=0'
    assert len(get_experiments('all')) == 3
    s = forgetting_schedule(5, 25, 0.25)  # the ResNet-18 recipe's peak at batch 128 is 0.1
    assert s(5) == pytest.approx(0.025) and s(30) == pytest.approx(0.025) and s(0) == 0

def test_time_estimate_weighs_combinations_by_their_images():
    cpu = PRESETS['cpu']
    small, full = (combination_work('lr_sweep', dict(train_size=n, batch_size=128, lr_mult=1), cpu) for n in (6_250, 50_000))
    assert small == pytest.approx(cpu.epochs * (6_250 + 10_000 / 3)) and full == pytest.approx(cpu.epochs * (50_000 + 10_000 / 3))
    assert combination_work('batch_size', dict(batch_size=512), cpu) == full  # the full training set
    assert combination_work('forgetting', dict(lr_mult=4), cpu) > 2 * full  # 10 epochs of 25,000 + 50,000 images

@pytest.mark.parametrize('call, message', [
    (lambda: get_preset('huge'), "preset='huge'"), (lambda: get_experiments('mnist'), "experiment='mnist'"),
    (lambda: check_parameters('cpu', lr_mult=0), 'lr_mult=0'), (lambda: check_parameters('cpu', lr_mult=-4), 'lr_mult=-4'),
    (lambda: check_parameters('cpu', train_size=50_001), 'train_size=50001'), (lambda: check_parameters('cpu', train_size=0), 'train_size=0'),
    (lambda: sweep('mnist', 'smoke'), "experiment='mnist'"), (lambda: sweep('all', 'huge'), "preset='huge'"),
    (lambda: sweep('all', 'smoke', workers=0), 'workers=0'), (lambda: sweep('all', 'smoke', device='tpu'), "device='tpu'")])
def test_bad_parameters_fail_before_training(call, message):
    with pytest.raises(ValueError, match=message): call()

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
    assert len(m['replay']) == PRESETS['smoke'].forgetting_replay * (PRESETS['smoke'].train_size // 128)
    assert all(r['loss'] > 0 for r in m['replay'])

def test_sweep_all_smoke_runs_resumes_and_collects(tmp_path):
    counts = sweep('all', 'smoke', tmp_path, progress=False)
    assert counts == dict(done=8, skipped=0, failed=0)
    for name, n in [('batch_size', 2), ('forgetting', 2), ('lr_sweep', 4)]:
        d = tmp_path / 'smoke' / name
        assert len(list(d.glob('*.ipynb'))) == n and len(list(d.glob('*=*.json'))) == n
        rows = list(csv.DictReader((d / 'results.csv').open()))
        assert len(rows) == n and all(r['status'] == 'ok' for r in rows)
    assert not list(tmp_path.rglob('*.tmp')) and not list(tmp_path.rglob('.*partial*'))
    lr = list(csv.DictReader((tmp_path / 'smoke' / 'lr_sweep' / 'results.csv').open()))
    assert {r['diverged'] for r in lr} <= {'True', 'False'} and all(r['test_loss'] for r in lr)
    # a second sweep skips everything; a half-written leftover is not mistaken for a result
    stray = tmp_path / 'smoke' / 'forgetting' / '.lr_mult=4_seed=0.partial.ipynb'; stray.write_text('{"half": ')
    done = tmp_path / 'smoke' / 'forgetting' / 'lr_mult=4_seed=0.json'; before = done.read_text()
    assert sweep('all', 'smoke', tmp_path, progress=False) == dict(done=0, skipped=8, failed=0)
    assert done.read_text() == before
    # the results notebook draws its figures from what the sweep collected
    res = subprocess.run(PAPERMILL + ['nbs/06_results.ipynb', str(tmp_path / 'results.ipynb'), '-r', 'preset', 'smoke',
                                      '-r', 'results_dir', str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    outputs = json.loads((tmp_path / 'results.ipynb').read_text())['cells']
    images = [o for c in outputs for o in c.get('outputs', []) if 'image/png' in o.get('data', {})]
    assert len(images) >= 2

def test_sweep_survives_a_failing_combination_and_retries_it(tmp_path):
    nbs = tmp_path / 'nbs'; nbs.mkdir()
    nb = json.loads((REPO / 'nbs' / '05_lr_sweep.ipynb').read_text())
    i = next(i for i, c in enumerate(nb['cells']) if 'parameters' in c.get('metadata', {}).get('tags', []))
    nb['cells'].insert(i + 1, dict(cell_type='code', metadata={}, execution_count=None, outputs=[],
                                   source="if lr_mult == 16: raise RuntimeError('simulated crash in combination lr_mult=16')"))
    (nbs / '05_lr_sweep.ipynb').write_text(json.dumps(nb))
    counts = sweep('lr_sweep', 'smoke', tmp_path / 'results', nbs_dir=nbs, progress=False)
    assert counts == dict(done=2, skipped=0, failed=2)
    d = tmp_path / 'results' / 'smoke' / 'lr_sweep'
    failed = sorted(d.glob('*.failed.json'))
    assert len(failed) == 2 and all('simulated crash' in json.loads(f.read_text())['reason'] for f in failed)
    assert not (d / 'batch_size=128_lr_mult=16_seed=0_train_size=1000.json').exists()
    rows = list(csv.DictReader((d / 'results.csv').open()))
    assert sorted(r['status'] for r in rows) == ['failed', 'failed', 'ok', 'ok']
    # once the cause is fixed, the next sweep runs only the failed combinations
    shutil.copy(REPO / 'nbs' / '05_lr_sweep.ipynb', nbs / '05_lr_sweep.ipynb')
    assert sweep('lr_sweep', 'smoke', tmp_path / 'results', nbs_dir=nbs, progress=False) == dict(done=2, skipped=2, failed=0)
    assert not list(d.glob('*.failed.json'))

def test_write_atomic_leaves_no_partial_file(tmp_path):
    write_atomic(tmp_path / 'a.json', '{"x": 1}')
    assert json.loads((tmp_path / 'a.json').read_text()) == {'x': 1} and [p.name for p in tmp_path.iterdir()] == ['a.json']
