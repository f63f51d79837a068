"""The sweep (chapters 06_grids, 06a_runs and 06b_sweep): grids, the table it keeps, and what it does when things go wrong.

Every real run here uses the `smoke` preset (seconds a run) and one torch thread. The fault-injection tests start
sweeps as separate processes, signal or kill them, and check that each ends with every combination present exactly
once, no process of the sweep left running and a `results.csv` that matches the files."""
import csv, json, os, signal, shutil, subprocess, sys, time
from pathlib import Path
import pytest
from resnet_fast.grids import EXPERIMENTS, collect, combination_work, get_experiments, is_combination_file, select_points, read_metrics
from resnet_fast.runs import rerun_command
from resnet_fast.sweep import FolderLock, SweepBusy, sweep
from resnet_fast.records import combination_name
from resnet_fast.presets import PRESETS

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get('RESNET_FAST_DATA') or Path('~/.cache/resnet_fast/cifar10').expanduser()).resolve()
LR_NAMES = sorted(combination_name(g) for g in EXPERIMENTS['lr_sweep'].grid(PRESETS['smoke']))
DRIVER = """
import json, sys
from resnet_fast.sweep import sweep, SweepBusy
try: print('counts', json.dumps(sweep(**json.loads(sys.argv[1]))), flush=True)
except SweepBusy as e: print(e, file=sys.stderr, flush=True); sys.exit(3)
"""

# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------
def marked(marker) -> list[int]:
    "Processes of runs of the sweep writing `marker` (their environment holds RESNET_FAST_SWEEP=marker): papermill and kernels."
    key, out = f'RESNET_FAST_SWEEP={marker}'.encode(), []
    for d in filter(str.isdigit, os.listdir('/proc')):
        try:
            if key in Path(f'/proc/{d}/environ').read_bytes().split(b'\0') and Path(f'/proc/{d}/stat').read_text().rsplit(')', 1)[1].split()[0] != 'Z':
                out.append(int(d))
        except (OSError, IndexError): pass
    return out

def alive(pid:int) -> bool:
    "Whether process `pid` is running (a zombie has ended: only its exit status is left for its parent)."
    try: return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0] not in ('Z', 'X')
    except (OSError, IndexError): return False

def kernels(marker) -> list[int]:
    return [p for p in marked(marker) if b'ipykernel' in Path(f'/proc/{p}/cmdline').read_bytes()]

def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond(): return
        time.sleep(0.2)
    raise AssertionError(f'timed out after {timeout} s waiting for {what}')

def rows(d:Path) -> list[dict]:
    with open(d / 'results.csv', newline='') as f: return list(csv.DictReader(f))

def assert_complete(d:Path, names=LR_NAMES):
    "Every combination present exactly once and complete, nothing staged or failed left, results.csv as the files say, nothing running."
    metrics = sorted(p.stem for p in d.glob('*.json') if is_combination_file(p))
    assert metrics == sorted(names) and all(read_metrics(d / f'{n}.json') for n in names)
    assert sorted(p.stem for p in d.glob('*=*.ipynb')) == sorted(names)
    assert not list(d.glob('.*partial*')) and not list(d.glob('*.failed.*')) and not list(d.glob('.*.tmp'))
    table = rows(d)
    assert sorted(r['name'] for r in table) == sorted(names) and {r['status'] for r in table} == {'ok'}
    before = (d / 'results.csv').read_text()
    assert collect(d).read_text() == before  # rebuilt from the files alone: the same table
    assert marked(d) == []

def start_driver(log:Path, **kwargs) -> subprocess.Popen:
    kwargs = {k: str(v) if isinstance(v, Path) else v for k, v in kwargs.items()}
    return subprocess.Popen([sys.executable, '-c', DRIVER, json.dumps(kwargs)], stdout=log.open('w'), stderr=subprocess.STDOUT,
                            start_new_session=True)

def summaries(d:Path) -> dict:
    "Every combination's summary without timings: the numbers that must not depend on how the sweep ran."
    return {p.stem: {k: v for k, v in read_metrics(p)['summary'].items() if 'time' not in k} for p in sorted(d.glob('*=*.json'))}

