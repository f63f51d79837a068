from pathlib import Path
import pickle
import numpy as np
import pytest
import torch
from resnet_fast.data import (Augment, Batches, DataError, crop, cutout, data_dir, flip, load_cifar10, load_npz_split,
                              normalise, pad_reflect, stratified_subset, evaluation_batches)

def test_real_data_loaded(cifar):
    assert cifar.train_images.shape == (50_000, 3, 32, 32) and cifar.train_images.dtype == torch.uint8
    assert cifar.test_images.shape == (10_000, 3, 32, 32)
    assert torch.bincount(cifar.train_labels).tolist() == [5000] * 10
    # per-channel mean of the training set matches the published CIFAR-10 value
    mean = cifar.train_images.float().mean((0, 2, 3)) / 255
    assert torch.allclose(mean, torch.tensor([0.4914, 0.4822, 0.4465]), atol=1e-3)

def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv('RESNET_FAST_DATA', str(tmp_path))
    assert data_dir() == tmp_path
    assert data_dir(tmp_path / 'x') == tmp_path / 'x'
    monkeypatch.delenv('RESNET_FAST_DATA')
    assert data_dir().name == 'cifar10'

def _write_pickles(cifar, root):
    "torchvision's cifar-10-batches-py layout, written from the real arrays."
    folder = root / 'cifar-10-batches-py'; folder.mkdir()
    images = cifar.train_images.permute(0, 2, 3, 1).numpy().transpose(0, 3, 1, 2).reshape(50_000, -1)
    for i in range(5):
        sl = slice(i * 10_000, (i + 1) * 10_000)
        with open(folder / f'data_batch_{i + 1}', 'wb') as f:
            pickle.dump({'data': images[sl], 'labels': cifar.train_labels[sl].tolist()}, f)
    with open(folder / 'test_batch', 'wb') as f:
        pickle.dump({'data': cifar.test_images.numpy().reshape(10_000, -1), 'labels': cifar.test_labels.tolist()}, f)
    return folder

def test_torchvision_folder_loads_identically(cifar, tmp_path):
    folder = _write_pickles(cifar, tmp_path)
    for path in (tmp_path, folder):
        other = load_cifar10(path, download=False)
        assert torch.equal(other.train_images, cifar.train_images) and torch.equal(other.test_labels, cifar.test_labels)
        assert other.source.startswith('torchvision:')
    (folder / 'data_batch_3').write_bytes((folder / 'data_batch_3').read_bytes()[:1000])
    with pytest.raises(DataError, match='data_batch_3.*truncated or malformed'): load_cifar10(tmp_path, download=False)

def test_missing_truncated_malformed_npz(cifar, tmp_path):
    real = data_dir() / 'cifar10_test.npz'
    (tmp_path / 'cifar10_test.npz').write_bytes(real.read_bytes())
    with pytest.raises(DataError, match=r'cifar10_train\.npz: file not found'): load_cifar10(tmp_path, download=False)
    (tmp_path / 'cifar10_train.npz').write_bytes((data_dir() / 'cifar10_train.npz').read_bytes()[:50_000])
    with pytest.raises(DataError, match=r'cifar10_train\.npz: the file is truncated'): load_cifar10(tmp_path, download=False)
    np.savez(tmp_path / 'cifar10_train.npz', images=np.zeros((10, 32, 32, 3), np.uint8), labels=np.zeros(10, np.uint8))
    with pytest.raises(DataError, match=r'cifar10_train\.npz: images have dtype uint8 and shape \(10, 32, 32, 3\)'):
        load_cifar10(tmp_path, download=False)
    np.savez(tmp_path / 'cifar10_train.npz', pixels=np.zeros(3))
    with pytest.raises(DataError, match=r"arrays \['images', 'labels'\] are missing"): load_npz_split(tmp_path / 'cifar10_train.npz', 50_000)

def test_empty_dir_without_download(tmp_path):
    with pytest.raises(DataError, match='no CIFAR-10 here.*downloading is off'): load_cifar10(tmp_path, download=False)

def test_crop_is_a_shift_of_the_padded_image(cifar):
    x = normalise(cifar.train_images[:64])
    padded = pad_reflect(x, 4)
    assert torch.equal(padded[:, :, 4:36, 4:36], x)
    assert torch.equal(padded[:, :, 4:36, 3], x[:, :, :, 1])  # reflect, not replicate
    g = torch.Generator().manual_seed(0)
    top, left = torch.randint(0, 9, (64,), generator=g), torch.randint(0, 9, (64,), generator=g)
    out = crop(padded, top, left)
    for i in range(64): assert torch.equal(out[i], padded[i, :, top[i]:top[i] + 32, left[i]:left[i] + 32])

