"The engine: the sum convention, schedules, divergence, records, checkpoints and the checks made before any work."
import copy, json, math
from pathlib import Path
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from resnet_fast.optim import SGD, Lookahead, Schedule, piecewise_linear, set_lr
from resnet_fast.records import RunResult, check_writable, save_record, to_json
from resnet_fast.runlog import DIVERGED_LOSS, has_diverged, rows_diverged, time_to_accuracy
from resnet_fast.training import RECIPES, run, tta_logits

def _two_steps(model, x, y, reduction, lr, batch_size, wd):
    "Two SGD steps (so that momentum and weight decay both act)."
    if reduction == 'sum': opt = SGD(weight_decay=wd)(model, batch_size); set_lr(opt, lr, batch_size)
    else: opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=wd)
    for _ in range(2):
        opt.zero_grad(); F.cross_entropy(model(x), y, reduction=reduction).backward(); opt.step()
    return model

@pytest.mark.parametrize('batch_size', [32, 128])
def test_sum_convention_equals_mean_convention(batch_size):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 10))
    x, y = torch.randn(batch_size, 20), torch.randint(0, 10, (batch_size,))
    summed = _two_steps(copy.deepcopy(net), x, y, 'sum', 0.4, batch_size, 5e-4)
    mean = _two_steps(copy.deepcopy(net), x, y, 'mean', 0.4, batch_size, 5e-4)
    for p, q, p0 in zip(summed.parameters(), mean.parameters(), net.parameters()):
        assert torch.allclose(p, q, atol=1e-6) and not torch.allclose(p, p0)

def test_norm_biases_move_faster_and_every_group_decays_alike():
    from resnet_fast.model import fast_net
    opt = SGD(momentum=0.85, weight_decay=1e-3, norm_bias_lr_scale=64)(fast_net(0.25), 1024); set_lr(opt, 1.5, 1024)
    fast, slow = sorted(opt.param_groups, key=lambda g: g['lr'])[::-1]
    assert fast['lr'] == pytest.approx(64 * slow['lr']) and fast['lr'] * fast['weight_decay'] == pytest.approx(slow['lr'] * slow['weight_decay'])
    assert not any(p is fast_net_param for g in opt.param_groups for p in g['params'] for fast_net_param in [])

def test_schedules():
    lr = piecewise_linear([0, 15, 30, 35], [0, 0.4, 0.005, 0])
    assert [lr(e) for e in (0, 15, 30, 35)] == [0, 0.4, 0.005, 0] and lr(7.5) == pytest.approx(0.2) and lr(40) == 0
    r9 = RECIPES['resnet9'].schedule
    assert r9.at(24, 512)(5) == pytest.approx(0.4)
    s = r9.at(12, 512, lr_mult=4)
    assert s.knots == [0, 2.5, 12] and s(2.5) == pytest.approx(1.6) and s(12) == 0
    r18 = RECIPES['resnet18'].schedule
    assert r18.at(35, 512, 1.1)(15) == pytest.approx(0.44)  # part 2's 0.44 at batch 512
    assert r18.at(35, 512)(15) / 512 == pytest.approx(r18.at(35, 128)(15) / 128)  # same rate per example
    with pytest.raises(ValueError, match='knots must not decrease'): Schedule((0, 2, 1), (0, 1, 0), 128)

def test_lookahead_decay_ramps_with_the_cube_of_progress():
    la = Lookahead()
    assert la.decay_at(0) == 0 and la.decay_at(1) == pytest.approx(0.95**5) and la.decay_at(0.5) == pytest.approx(0.95**5 / 8)

def test_tta_levels_average_views():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(10)); x = torch.randn(2, 3, 32, 32)
    assert torch.equal(tta_logits(net, x, 0), net(x))
    assert torch.allclose(tta_logits(net, x, 1), (net(x) + net(x.flip(-1))) / 2)
    assert not torch.allclose(tta_logits(net, x, 2), tta_logits(net, x, 1))