@pytest.fixture
def lr_dir(tmp_path):
    return tmp_path / 'results' / 'smoke' / 'lr_sweep'

# ---------------------------------------------------------------------------------------------------------------
# grids, names and checks before any work
# ---------------------------------------------------------------------------------------------------------------
def test_grids_and_names():
    cpu = PRESETS['cpu']
    assert len(get_experiments('lr_sweep')[0].grid(cpu)) == 8 * 4 * 2
    assert {(d['batch_size'], d['lr_mult']) for d in get_experiments('batch_size')[0].grid(cpu)} == {(128, 1.0), (512, 1.1)}
    assert [d['lr_mult'] for d in get_experiments('forgetting')[0].grid(cpu)] == [4, 0.25]
    assert combination_name(dict(seed=0, lr_mult=0.125, batch_size=128)) == 'batch_size=128_lr_mult=0.125_seed=0'
    assert len(get_experiments('all')) == 3 and len(LR_NAMES) == 4

def test_points_choose_combinations_and_seeds_of_a_grid():
    "A campaign's later stages: chosen points of the fast_sgd grids, with more seeds, and the LR sweep's equal-steps runs."
    p = PRESETS['fast_sgd']
    lr = get_experiments('lr_sweep')[0]
    more = select_points(lr, lr.grid(p), 'batch_size=128 train_size=6250,50000 lr_mult=4,8 seed=1,2')
    assert len(more) == 2 * 2 * 2 and {d['seed'] for d in more} == {1, 2} and {d['batch_size'] for d in more} == {128}
    steps = select_points(lr, lr.grid(p), 'batch_size=512 train_size=6250 epochs=20')
    assert len(steps) == len(p.lr_factors) and all(d['epochs'] == 20 and d['seed'] == 0 for d in steps)
    assert [(d['lr_mult'], d['seed']) for d in get_experiments('forgetting')[0].grid(p)] == [(4, 0), (4, 1), (4, 2), (0.25, 0), (0.25, 1)]
    assert len(get_experiments('batch_size')[0].grid(p)) == 2 * p.seeds

def test_time_estimate_weighs_combinations_by_their_images():
    cpu = PRESETS['cpu']
    small, full = (combination_work('lr_sweep', dict(train_size=n, batch_size=128, lr_mult=1), cpu) for n in (6_250, 50_000))
    assert small == pytest.approx(cpu.epochs * (6_250 + 10_000 / 3)) and full == pytest.approx(cpu.epochs * (50_000 + 10_000 / 3))
    assert combination_work('batch_size', dict(batch_size=512), cpu) == full  # the full training set
    assert combination_work('forgetting', dict(lr_mult=4), cpu) > 2 * full  # 10 epochs of 25,000 + 50,000 images

@pytest.mark.parametrize('kwargs, message', [
    (dict(experiment='mnist'), "experiment='mnist'"), (dict(preset='huge'), "preset='huge'"), (dict(workers=0), 'workers=0'),
    (dict(device='tpu'), "device='tpu'"), (dict(backend='spark'), "backend='spark'"), (dict(threads=0), 'threads=0'),
    (dict(max_retries=-1), 'max_retries=-1'), (dict(backend='ray', cpus_per_task=0), 'cpus_per_task=0'),
    (dict(address='ray://head:10001'), 'needs backend'), (dict(backend='ray', workers=2), 'workers=2'),
    (dict(points='lr_mult=3'), 'it holds'), (dict(points='width=2'), "'width' is not a parameter"), (dict(points='seed'), 'key=v1,v2')])
def test_bad_arguments_fail_before_any_work(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message): sweep(**dict(dict(experiment='all', preset='smoke', results_dir=tmp_path), **kwargs))
    assert not list(tmp_path.iterdir())

