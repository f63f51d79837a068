import json, subprocess, sys
from pathlib import Path
import pytest
from resnet_fast.cli import main

@pytest.mark.parametrize('flags, message', [
    (['--lr-mult', '-1'], 'lr_mult=-1.0'), (['--batch-size', '0'], 'batch_size=0'),
    (['--train-size', '1000', '--batch-size', '1001'], 'batch_size=1001'), (['--model', 'resnet50'], "model='resnet50'"),
    (['--train-size', '60000'], 'train_size=60000'), (['--device', 'gpu0'], "device='gpu0'")])
def test_bad_flags_fail_fast(flags, message, capsys):
    assert main(['train', *flags]) == 2
    err = capsys.readouterr().err
    assert 'error' in err and message in err

def test_help_explains_every_flag():
    out = subprocess.run([Path(sys.executable).parent / 'resnet-fast', 'train', '--help'], capture_output=True, text=True).stdout
    for flag in ['--model', '--width', '--epochs', '--batch-size', '--lr-mult', '--train-size', '--augment', '--seed',
                 '--device', '--precision', '--data-dir', '--out', '--checkpoint']:
        assert flag in out

def test_train_writes_result_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / 'run.json'
    args = ['train', '--width', '0.125', '--epochs', '1', '--train-size', '1000', '--batch-size', '200', '--out', str(out), '--no-progress']
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert result['settings']['train_size'] == 1000 and len(result['rows']) == 1
    assert 'test acc' in capsys.readouterr().out
    before = out.read_text()
    assert main(args) == 2 and 'already exists' in capsys.readouterr().err
    assert out.read_text() == before

@pytest.mark.parametrize('flags, message', [(['--seeds', '0'], 'seeds=0'), (['--recipe', 'vgg'], "recipe='vgg'"),
                                            (['--lr-mult', '0'], 'lr_mult=0.0'), (['--device', 'tpu'], "device='tpu'"),
                                            (['--tta-level', '3'], 'tta_level=3'), (['--epochs', '0'], 'epochs=0'),
                                            (['--recipe', 'resnet9', '--epochs', '2.5'], 'epochs=2.5'),
                                            (['--recipe', 'resnet9', '--width', '-1'], 'width=-1')])
def test_bench_bad_flags_fail_fast(flags, message, capsys):
    assert main(['bench', *flags]) == 2
    assert message in capsys.readouterr().err

def test_bench_writes_statistics_and_refuses_to_overwrite(tmp_path, capsys):
    "Two tiny real runs of the fast recipe: the record holds one entry per seed and a summary computed from them."
    out = tmp_path / 'bench.json'
    args = ['bench', '--width', '0.0625', '--epochs', '1', '--seeds', '2', '--first-seed', '3', '--out', str(out)]
    assert main(args) == 0
    b = json.loads(out.read_text())
    assert [r['seed'] for r in b['runs']] == [3, 4]
    accs = [r['test_acc'] for r in b['runs']]
    assert b['summary']['mean_test_acc'] == pytest.approx(sum(accs) / 2) and b['summary']['min_test_acc'] == min(accs)
    assert all(r['wall_time'] == pytest.approx(r['train_time'] + r['eval_time']) for r in b['runs'])
    assert b['peak_flops'] > 0 and b['data_load_time'] > 0 and 'median wall time' in capsys.readouterr().out
    assert main(args) == 2 and 'already exists' in capsys.readouterr().err

def test_bench_series_recipe(tmp_path, capsys):
    "The series' ResNet-9 recipe through the same bench: one tiny real run, evaluated and timed."
    out = tmp_path / 'bench9.json'
    assert main(['bench', '--recipe', 'resnet9', '--width', '0.0625', '--epochs', '1', '--seeds', '1', '--out', str(out), '--no-progress']) == 0
    b = json.loads(out.read_text())
    assert b['settings']['recipe'] == 'resnet9' and b['settings']['epochs'] == 1 and b['settings']['batch_size'] == 512
    assert 0.1 < b['runs'][0]['test_acc'] < 1 and b['runs'][0]['eval_time'] > 0
    assert 'resnet9 recipe' in capsys.readouterr().out