def test_time_to_accuracy():
    rows = [dict(test_acc=a, total_time=t) for a, t in [(0.9, 1.0), (None, 1.5), (0.94, 2.0), (0.95, 3.0)]]
    assert time_to_accuracy(rows) == 2.0 and time_to_accuracy(rows[:2]) is None

def test_divergence_definition():
    "Not only non-finite losses: a loss far above chance is a blown-up run (the old loop recorded 4e19 as not diverged)."
    assert [has_diverged(v) for v in (2.3, 4.0, DIVERGED_LOSS + 0.1, 4e19, math.nan, math.inf)] == [False, False, True, True, True, True]
    assert rows_diverged([dict(train_loss=2.0), dict(train_loss=4e19)]) and not rows_diverged([dict(train_loss=2.0)])
    assert rows_diverged([dict(train_loss=None)])  # a NaN written as null

@pytest.fixture(scope='module')
def short_run(cifar):
    return run(RECIPES['resnet9'], width=0.25, epochs=2, batch_size=128, train_size=4000, data=cifar, seed=1, progress=False)

def test_short_real_run_beats_chance(short_run):
    assert not short_run.diverged and short_run.final['test_acc'] > 0.35, short_run.final  # chance is 0.10
    assert [r['epoch'] for r in short_run.rows] == [1, 2]
    assert short_run.rows[1]['total_time'] == pytest.approx(short_run.rows[0]['train_time'] + short_run.rows[1]['train_time'])
    assert all(r['eval_time'] > 0 for r in short_run.rows)
    hw = short_run.hardware
    assert short_run.settings['precision'] == 'bf16' and hw['device'] == 'cpu'
    assert {'cpu', 'cpu_family', 'cpu_model', 'cpu_flags', 'torch_threads', 'torch', 'numpy'} <= set(hw)
    assert hw['torch_threads'] == torch.get_num_threads()

def test_cpu_runs_are_repeatable(cifar, short_run):
    again = run(RECIPES['resnet9'], width=0.25, epochs=2, batch_size=128, train_size=4000, data=cifar, seed=1, progress=False)
    assert [(a['train_loss'], a['test_acc']) for a in short_run.rows] == [(b['train_loss'], b['test_acc']) for b in again.rows]

def test_result_json_roundtrip_strict_and_no_overwrite(short_run, tmp_path):
    path = short_run.save(tmp_path / 'r.json')
    data = json.loads(path.read_text())
    assert set(data) >= {'settings', 'hardware', 'rows', 'final', 'diverged', 'time_to_94'}
    assert RunResult.load(path) == RunResult(**json.loads(short_run.to_json()))
    elsewhere = short_run.save(path)  # an existing record is never replaced: this one goes to the recovery folder
    assert elsewhere != path and json.loads(path.read_text()) == data and elsewhere.exists()
    elsewhere.unlink()
    assert 'NaN' not in to_json({'a': float('nan'), 'b': [float('inf')]})

def test_a_failed_save_keeps_the_record_somewhere_safe(tmp_path, capsys):
    blocker = tmp_path / 'file'; blocker.write_text('x')
    saved = save_record('{"k": 1}', blocker / 'sub' / 'r.json')  # the parent is a file: cannot be written
    assert saved.exists() and json.loads(saved.read_text()) == {'k': 1} and str(saved) in capsys.readouterr().out
    saved.unlink()

def test_output_locations_are_checked_before_work(tmp_path):
    blocker = tmp_path / 'file'; blocker.write_text('x')
    with pytest.raises(ValueError, match='cannot write'): check_writable(blocker / 'r.json')
    with pytest.raises(ValueError, match='already exists'): check_writable(blocker)

def test_divergence_is_recorded_not_raised(cifar):
    r = run(RECIPES['resnet9'], width=0.25, epochs=3, batch_size=128, train_size=2000, lr_mult=1e5, data=cifar, progress=False)
    assert r.diverged and r.diverged_at is not None and r.diverged_at < 1 and len(r.rows) == 1
    json.loads(r.to_json())