# ---------------------------------------------------------------------------------------------------------------
# the table: one row per combination, in its current state; only the sweep's files count
# ---------------------------------------------------------------------------------------------------------------
def test_collect_reflects_only_the_current_state(tmp_path):
    committed = REPO / 'results' / 'cpu' / 'forgetting'
    shutil.copytree(committed, tmp_path, dirs_exist_ok=True)
    (tmp_path / 'results.csv').unlink()
    (tmp_path / 'lr_mult=4_seed=0.failed.json').write_text(json.dumps(dict(params=dict(lr_mult=4, seed=0), reason='old crash')))
    (tmp_path / 'notes.json').write_text('["not", "a", "metrics", "file"]')
    (tmp_path / 'lr_mult=8_seed=0.json').write_text('{"experiment": "forgetting", "pre')  # cut short
    (tmp_path / 'lr_mult=1_seed=0.failed.json').write_text(json.dumps(dict(params=dict(lr_mult=1, seed=0), status='interrupted', reason='x')))
    table = {r['name']: r for r in rows(collect(tmp_path).parent)}
    assert {k: r['status'] for k, r in table.items()} == {'lr_mult=0.25_seed=0': 'ok', 'lr_mult=4_seed=0': 'ok',
                                                          'lr_mult=8_seed=0': 'broken', 'lr_mult=1_seed=0': 'interrupted'}
    assert table['lr_mult=4_seed=0']['threads'] and not table['lr_mult=4_seed=0'].get('reason')

# ---------------------------------------------------------------------------------------------------------------
# real sweeps
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def all_smoke(tmp_path_factory):
    """`sweep all --preset smoke`, started from a scratch folder with a *relative* $RESNET_FAST_DATA, 2 workers on a
    machine said to have 2 cores (so the default threads are 1)."""
    root = tmp_path_factory.mktemp('all')
    (root / 'cifar').symlink_to(DATA, target_is_directory=True)
    mp = pytest.MonkeyPatch()
    mp.chdir(root); mp.setenv('RESNET_FAST_DATA', 'cifar'); mp.setattr(os, 'cpu_count', lambda: 2)
    try: counts = sweep('all', 'smoke', 'results', workers=2, progress=False)
    finally: mp.undo()
    return root / 'results', counts

def test_sweep_all_smoke_runs_resumes_and_collects(all_smoke, tmp_path):
    results, counts = all_smoke
    assert counts == dict(done=8, skipped=0, failed=0)
    for name, n in [('batch_size', 2), ('forgetting', 2), ('lr_sweep', 4)]:
        d = results / 'smoke' / name
        assert_complete(d, [combination_name(g) for g in EXPERIMENTS[name].grid(PRESETS['smoke'])])
        assert len(rows(d)) == n
    lr = rows(results / 'smoke' / 'lr_sweep')
    assert {r['diverged'] for r in lr} <= {'True', 'False'} and all(r['test_loss'] or r['diverged'] == 'True' for r in lr)
    # a second sweep skips everything and rewrites no result; a staged leftover of a killed sweep is cleaned up
    copy = tmp_path / 'results'; shutil.copytree(results, copy)
    stray = copy / 'smoke' / 'forgetting' / '.lr_mult=4_seed=0.partial.ipynb'; stray.write_text('{"half": ')
    done = copy / 'smoke' / 'forgetting' / 'lr_mult=4_seed=0.json'; before = (done.read_text(), done.stat().st_mtime_ns)
    assert sweep('all', 'smoke', copy, progress=False) == dict(done=0, skipped=8, failed=0)
    assert (done.read_text(), done.stat().st_mtime_ns) == before and not stray.exists()

