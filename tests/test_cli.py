import json, subprocess, sys
from pathlib import Path
import pytest
from resnet_fast.cli import RECIPE_FLAGS, main

@pytest.mark.parametrize('flags, message', [
    (['--lr-mult', '-1'], 'lr_mult=-1.0'), (['--batch-size', '0'], 'batch_size=0'),
    (['--train-size', '1000', '--batch-size', '1001'], 'batch_size=1001'), (['--model', 'resnet50'], "model='resnet50'"),
    (['--train-size', '60000'], 'train_size=60000'), (['--device', 'gpu0'], "device='gpu0'"), (['--recipe', 'vgg'], "recipe='vgg'"),
    (['--epochs', '1e20'], 'epochs=1e+20'), (['--width', '1e6'], 'width=1000000.0'), (['--seed', str(2**70)], 'seed='),
    (['--augment', 'rotate'], "augment='rotate'"), (['--tta-level', '3'], 'tta_level=3')])
def test_bad_flags_fail_fast(flags, message, capsys):
    assert main(['train', *flags]) == 2
    err = capsys.readouterr().err
    assert 'error' in err and message in err and 'Traceback' not in err

def test_help_explains_every_flag():
    out = subprocess.run([Path(sys.executable).parent/'resnet-fast', 'train', '--help'], capture_output=True, text=True).stdout
    for flag in ['--recipe', '--seed', '--device', '--precision', '--data-dir', '--out', '--checkpoint',
                 *('--' + f.replace('_', '-') for f in RECIPE_FLAGS)]:
        assert flag in out
    bench_help = subprocess.run([Path(sys.executable).parent/'resnet-fast', 'bench', '--help'], capture_output=True, text=True).stdout
    assert '%%' not in bench_help

@pytest.mark.parametrize('recipe', ['fast', 'fastest', 'resnet9', 'resnet18'])
def test_train_every_recipe_writes_the_same_record_shape(recipe, tmp_path, capsys):
    out = tmp_path/f'{recipe}.json'
    args = ['train', '--recipe', recipe, '--width', '0.125', '--epochs', '1', '--train-size', '1000', '--batch-size', '200', '--out', str(out), '--no-progress']
    assert main(args) == 0
    record = json.loads(out.read_text())
    assert record['settings']['name'] == recipe and record['settings']['train_size'] == 1000 and len(record['rows']) == 1
    assert set(record) == {'settings', 'hardware', 'rows', 'diverged', 'diverged_at', 'final', 'time_to_94', 'wall_time', 'data_load_time',
                           'started', 'resumed_from_epoch'}
    assert 'test acc' in capsys.readouterr().out
    before = out.read_text()
    assert main(args) == 2 and 'already exists' in capsys.readouterr().err
    assert out.read_text() == before

def test_unwritable_out_fails_before_training(tmp_path, capsys, monkeypatch):
    import resnet_fast.cli as cli
    monkeypatch.setattr(cli, 'run', lambda *a, **k: pytest.fail('trained before checking --out'))
    blocker = tmp_path/'file'; blocker.write_text('x')
    assert main(['train', '--out', str(blocker/'r.json')]) == 2 and 'cannot write' in capsys.readouterr().err
    assert main(['train', '--checkpoint', str(blocker/'c.ckpt')]) == 2 and 'cannot write' in capsys.readouterr().err

def test_ctrl_c_in_train_is_a_clean_message(tmp_path, capsys, monkeypatch):
    import resnet_fast.cli as cli
    def interrupted(*a, **k): raise KeyboardInterrupt
    monkeypatch.setattr(cli, 'run', interrupted)
    assert main(['train', '--out', str(tmp_path/'r.json'), '--checkpoint', str(tmp_path/'c.ckpt')]) == 130
    assert 'interrupted; rerun the same command to resume' in capsys.readouterr().err

@pytest.mark.parametrize('flags, message', [(['--seeds', '0'], 'seeds=0'), (['--recipe', 'vgg'], "recipe='vgg'"),
                                            (['--lr-mult', '0'], 'lr_mult=0.0'), (['--device', 'tpu'], "device='tpu'"),
                                            (['--tta-level', '3'], 'tta_level=3'), (['--epochs', '0'], 'epochs=0'),
                                            (['--batch-size', '0'], 'batch_size=0'), (['--recipe', 'resnet9', '--width', '-1'], 'width=-1')])
def test_bench_bad_flags_fail_fast(flags, message, capsys, monkeypatch):
    import resnet_fast.bench as bench
    monkeypatch.setattr(bench, 'load_cifar10', lambda *a, **k: pytest.fail('data was loaded before the flags were checked'))
    assert main(['bench', *flags]) == 2
    assert message in capsys.readouterr().err

def test_bench_writes_statistics_resumes_and_refuses_to_overwrite(tmp_path, capsys, monkeypatch):
    "Tiny real runs of the fast recipe: one entry per seed, a summary computed from them; an interrupted bench keeps its finished seeds."
    out = tmp_path/'bench.json'
    args = ['bench', '--width', '0.0625', '--epochs', '0.5', '--seeds', '2', '--first-seed', '3', '--out', str(out), '--no-progress']
    import resnet_fast.bench as bench
    real_run, calls = bench.run, []
    def interrupt_second_seed(*a, **k):
        calls.append(k['seed'])
        if len(calls) == 2: raise KeyboardInterrupt
        return real_run(*a, **k)
    monkeypatch.setattr(bench, 'run', interrupt_second_seed)
    assert main(args) == 130 and not out.exists()
    monkeypatch.setattr(bench, 'run', lambda *a, **k: (calls.append(k['seed']), real_run(*a, **k))[1])
    assert main(args) == 0
    assert calls == [3, 4, 4]  # seed 3 was kept, not trained again
    b = json.loads(out.read_text())
    assert [r['seed'] for r in b['runs']] == [3, 4]
    accs = [r['test_acc'] for r in b['runs']]
    assert b['summary']['mean_test_acc'] == pytest.approx(sum(accs) / 2) and b['summary']['min_test_acc'] == min(accs)
    assert all(r['wall_time'] >= r['train_time'] + r['eval_time'] for r in b['runs'])
    assert b['peak_flops'] > 0 and 'median wall time' in capsys.readouterr().out
    assert main(args) == 2 and 'already exists' in capsys.readouterr().err

def test_a_wrong_flag_shows_the_subcommand_usage(capsys):
    with pytest.raises(SystemExit) as e: main(['sweep', 'lr_sweep', '--bogus', '1'])
    err = capsys.readouterr().err
    assert e.value.code == 2 and 'usage: resnet-fast sweep' in err and '--bogus' in err