def test_checkpoint_resume_continues_the_run_and_refuses_other_runs(cifar, tmp_path, monkeypatch):
    kw = dict(width=0.125, batch_size=256, train_size=1024, data=cifar, seed=2, progress=False, epochs=2)
    full = run(RECIPES['resnet9'], **kw)
    ckpt = tmp_path / 'c.ckpt'
    import resnet_fast.training as training
    real_evaluate, calls = training.evaluate, []
    def interrupt_after_first_epoch(*a, **k):
        calls.append(1)
        if len(calls) == 2: raise KeyboardInterrupt
        return real_evaluate(*a, **k)
    monkeypatch.setattr(training, 'evaluate', interrupt_after_first_epoch)
    with pytest.raises(KeyboardInterrupt): run(RECIPES['resnet9'], checkpoint=ckpt, **kw)
    monkeypatch.setattr(training, 'evaluate', real_evaluate)
    resumed = run(RECIPES['resnet9'], checkpoint=ckpt, **kw)
    assert resumed.resumed_from_epoch == 1 and [r['train_loss'] for r in resumed.rows] == [r['train_loss'] for r in full.rows]
    for other in (dict(seed=3), dict(augment='none'), dict(width=0.25), dict(model='resnet18')):
        with pytest.raises(ValueError, match='belongs to a different run'): run(RECIPES['resnet9'], checkpoint=ckpt, **(kw | other))

@pytest.mark.parametrize('kwargs, message', [
    (dict(lr_mult=-1.0), 'lr_mult=-1.0'), (dict(lr_mult=0.0), 'lr_mult=0.0'), (dict(batch_size=0), 'batch_size=0'),
    (dict(train_size=1000, batch_size=2000), 'batch_size=2000'), (dict(model='resnet50'), "model='resnet50'"),
    (dict(train_size=50_001), 'train_size=50001'), (dict(device='tpu'), "device='tpu'"), (dict(device='cuda:7'), 'cuda'),
    (dict(precision='int8'), "precision='int8'"), (dict(augment='rotate'), "augment='rotate'"), (dict(epochs=0), 'epochs=0'),
    (dict(epochs=1e20), 'epochs=1e\\+20'), (dict(width=-2.0), 'width=-2.0'), (dict(width=1e6), 'width=1000000.0'),
    (dict(seed=2**70), 'seed=1180591620717411303424'), (dict(seed=-1), 'seed=-1'), (dict(tta_level=3), 'tta_level=3'),
    (dict(freeze='-1:whiten.bias'), "freeze='-1:whiten.bias'"), (dict(freeze='3:block9'), "'block9' is not a learnt parameter"),
    (dict(freeze='3'), "freeze='3' is not allowed"), (dict(model='fast_net', freeze='3:layer1'), "'layer1' is not a learnt"),
    (dict(colour='red'), "'colour' is not a recipe field")])
def test_bad_settings_are_refused_before_work(kwargs, message, monkeypatch):
    import resnet_fast.training as training
    monkeypatch.setattr(training, 'load_cifar10', lambda *a, **k: pytest.fail('data was loaded before the settings were checked'))
    with pytest.raises(ValueError, match=message): run(RECIPES['resnet9'], **kwargs)

def test_recipes_are_values():
    short = RECIPES['fast'].variant(epochs=10)
    assert short.epochs == 10 and RECIPES['fast'].epochs == 11 and short.settings()['augment'] == 'crop=2,altflip'
    with pytest.raises(Exception): RECIPES['fast'].epochs = 3  # frozen

def test_progress_table_of_a_recipe_that_tests_only_at_the_end(cifar, capsys):
    "The fast recipe evaluates only after its last epoch: the per-epoch table shows '-' until then, and one bar covers the run."
    r = run(RECIPES['fast'], width=0.0625, epochs=2, train_size=2000, batch_size=500, data=cifar, progress=True)
    out = capsys.readouterr()
    assert r.rows[0]['test_acc'] is None and r.rows[1]['test_acc'] is not None
    lines = [l for l in (out.out + out.err).replace('\r', '\n').splitlines() if l.strip().startswith(('1 ', '2 '))]
    assert any(l.split()[-3:-1] == ['-', '-'] for l in lines), lines