def test_results_notebook_draws_from_the_sweep(all_smoke, tmp_path):
    "The results chapter draws its figures from what the sweep collected."
    results_nb = sorted((REPO / 'nbs').glob('*_results.ipynb'))[-1]
    res = subprocess.run([sys.executable, '-m', 'papermill', str(results_nb), str(tmp_path / 'results.ipynb'), '--language', 'python',
                          '-k', 'python3', '-r', 'preset', 'smoke', '-r', 'results_dir', str(all_smoke[0])], cwd=REPO / 'nbs',
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    cells = json.loads((tmp_path / 'results.ipynb').read_text())['cells']
    assert len([o for c in cells for o in c.get('outputs', []) if 'image/png' in o.get('data', {})]) >= 2

def test_relative_data_dir_is_resolved_where_typed(all_smoke, tmp_path, monkeypatch):
    "A relative $RESNET_FAST_DATA (the fixture) or data_dir= (here) means the folder the user was in, not nbs/: every run works, nbs/ is untouched."
    results, counts = all_smoke
    assert counts['failed'] == 0 and not (REPO / 'nbs' / 'cifar').exists()  # nothing made in nbs/ for the relative path
    source = read_metrics(results / 'smoke' / 'lr_sweep' / f'{LR_NAMES[0]}.json')['run']['settings']['data_source']
    assert source.endswith(f"{results.parent / 'cifar'}"), source  # the folder the user meant, made absolute
    (tmp_path / 'cifar').symlink_to(DATA, target_is_directory=True)
    monkeypatch.chdir(tmp_path); monkeypatch.delenv('RESNET_FAST_DATA', raising=False)
    shutil.copytree(results / 'smoke' / 'forgetting', tmp_path / 'r' / 'smoke' / 'forgetting')
    (tmp_path / 'r' / 'smoke' / 'forgetting' / 'lr_mult=4_seed=0.json').unlink()
    assert sweep('forgetting', 'smoke', 'r', data_dir='cifar', threads=1, progress=False) == dict(done=1, skipped=1, failed=0)
    assert not (REPO / 'nbs' / 'cifar').exists() and not (REPO / 'nbs' / 'r').exists()

def test_same_numbers_whatever_the_workers_and_a_rerun_command_with_the_same_threads(all_smoke, tmp_path):
    "One worker or two, the same combination gives the same numbers at the same threads (recorded); the rerun command sets them too."
    results, _ = all_smoke
    two = results / 'smoke' / 'lr_sweep'
    assert {read_metrics(p)['sweep']['threads'] for p in two.glob('*=*.json')} == {1}  # 2 cores // 2 workers, recorded
    assert {r['threads'] for r in rows(two)} == {'1'} and {r['attempts'] for r in rows(two)} == {'1'}
    assert sweep('lr_sweep', 'smoke', tmp_path, workers=1, threads=1, data_dir=DATA, progress=False)['done'] == 4
    assert summaries(tmp_path / 'smoke' / 'lr_sweep') == summaries(two)
    name = 'batch_size=128_lr_mult=1_seed=0_train_size=1000'
    cmd = rerun_command(two / f'{name}.json', out=str(tmp_path / 'rerun.ipynb'), metrics_out=str(tmp_path / 'rerun.json'))
    assert '-p threads 1' in cmd and '-p rerun True' in cmd
    res = subprocess.run(cmd.replace('papermill', f'{sys.executable} -m papermill', 1), shell=True, cwd=REPO, capture_output=True, text=True,
                         timeout=300, env=dict(os.environ, RESNET_FAST_DATA=str(DATA)))
    assert res.returncode == 0, res.stderr[-3000:]
    again = {k: v for k, v in json.loads((tmp_path / 'rerun.json').read_text())['summary'].items() if 'time' not in k}
    assert again == summaries(two)[name]

def test_truncated_metrics_are_set_aside_and_rerun_and_other_json_is_left_alone(all_smoke, tmp_path):
    d = tmp_path / 'results' / 'smoke' / 'lr_sweep'
    shutil.copytree(all_smoke[0] / 'smoke' / 'lr_sweep', d)
    cut = d / f'{LR_NAMES[0]}.json'; text = cut.read_text()[:200]; cut.write_text(text)
    (d / 'notes.json').write_text('{"todo": "more seeds"}')
    (d / 'results.csv').unlink()
    assert {r['name']: r['status'] for r in rows(collect(d).parent)}[LR_NAMES[0]] == 'broken'  # never counted as complete
    assert sweep('lr_sweep', 'smoke', tmp_path / 'results', workers=2, threads=1, data_dir=DATA, progress=False) == dict(done=1, skipped=3, failed=0)
    aside = list(d.glob(f'{LR_NAMES[0]}.json.broken-*'))
    assert len(aside) == 1 and aside[0].read_text() == text  # kept, not deleted
    assert (d / 'notes.json').read_text() == '{"todo": "more seeds"}'
    assert_complete(d)

def test_a_failing_combination_is_recorded_and_a_clean_rerun_leaves_no_stale_row(tmp_path):
    nbs = tmp_path / 'nbs'; nbs.mkdir()
    nb = json.loads((REPO / 'nbs' / '05_lr_sweep.ipynb').read_text())
    i = next(i for i, c in enumerate(nb['cells']) if 'parameters' in c.get('metadata', {}).get('tags', []))
    nb['cells'].insert(i + 1, dict(cell_type='code', metadata={}, execution_count=None, outputs=[],
                                   source="if lr_mult == 16: raise RuntimeError('simulated crash in combination lr_mult=16')"))
    (nbs / '05_lr_sweep.ipynb').write_text(json.dumps(nb))
    kw = dict(nbs_dir=nbs, workers=2, threads=1, data_dir=DATA, progress=False)
    assert sweep('lr_sweep', 'smoke', tmp_path / 'results', **kw) == dict(done=2, skipped=0, failed=2)
    d = tmp_path / 'results' / 'smoke' / 'lr_sweep'
    failed = sorted(d.glob('*.failed.json'))
    assert len(failed) == 2 and all('simulated crash' in json.loads(f.read_text())['reason'] for f in failed)
    assert all(json.loads(f.read_text())['attempts'] == 1 for f in failed)  # a notebook error is not retried
    assert not (d / 'batch_size=128_lr_mult=16_seed=0_train_size=1000.json').exists()
    assert sorted(r['status'] for r in rows(d)) == ['failed', 'failed', 'ok', 'ok']
    shutil.copy(REPO / 'nbs' / '05_lr_sweep.ipynb', nbs / '05_lr_sweep.ipynb')  # the cause fixed: only the failed ones run
    assert sweep('lr_sweep', 'smoke', tmp_path / 'results', **kw) == dict(done=2, skipped=2, failed=0)
    assert_complete(d)

# ---------------------------------------------------------------------------------------------------------------
# fault injection: concurrent sweeps, SIGINT/SIGTERM, a kernel that cannot start, SIGKILL of the driver
# ---------------------------------------------------------------------------------------------------------------
def test_fault_two_concurrent_sweeps_on_one_folder(tmp_path, lr_dir):
    kw = dict(experiment='lr_sweep', preset='smoke', results_dir=tmp_path / 'results', workers=2, threads=1, data_dir=DATA)
    a = start_driver(tmp_path / 'a.log', **kw)
    lock = lr_dir / '.sweep.lock'
    wait_for(lambda: lock.exists() and f'"pid": {a.pid}' in lock.read_text(), 60, 'the first sweep to lock the folder')
    b = start_driver(tmp_path / 'b.log', **kw)
    assert b.wait(timeout=60) == 3  # the second sweep exits at once, naming the holder
    b_log = (tmp_path / 'b.log').read_text()
    assert 'in use by another sweep' in b_log and f'process {a.pid}' in b_log and 'counts' not in b_log
    with pytest.raises(SweepBusy, match=f'process {a.pid}'): sweep(**kw, progress=False)  # the same from Python
    assert a.wait(timeout=400) == 0, (tmp_path / 'a.log').read_text()[-3000:]
    a_log = (tmp_path / 'a.log').read_text()
    assert sorted(line.split(': ')[0].split('lr_sweep/')[1] for line in a_log.splitlines() if line.startswith('[')) == LR_NAMES
    assert_complete(lr_dir)
    assert sweep(**kw, progress=False) == dict(done=0, skipped=4, failed=0)
    with FolderLock(lr_dir): pass  # released

def test_fault_sigint_then_sigterm_stop_the_sweep_and_the_next_one_resumes(tmp_path, lr_dir):
    kw = dict(experiment='lr_sweep', preset='smoke', results_dir=tmp_path / 'results', workers=2, threads=1, data_dir=DATA)
    finished = lambda: sorted(p.stem for p in lr_dir.glob('*=*.json') if read_metrics(p))
    for sig, log in ((signal.SIGINT, tmp_path / 'int.log'), (signal.SIGTERM, tmp_path / 'term.log')):
        before = finished()
        driver = start_driver(log, **kw)
        if sig == signal.SIGINT: wait_for(lambda: len(finished()) >= 1 and kernels(lr_dir), 300, 'one finished run and a kernel at work')
        else: wait_for(lambda: len(kernels(lr_dir)) >= 1, 120, 'a kernel at work')
        in_flight = marked(lr_dir)
        driver.send_signal(sig)
        t0 = time.monotonic(); driver.wait(timeout=60)
        stopped_in = time.monotonic() - t0
        text = log.read_text()
        assert driver.returncode != 0 and stopped_in < 20, text[-3000:]
        assert f'stopped by {sig.name}' in text and 'KeyboardInterrupt' in text
        assert marked(lr_dir) == [] and not any(alive(p) for p in in_flight)  # children ended
        table = {r['name']: r['status'] for r in rows(lr_dir)}
        ok = {n for n, s in table.items() if s == 'ok'}
        interrupted = {n for n, s in table.items() if s == 'interrupted'}
        assert ok == set(finished()) and set(before) <= ok and interrupted and not ok & interrupted
        assert interrupted == {p.name[:-len('.failed.json')] for p in lr_dir.glob('*.failed.json')}
        not_started = int(text.split(' not started')[0].rsplit(', ', 1)[1])
        assert len(ok - set(before)) + len(interrupted) + not_started <= 4 and len(table) <= 4  # the queue was abandoned
        assert not list(lr_dir.glob('.*partial*'))
        with FolderLock(lr_dir): pass  # the lock went with the sweep
    counts = sweep(**kw, progress=False)
    failures = {p.name: json.loads(p.read_text()).get('reason', '')[-1000:] for p in lr_dir.glob('*.failed.json')}
    assert counts['done'] + counts['skipped'] == 4 and counts['skipped'] == len(finished()) - counts['done'] and counts['failed'] == 0, (counts, failures)
    assert_complete(lr_dir)

TAKE_A_PORT = """
import os, sys
if sys.orig_argv[1:3] == ['-m', 'papermill'] and os.environ.get('RESNET_FAST_TEST_TAKE_PORT'):
    try: os.close(os.open(os.environ['RESNET_FAST_TEST_TAKE_PORT'], os.O_CREAT | os.O_EXCL | os.O_WRONLY))  # the first run only
    except FileExistsError: pass
    else:
        import socket
        from jupyter_client.connect import LocalPortCache
        taken = socket.socket(); taken.bind(('127.0.0.1', 0)); taken.listen()  # what another kernel starting at the same moment can do
        first, calls = LocalPortCache.find_available_port, []
        def find_available_port(self, ip):
            calls.append(ip)
            return taken.getsockname()[1] if len(calls) == 1 else first(self, ip)  # the shell port, the first one chosen
        LocalPortCache.find_available_port = find_available_port
"""

def test_fault_a_kernel_that_cannot_start_is_retried(tmp_path, monkeypatch):
    "Jupyter's port race, made certain: the first run's kernel finds its port taken and dies before it answers; the sweep tries it again."
    (tmp_path / 'site').mkdir(); (tmp_path / 'site' / 'sitecustomize.py').write_text(TAKE_A_PORT)
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join(filter(None, [str(tmp_path / 'site'), os.environ.get('PYTHONPATH')])))
    monkeypatch.setenv('RESNET_FAST_TEST_TAKE_PORT', str(tmp_path / 'taken'))
    assert sweep('forgetting', 'smoke', tmp_path / 'results', workers=2, threads=1, data_dir=DATA, progress=False) == dict(done=2, skipped=0, failed=0)
    assert (tmp_path / 'taken').exists()  # the fault did happen
    d = tmp_path / 'results' / 'smoke' / 'forgetting'
    assert_complete(d, [combination_name(g) for g in EXPERIMENTS['forgetting'].grid(PRESETS['smoke'])])
    assert sorted(r['attempts'] for r in rows(d)) == ['1', '2']

