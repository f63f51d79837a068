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
    for command in ('bench', 'sweep'):  # every subcommand's help prints (a stray % in a help text makes argparse fail)
        res = subprocess.run([Path(sys.executable).parent/'resnet-fast', command, '--help'], capture_output=True, text=True)
        assert res.returncode == 0 and '--out' in res.stdout and '%%' not in res.stdout, res.stderr[-2000:]

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

# ---------------------------------------------------------------------------------------------------------------
# flags that would fail mid-run, outputs that clash, records that cannot be written where asked
# ---------------------------------------------------------------------------------------------------------------
TINY = ['--width', '0.0625', '--epochs', '1', '--train-size', '1000', '--batch-size', '100', '--tta-level', '0', '--no-progress']

@pytest.mark.parametrize('flags, message', [
    (['--augment', 'size=9,cutout=32'], 'cutout_size=32 is not allowed with size=9'),
    (['--augment', 'size=9', '--batch-size', '1'], 'batch_size=1 is not allowed'),
    (['--recipe', 'resnet18', '--batch-size', '1'], "batch_size=1 is not allowed with model='resnet18'")])
def test_flag_combinations_that_would_fail_mid_run_are_refused_before_work(flags, message, tmp_path, capsys, monkeypatch):
    import resnet_fast.training as training
    monkeypatch.setattr(training, 'load_cifar10', lambda *a, **k: pytest.fail('data was loaded before the flags were checked'))
    assert main(['train', *flags, '--out', str(tmp_path / 'r.json')]) == 2
    err = capsys.readouterr().err
    assert message in err and 'Traceback' not in err

def test_out_and_checkpoint_on_one_file_are_refused(tmp_path, capsys):
    same = str(tmp_path / 'x')
    assert main(['train', '--out', same, '--checkpoint', same]) == 2 and 'both' in capsys.readouterr().err

def test_a_record_saved_to_the_recovery_folder_exits_non_zero(tmp_path, capsys, monkeypatch):
    import resnet_fast.cli as cli, resnet_fast.records as records
    monkeypatch.setattr(records, 'RECOVERY_DIR', tmp_path / 'recovered')
    out, real_run = tmp_path / 'gone' / 'r.json', cli.run
    def run_then_lose_the_folder(*a, **k):
        result = real_run(*a, **k); (tmp_path / 'gone').write_text('a file where the folder was to be'); return result
    monkeypatch.setattr(cli, 'run', run_then_lose_the_folder)
    assert main(['train', *TINY, '--out', str(out)]) == 1
    assert len(list((tmp_path / 'recovered').glob('*r.json'))) == 1 and 'saved to' in capsys.readouterr().out

BENCH = ['bench', '--width', '0.0625', '--epochs', '0.5', '--train-size', '1000', '--batch-size', '100', '--tta-level', '0', '--no-progress']

def test_a_second_bench_on_one_out_stops_before_work_naming_the_first(tmp_path, capsys, monkeypatch):
    import os
    import resnet_fast.bench as bench
    out = tmp_path / 'same.json'
    code = f"from resnet_fast.records import hold\nwith hold({str(out)!r}, 'benchmark'): print('held', flush=True); import time; time.sleep(60)"
    first = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True, env=dict(os.environ, OMP_NUM_THREADS='1'))
    try:
        assert first.stdout.readline().strip() == 'held'
        monkeypatch.setattr(bench, 'load_cifar10', lambda *a, **k: pytest.fail('the second benchmark did work'))
        assert main([*BENCH, '--seeds', '1', '--out', str(out)]) == 2
        err = capsys.readouterr().err
        assert f'in use by another benchmark (process {first.pid}' in err and 'Traceback' not in err
    finally: first.kill(); first.communicate()
    assert not out.exists()

@pytest.mark.parametrize('content', ['{"key": "x", "ru', '[1, 2]'], ids=['truncated', 'a list'])
def test_a_seed_file_that_is_not_one_is_a_clear_error_naming_it(content, tmp_path, capsys, monkeypatch):
    import resnet_fast.bench as bench
    monkeypatch.setattr(bench, 'matmul_peak_flops', lambda *a, **k: 1e12)
    out = tmp_path / 'b.json'; bench.seeds_folder(out).mkdir(); (bench.seeds_folder(out) / 'seed_0.json').write_text(content)
    assert main([*BENCH, '--seeds', '1', '--out', str(out)]) == 2
    err = capsys.readouterr().err
    assert str(bench.seeds_folder(out) / 'seed_0.json') in err and 'delete it' in err and 'Traceback' not in err

def test_a_full_disk_stops_bench_cleanly_and_the_rerun_resumes(tmp_path, capsys, monkeypatch):
    import errno, os
    import resnet_fast.bench as bench
    monkeypatch.setattr(bench, 'matmul_peak_flops', lambda *a, **k: 1e12)
    out, real_fsync, writes = tmp_path / 'b.json', os.fsync, []
    def disk_full_after_one_write(fd):
        writes.append(fd)
        if len(writes) > 1: raise OSError(errno.ENOSPC, 'No space left on device')
        return real_fsync(fd)
    monkeypatch.setattr(os, 'fsync', disk_full_after_one_write)  # seed 0 is kept, seed 1 does not fit
    assert main([*BENCH, '--seeds', '2', '--out', str(out)]) == 1
    err = capsys.readouterr().err
    assert 'No space left on device' in err and 'seed_1.json' in err and 'finished seeds are kept' in err and 'Traceback' not in err
    assert [p.name for p in bench.seeds_folder(out).iterdir()] == ['seed_0.json'] and not out.exists()
    monkeypatch.setattr(os, 'fsync', real_fsync)
    assert main([*BENCH, '--seeds', '2', '--out', str(out)]) == 0
    assert 'seed 0: kept from an earlier' in capsys.readouterr().out and [r['seed'] for r in json.loads(out.read_text())['runs']] == [0, 1]