def test_the_main_job_resumes_to_the_same_result(cifar, tmp_path):
    "`make run`'s recipe (Muon, windows, freezing, selective test-time views) stopped after an epoch resumes from its checkpoint to the same numbers."
    kw = dict(width=0.125, epochs=2, train_size=1024, batch_size=256, data=cifar, seed=1, progress=False, freeze='1:whiten.bias,1.5:block1')
    full = run(RECIPES['fastest'], **kw)
    def stop_after_the_first_epoch(epoch, net):
        if epoch == 1: raise KeyboardInterrupt
    ckpt = tmp_path / 'fastest.ckpt'
    with pytest.raises(KeyboardInterrupt): run(RECIPES['fastest'], checkpoint=ckpt, on_epoch=stop_after_the_first_epoch, **kw)
    resumed = run(RECIPES['fastest'], checkpoint=ckpt, **kw)
    numbers = lambda r: {k: r.final[k] for k in ('train_loss', 'train_acc', 'test_loss', 'test_acc')}
    assert resumed.resumed_from_epoch == 1 and numbers(resumed) == numbers(full)

# ---------------------------------------------------------------------------------------------------------------
# nothing lost at the worst moment: kills during saves, full disks, edited checkpoints
# ---------------------------------------------------------------------------------------------------------------
TINY = ['--width', '0.0625', '--epochs', '3', '--train-size', '1000', '--batch-size', '100', '--tta-level', '0', '--no-progress']
SLOW_SECOND_SAVE = """
import sys, time, torch
real, calls = torch.save, []
def slow_save(obj, f, *a, **k):  # the second checkpoint: half written, then the process is killed while writing the rest
    calls.append(1)
    if len(calls) < 2: return real(obj, f, *a, **k)
    import io; buf = io.BytesIO(); real(obj, buf); f.write(buf.getvalue()[:len(buf.getvalue()) // 2]); f.flush()
    print('half written', flush=True); time.sleep(120)
torch.save = slow_save
from resnet_fast.cli import main
sys.exit(main(sys.argv[1:]))
"""

def _train(*args, tmp_path, script=None):
    import os, subprocess, sys
    env = dict(os.environ, OMP_NUM_THREADS='1')
    cmd = [sys.executable, '-c', script, 'train', *args] if script else [Path(sys.executable).parent/'resnet-fast', 'train', *args]
    return subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

def test_a_kill_during_a_checkpoint_save_resumes_to_the_same_numbers(tmp_path):
    ckpt = tmp_path / 'k.ckpt'
    killed = _train(*TINY, '--checkpoint', str(ckpt), '--out', str(tmp_path / 'killed.json'), tmp_path=tmp_path, script=SLOW_SECOND_SAVE)
    assert any('half written' in line for line in killed.stdout), killed.communicate()
    left = list(tmp_path.glob('.k.ckpt.*.tmp'))
    assert len(left) == 1 and left[0].stat().st_size > 0  # the temporary file being written
    killed.kill(); killed.communicate()
    assert torch.load(ckpt, weights_only=True)['epoch'] == 1  # the previous epoch's checkpoint, whole
    resumed = _train(*TINY, '--checkpoint', str(ckpt), '--out', str(tmp_path / 'resumed.json'), tmp_path=tmp_path)
    _, err = resumed.communicate(timeout=300); assert resumed.returncode == 0, err
    from resnet_fast.cli import main
    threads = torch.get_num_threads(); torch.set_num_threads(1)  # as the runs above: the same threads give the same numbers
    try: assert main(['train', *TINY, '--out', str(tmp_path / 'plain.json')]) == 0  # the uninterrupted run
    finally: torch.set_num_threads(threads)
    assert not list(tmp_path.glob('.*.tmp'))  # cleared by the resumed run: never a result
    a, b = (json.loads((tmp_path / f).read_text()) for f in ('resumed.json', 'plain.json'))
    assert a['resumed_from_epoch'] == 1 and len(a['rows']) == 3
    numbers = lambda r: [(row['train_loss'], row['train_acc'], row['test_acc']) for row in r['rows']] + [r['final']['test_acc']]
    assert numbers(a) == numbers(b)