def test_flip_is_exact(cifar):
    x = normalise(cifar.train_images[:16])
    mask = torch.arange(16) % 3 == 0
    out = flip(x, mask)
    assert torch.equal(out[mask], x[mask].flip(3)) and torch.equal(out[~mask], x[~mask])
    assert torch.equal(flip(out, mask), x)

def test_cutout_zeroes_exactly_the_patch(cifar):
    x = normalise(cifar.train_images[:32]) + 10  # no pixel is zero before cutout
    top, left = torch.randint(0, 25, (32,)), torch.randint(0, 25, (32,))
    out = cutout(x, top, left, 8)
    for i in range(32):
        patch = torch.zeros(32, 32, dtype=torch.bool); patch[top[i]:top[i] + 8, left[i]:left[i] + 8] = True
        assert (out[i][:, patch] == 0).all() and torch.equal(out[i][:, ~patch], x[i][:, ~patch])

def test_augment_parse():
    assert Augment.parse('crop,flip,cutout') == Augment(4, 'random', 8) and str(Augment.parse('none')) == 'none'
    assert Augment.parse('crop=2,altflip') == Augment(2, 'alternating', 0) and str(Augment(2, 'alternating', 0)) == 'crop=2,altflip'
    with pytest.raises(ValueError, match='cutout_size=99'): Augment.parse('cutout=99')
    with pytest.raises(ValueError, match="augment='rotate'"): Augment.parse('rotate')

@pytest.mark.parametrize('size', [6250, 12_500, 25_000, 999])
def test_stratified_subsets(cifar, size):
    idx = stratified_subset(cifar.train_labels, size, seed=3)
    assert len(idx) == size == len(set(idx.tolist()))
    counts = torch.bincount(cifar.train_labels[idx], minlength=10)
    assert counts.max() - counts.min() <= 1
    assert torch.equal(idx, stratified_subset(cifar.train_labels, size, seed=3))
    assert not torch.equal(idx, stratified_subset(cifar.train_labels, size, seed=4))
    with pytest.raises(ValueError, match='train_size=0'): stratified_subset(cifar.train_labels, 0)

def test_regenerate_past_batch_exactly(cifar):
    b = Batches(cifar.train_images[:3000], cifar.train_labels[:3000], 256, Augment(4, 'random', 8), seed=7)
    seen = []
    for epoch in range(2):
        for i, (x, y) in enumerate(b): seen.append((epoch, i, x.clone(), y.clone()))
    assert b.epoch == 2 and len(seen) == 2 * (3000 // 256)
    for epoch, i, x, y in seen[::5]:
        x2, y2 = b.batch(epoch, i)
        assert torch.equal(x, x2) and torch.equal(y, y2)
        assert torch.equal(cifar.train_labels[:3000][b.indices(epoch, i)], y)
    # epochs differ, and a batch is a crop/flip/cutout of the very samples it names
    assert not torch.equal(seen[0][2], seen[len(seen) // 2][2])
    plan = b.plan(0)
    idx = b.indices(0, 0)
    raw = pad_reflect(normalise(cifar.train_images[:3000][idx]))
    expected = cutout(flip(crop(raw, plan.crop_top[:256], plan.crop_left[:256]), plan.flip[:256]), plan.cut_top[:256], plan.cut_left[:256], 8)
    assert torch.equal(seen[0][2], expected)

def test_batches_cover_the_test_set(cifar):
    tb = evaluation_batches(cifar, 3000)
    assert len(tb) == 4 and sum(len(y) for _, y in tb) == 10_000
    with pytest.raises(ValueError, match='batch_size=0'): Batches(cifar.test_images, cifar.test_labels, 0)

def test_download_when_the_directory_is_empty(cifar, tmp_path, monkeypatch):
    "With neither format present, torchvision's checked downloader fetches the archive, and our own loader reads it."
    import torchvision.datasets.utils as tv_utils
    calls = []
    def fake_download(url, root, filename=None, md5=None):  # stands in for the network: writes the standard folder from the real arrays
        calls.append((url.rsplit('/', 1)[-1], root, filename, md5 is not None))
        _write_pickles(cifar, Path(root))
    monkeypatch.setattr(tv_utils, 'download_and_extract_archive', fake_download)
    got = load_cifar10(tmp_path)
    assert calls == [('cifar-10-python.tar.gz', str(tmp_path), 'cifar-10-python.tar.gz', True)]
    assert torch.equal(got.test_images, cifar.test_images)

def test_failed_download_names_the_directory_and_the_fix(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tv_utils
    def offline(*args, **kwargs): raise OSError('network is unreachable')
    monkeypatch.setattr(tv_utils, 'download_and_extract_archive', offline)
    with pytest.raises(DataError, match=r'no CIFAR-10 here.*download failed \(OSError: network is unreachable\).*RESNET_FAST_DATA'):
        load_cifar10(tmp_path / 'new')