def test_fault_sigkill_of_the_driver_leaves_nothing_running_and_the_next_sweep_resumes(tmp_path, lr_dir):
    kw = dict(experiment='lr_sweep', preset='smoke', results_dir=tmp_path / 'results', workers=2, threads=1, data_dir=DATA)
    driver = start_driver(tmp_path / 'kill.log', **kw)
    wait_for(lambda: len(kernels(lr_dir)) >= 2, 120, 'two kernels at work')
    driver.kill(); driver.wait()
    wait_for(lambda: marked(lr_dir) == [], 30, 'papermill and its kernels to end with the driver')
    assert list(lr_dir.glob('.*partial*'))  # what the killed sweep left ...
    with FolderLock(lr_dir): pass  # ... but not its lock
    done_before = sorted(p.stem for p in lr_dir.glob('*=*.json'))
    assert sweep(**kw, progress=False) == dict(done=4 - len(done_before), skipped=len(done_before), failed=0)
    assert_complete(lr_dir)

# ---------------------------------------------------------------------------------------------------------------
# what the sweep checks before any work, and what it writes: never through a link, readable by all, nothing half-written
# ---------------------------------------------------------------------------------------------------------------
def _sweep_cli(results, data, *more):
    from resnet_fast.cli import main
    return main(['sweep', 'lr_sweep', '--preset', 'smoke', '--out', str(results), '--data-dir', str(data), '--threads', '1', *more])

