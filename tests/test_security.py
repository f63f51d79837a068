"""Loading data or a checkpoint never executes code: crafted files are refused with a clear error, genuine ones load."""
import os, pickle, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import torch
from resnet_fast.cli import main
from resnet_fast.data import DataError, load_cifar10
from resnet_fast.training import RECIPES, run

class Payload:
    "Unpickling this creates the file `path`: what an attacker's code would do."
    def __init__(self, path): self.path = str(path)
    def __reduce__(self): return (os.system, (f'touch {self.path}',))

def _batches_folder(root, data_batch_1:bytes, cifar):
    "A cifar-10-batches-py folder whose first training batch is `data_batch_1`, the rest genuine."
    folder = root/'cifar-10-batches-py'; folder.mkdir(parents=True)
    (folder/'data_batch_1').write_bytes(data_batch_1)
    images = cifar.train_images.numpy().reshape(50_000, -1)
    for i in range(1, 5): (folder/f'data_batch_{i + 1}').write_bytes(genuine_batch(images[i * 10_000:(i + 1) * 10_000], cifar.train_labels[i * 10_000:(i + 1) * 10_000]))
    (folder/'test_batch').write_bytes(genuine_batch(cifar.test_images.numpy().reshape(10_000, -1), cifar.test_labels))
    return folder

def genuine_batch(data, labels)->bytes:
    "A batch as the CIFAR site ships it: a Python 2 protocol-2 pickle of a dict with a numpy array, naming numpy.core."
    raw = pickle.dumps({'batch_label': 'training batch', 'labels': [int(v) for v in labels], 'data': np.ascontiguousarray(data),
                        'filenames': ['x.png'] * len(labels)}, protocol=2)
    return raw.replace(b'numpy._core.multiarray', b'numpy.core.multiarray')

def test_genuine_python2_style_pickles_still_load(cifar, tmp_path):
    images = cifar.train_images.numpy().reshape(50_000, -1)
    _batches_folder(tmp_path, genuine_batch(images[:10_000], cifar.train_labels[:10_000]), cifar)
    got = load_cifar10(tmp_path, download=False)
    assert torch.equal(got.train_images, cifar.train_images) and torch.equal(got.test_labels, cifar.test_labels)

def test_crafted_data_pickle_runs_nothing_public_api(cifar, tmp_path):
    marker = tmp_path/'pwned'
    _batches_folder(tmp_path/'data', pickle.dumps({'data': Payload(marker), 'labels': [0]}), cifar)
    with pytest.raises(DataError, match='data_batch_1.*refusing to load posix.system'): load_cifar10(tmp_path/'data', download=False)
    assert not marker.exists()

def test_crafted_data_pickle_runs_nothing_cli(cifar, tmp_path):
    marker = tmp_path/'pwned'
    _batches_folder(tmp_path/'data', pickle.dumps({'data': Payload(marker), 'labels': [0]}), cifar)
    res = subprocess.run([Path(sys.executable).parent/'resnet-fast', 'train', '--data-dir', str(tmp_path/'data'), '--out', str(tmp_path/'r.json')],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and 'data error' in res.stderr and 'refusing to load' in res.stderr and 'Traceback' not in res.stderr
    assert not marker.exists() and not (tmp_path/'r.json').exists()

def _crafted_checkpoint(path, marker):
    torch.save(dict(model=Payload(marker), optimizer={}, rows=[], epoch=1, fingerprint='{}'), path)

def test_crafted_checkpoint_runs_nothing_public_api(cifar, tmp_path):
    marker, ckpt = tmp_path/'pwned', tmp_path/'evil.ckpt'
    _crafted_checkpoint(ckpt, marker)
    with pytest.raises(ValueError, match='cannot be read as a resnet_fast checkpoint'):
        run(RECIPES['resnet9'], width=0.125, epochs=1, train_size=1000, batch_size=250, data=cifar, progress=False, checkpoint=ckpt)
    assert not marker.exists()

def test_crafted_checkpoint_runs_nothing_cli(tmp_path):
    marker, ckpt = tmp_path/'pwned', tmp_path/'evil.ckpt'
    _crafted_checkpoint(ckpt, marker)
    res = subprocess.run([Path(sys.executable).parent/'resnet-fast', 'train', '--recipe', 'resnet9', '--width', '0.125', '--epochs', '1',
                          '--train-size', '1000', '--batch-size', '250', '--no-progress', '--checkpoint', str(ckpt), '--out', str(tmp_path/'r.json')],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and 'cannot be read as a resnet_fast checkpoint' in res.stderr and 'Traceback' not in res.stderr
    assert not marker.exists() and not (tmp_path/'r.json').exists()

@pytest.mark.parametrize('content', [b'', b'garbage' * 100])
def test_truncated_or_garbage_checkpoint_is_a_clear_error(tmp_path, content, capsys):
    ckpt = tmp_path/'bad.ckpt'; ckpt.write_bytes(content)
    assert main(['train', '--recipe', 'resnet9', '--width', '0.125', '--epochs', '1', '--train-size', '1000', '--batch-size', '250',
                 '--no-progress', '--checkpoint', str(ckpt), '--out', str(tmp_path/'r.json')]) == 2
    assert 'cannot be read as a resnet_fast checkpoint' in capsys.readouterr().err

def test_string_labels_in_an_npz_are_a_clear_error(cifar, tmp_path):
    np.savez(tmp_path/'cifar10_train.npz', images=cifar.train_images.permute(0, 2, 3, 1).numpy(), labels=np.array(['cat'] * 50_000))
    np.savez(tmp_path/'cifar10_test.npz', images=cifar.test_images.permute(0, 2, 3, 1).numpy(), labels=cifar.test_labels.numpy())
    with pytest.raises(DataError, match='labels have dtype <U3'): load_cifar10(tmp_path, download=False)

def test_a_protocol_5_pickle_of_a_genuine_batch_loads_and_an_object_array_in_one_is_refused(cifar, tmp_path):
    images = cifar.train_images.numpy().reshape(50_000, -1)
    batch = dict(batch_label='training batch', labels=[int(v) for v in cifar.train_labels[:10_000]], data=np.ascontiguousarray(images[:10_000]))
    _batches_folder(tmp_path / 'new', pickle.dumps(batch, protocol=5), cifar)  # numpy._core.numeric._frombuffer
    assert torch.equal(load_cifar10(tmp_path / 'new', download=False).train_images, cifar.train_images)
    marker = tmp_path / 'pwned'
    _batches_folder(tmp_path / 'evil', pickle.dumps(dict(batch, data=np.array([Payload(marker)], dtype=object)), protocol=5), cifar)
    with pytest.raises(DataError, match='data_batch_1.*refusing'): load_cifar10(tmp_path / 'evil', download=False)
    assert not marker.exists()
