import copy, json
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from resnet_fast.training import RunResult, check_settings, make_optimizer, run, set_lr, time_to_accuracy

def _two_steps(model, x, y, reduction, lr, batch_size, wd):
    "Two SGD steps (so that momentum and weight decay both act)."
    if reduction == 'sum': opt = make_optimizer(model, batch_size, wd); set_lr(opt, lr, batch_size)
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
    # weight decay matters: without scaling it by the batch size the two would differ
    unscaled = _two_steps(copy.deepcopy(net), x, y, 'mean', 0.4, batch_size, 5e-4 * batch_size)
    assert not all(torch.allclose(p, q, atol=1e-6) for p, q in zip(summed.parameters(), unscaled.parameters()))

def test_time_to_accuracy():
    rows = [dict(test_acc=a, total_time=t) for a, t in [(0.9, 1.0), (0.94, 2.0), (0.95, 3.0)]]
    assert time_to_accuracy(rows) == 2.0 and time_to_accuracy(rows[:1]) is None

@pytest.fixture(scope='module')
def short_run(cifar):
    return run('resnet9', width=0.25, epochs=2, batch_size=128, train_size=4000, data=cifar, seed=1, progress=False)

def test_short_real_run_beats_chance(short_run):
    assert not short_run.diverged
    assert short_run.final['test_acc'] > 0.35, short_run.final  # chance is 0.10
    assert [r['epoch'] for r in short_run.rows] == [1, 2]
    assert short_run.rows[1]['total_time'] == pytest.approx(short_run.rows[0]['train_time'] + short_run.rows[1]['train_time'])
    assert all(r['eval_time'] > 0 for r in short_run.rows)  # each evaluation timed apart from training
    assert short_run.settings['precision'] == 'bf16' and short_run.hardware['device'] == 'cpu'

def test_cpu_runs_are_repeatable(cifar, short_run):
    again = run('resnet9', width=0.25, epochs=2, batch_size=128, train_size=4000, data=cifar, seed=1, progress=False)
    for a, b in zip(short_run.rows, again.rows):
        assert a['train_loss'] == b['train_loss'] and a['test_acc'] == b['test_acc']

def test_result_json_roundtrip_and_no_overwrite(short_run, tmp_path):
    path = short_run.save(tmp_path / 'r.json')
    data = json.loads(path.read_text())
    assert set(data) >= {'settings', 'hardware', 'rows', 'final', 'diverged', 'time_to_94'}
    assert RunResult.load(path) == short_run
    with pytest.raises(FileExistsError, match='refusing to overwrite'): short_run.save(path)
    assert json.loads(path.read_text()) == data

def test_divergence_is_recorded_not_raised(cifar):
    r = run('resnet9', width=0.25, epochs=3, batch_size=128, train_size=2000, lr_mult=1e5, data=cifar, progress=False)
    assert r.diverged and r.diverged_at is not None and r.diverged_at < 1
    assert len(r.rows) == 1  # stopped at the first epoch

def test_checkpoint_resume_continues_the_run(cifar, tmp_path):
    kw = dict(model='resnet9', width=0.125, batch_size=256, train_size=1024, data=cifar, seed=2, progress=False)
    full = run(epochs=2, **kw)
    ckpt = tmp_path / 'c.ckpt'
    run(epochs=1, schedule=full_schedule(), checkpoint=ckpt, **kw)
    resumed = run(epochs=2, checkpoint=ckpt, **kw)
    assert len(resumed.rows) == 2 and resumed.rows[0]['train_loss'] == pytest.approx(full.rows[0]['train_loss'], rel=1e-5)
    assert resumed.rows[1]['train_loss'] == pytest.approx(full.rows[1]['train_loss'], rel=1e-5)
    assert resumed.resumed_from_epoch == 1 and full.resumed_from_epoch is None
    # a checkpoint of another run is refused, not silently continued
    with pytest.raises(ValueError, match='belongs to a different run.*seed'): run(epochs=2, checkpoint=ckpt, **{**kw, 'seed': 3})

def full_schedule():
    from resnet_fast.schedule import recipe_schedule
    return recipe_schedule('resnet9', epochs=2, batch_size=256)  # what run() uses for batch 256

@pytest.mark.parametrize('kwargs, message', [
    (dict(lr_mult=-1.0), 'lr_mult=-1.0'), (dict(lr_mult=0.0), 'lr_mult=0.0'),
    (dict(batch_size=0), 'batch_size=0'), (dict(train_size=1000, batch_size=2000), 'batch_size=2000.*train_size \\(1000\\)'),
    (dict(model='resnet50'), "model='resnet50'"), (dict(train_size=50_001), 'train_size=50001.*1 to 50000'),
    (dict(device='tpu'), "device='tpu'"), (dict(device='cuda:7'), 'cuda'), (dict(precision='int8'), "precision='int8'"),
    (dict(augment='rotate'), "augment='rotate'"), (dict(epochs=0), 'epochs=0'), (dict(width=-2.0), 'width=-2.0')])
def test_bad_settings_are_refused_before_work(kwargs, message, monkeypatch):
    import resnet_fast.training as training
    monkeypatch.setattr(training, 'load_cifar10', lambda *a, **k: pytest.fail('data was loaded before the settings were checked'))
    with pytest.raises(ValueError, match=message): run(**kwargs)