@pytest.mark.parametrize('target', ['precious.txt', 'not-yet.txt'], ids=['to a file', 'dangling'])
def test_a_link_at_the_sweep_lock_is_refused_not_written_through(target, tmp_path, lr_dir, capsys):
    lr_dir.mkdir(parents=True); (tmp_path / 'precious.txt').write_text('mine')
    (lr_dir / '.sweep.lock').symlink_to(tmp_path / target)
    assert _sweep_cli(tmp_path / 'results', DATA) == 2
    err = capsys.readouterr().err
    assert 'symbolic link' in err and 'Traceback' not in err
    assert (tmp_path / 'precious.txt').read_text() == 'mine' and not (tmp_path / 'not-yet.txt').exists()

@pytest.mark.parametrize('case', ['out is a file', 'out read-only', 'data-dir missing', 'data-dir without CIFAR-10'])
def test_a_bad_results_dir_or_data_dir_is_refused_before_any_work(case, tmp_path, capsys, monkeypatch):
    results, data, real_access = tmp_path / 'results', DATA, os.access
    if case == 'out is a file': results.write_text('x'); message = 'is not a folder'
    if case == 'out read-only':  # as root a mode does not stop writes, so the check is told the folder is read-only
        results.mkdir(); monkeypatch.setattr(os, 'access', lambda p, m, **k: Path(p) != results and real_access(p, m, **k))
        message = 'not a writable folder'
    if case == 'data-dir missing': data, message = tmp_path / 'nonexistent', 'no such folder'
    if case == 'data-dir without CIFAR-10': data, message = tmp_path / 'empty', 'holds no CIFAR-10'; data.mkdir()
    before = sorted(tmp_path.rglob('*'))
    assert _sweep_cli(results, data) == 2
    err = capsys.readouterr().err
    assert message in err and 'Traceback' not in err and sorted(tmp_path.rglob('*')) == before  # nothing made, /nonexistent included