def test_a_full_disk_stops_train_cleanly_and_the_rerun_resumes(tmp_path, capsys, monkeypatch):
    import errno, os
    from resnet_fast.cli import main
    ckpt, out, real_fsync, writes = tmp_path / 'k.ckpt', tmp_path / 'r.json', os.fsync, []
    def disk_full_after_one_write(fd):
        writes.append(fd)
        if len(writes) > 1: raise OSError(errno.ENOSPC, 'No space left on device')
        return real_fsync(fd)
    monkeypatch.setattr(os, 'fsync', disk_full_after_one_write)  # the first checkpoint fits, the second does not
    assert main(['train', *TINY, '--checkpoint', str(ckpt), '--out', str(out)]) == 1
    err = capsys.readouterr().err
    assert 'No space left on device' in err and str(ckpt) in err and 'rerun the same command to resume' in err and 'Traceback' not in err
    assert torch.load(ckpt, weights_only=True)['epoch'] == 1 and not out.exists() and not list(tmp_path.glob('.*.tmp'))
    monkeypatch.setattr(os, 'fsync', real_fsync)  # space freed
    assert main(['train', *TINY, '--checkpoint', str(ckpt), '--out', str(out)]) == 0
    assert json.loads(out.read_text())['resumed_from_epoch'] == 1

EDITS = {'resized weights': lambda s: s['model'].update({k: torch.zeros(2, 2) for k in list(s['model'])[:1]}),
         'no rows at epoch 5': lambda s: s.update(rows=[], epoch=5), "epoch 'x'": lambda s: s.update(epoch='x'),
         'a row without columns': lambda s: s.update(rows=[{'a': 1}]), 'epoch -3': lambda s: s.update(epoch=-3),
         'rows of another epoch': lambda s: s.update(rows=s['rows'][:1]), 'resized momentum': lambda s: s['optimizer']['state'][0].update(momentum_buffer=torch.zeros(1))}

def test_an_edited_checkpoint_is_a_clear_error_naming_it(cifar, tmp_path):
    kw = dict(width=0.0625, batch_size=100, train_size=1000, data=cifar, progress=False, epochs=2)
    ckpt = tmp_path / 'c.ckpt'; run(RECIPES['resnet9'], checkpoint=ckpt, **kw)
    good = torch.load(ckpt, weights_only=True)
    for what, edit in EDITS.items():
        state = copy.deepcopy(good); edit(state); torch.save(state, ckpt)  # the fingerprint still matches
        with pytest.raises(ValueError, match=f'checkpoint {ckpt} .*delete it to start afresh'): run(RECIPES['resnet9'], checkpoint=ckpt, **kw)
    torch.save(good, ckpt); assert run(RECIPES['resnet9'], checkpoint=ckpt, **kw).resumed_from_epoch == 2  # the genuine one resumes

def test_a_diverged_run_counts_only_the_images_it_trained_on(cifar):
    from resnet_fast.bench import seed_record
    r = run(RECIPES['resnet9'], width=0.25, epochs=3, batch_size=128, train_size=2000, lr_mult=1e5, data=cifar, progress=False)
    assert r.diverged and r.diverged_at < 1
    images = (round(r.diverged_at * (2000 // 128)) + 1) * 128  # up to and including the step whose loss was not finite
    s = seed_record(r, flops_per_image=1)
    assert s['images_per_s'] == pytest.approx(images / r.final['train_time']) and images < 2000