def test_sweep_records_are_readable_by_all_like_every_other_record(tmp_path):
    from resnet_fast.runs import commit_run, record_failure
    assert commit_run(tmp_path, 'seed=0', '{}', dict(experiment='lr_sweep', preset='smoke', params=dict(seed=0), summary={}))
    record_failure(tmp_path, 'seed=1', dict(seed=1), 'failed', 'crashed', '{}')
    collect(tmp_path)
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()} == {
        n: '0o644' for n in ('seed=0.json', 'seed=0.ipynb', 'seed=1.failed.json', 'seed=1.failed.ipynb', 'results.csv')}

def test_the_folders_of_killed_ray_tasks_are_removed_by_the_next_task(tmp_path, monkeypatch):
    import subprocess, tempfile
    import resnet_fast.runs as sw
    code = "from resnet_fast.runs import run_folder\nwith run_folder() as d: print(d, flush=True); import time; time.sleep(60)"
    killed = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True, env=dict(os.environ, TMPDIR=str(tmp_path)))
    left = Path(killed.stdout.readline().strip()); killed.kill(); killed.communicate()
    assert left.parent == tmp_path and left.exists()  # what a killed task leaves
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
    monkeypatch.setattr(sw, 'start_run', lambda args, env, log: subprocess.Popen(['true']))  # a task that ends at once, without papermill
    monkeypatch.setitem(sys.modules, 'ray', None)  # outside a Ray worker: no node to name
    assert sw.ray_run('n.ipynb', '{}', {}, 1, 'm')['status'] == 'failed'  # no metrics: a failure, as a real notebook that wrote none
    assert not list(tmp_path.glob('resnet_fast_run_*'))  # the killed task's folder and its own, both gone

class _InstantRuns:
    "A backend whose runs finish at once with a made-up result; once `full` is set, the disk is full and each run fails."
    name, slots, full = 'local', 1, []
    def __init__(self, workers, threads): self.jobs, self.finished_jobs = [], 0
    def start(self, job): self.jobs.append(job)
    def pending(self): return len(self.jobs)
    def running(self): return len(self.jobs)
    def stop(self): jobs, self.jobs = self.jobs, []; return jobs
    def describe(self): return 'instant runs'
    def close(self): pass
    def finished(self, timeout):
        if not self.jobs: return []
        job = self.jobs.pop(0); self.finished_jobs += 1
        if self.finished_jobs == 3 and self.full is not None: self.full.append(1)  # the disk fills up while the third run goes
        if self.full: return [(job, dict(status='failed', notebook='{}', reason='crashed', returncode=1))]  # its failure record must be written
        return [(job, dict(status='ok', notebook='{}', metrics=dict(experiment=job.experiment, preset='smoke', params=job.params, summary=dict(test_acc=0.5))))]

def test_a_full_disk_stops_the_sweep_cleanly_and_the_rerun_completes(tmp_path, lr_dir, capsys, monkeypatch):
    import errno
    import resnet_fast.sweep as sw
    real_fsync, full = os.fsync, []
    def fsync(fd):
        if full: raise OSError(errno.ENOSPC, 'No space left on device')
        return real_fsync(fd)
    monkeypatch.setattr(os, 'fsync', fsync)
    monkeypatch.setattr(sw, 'LocalRuns', type('Runs', (_InstantRuns,), dict(full=full)))
    assert _sweep_cli(tmp_path / 'results', DATA) == 1
    err = capsys.readouterr().err
    assert 'No space left on device' in err and 'failed.json' in err and 'finished combinations are kept' in err and 'Traceback' not in err
    kept = sorted(p.stem for p in lr_dir.glob('*=*.json'))
    assert len(kept) == 2 and all(read_metrics(lr_dir / f'{n}.json') for n in kept)  # every finished result intact
    assert not list(lr_dir.glob('.*.tmp')) and not list(lr_dir.glob('*.failed.*'))  # nothing half-written
    full.clear(); monkeypatch.setattr(sw, 'LocalRuns', type('Runs', (_InstantRuns,), dict(full=None)))  # space freed
    assert _sweep_cli(tmp_path / 'results', DATA) == 0
    assert_complete(lr_dir)
