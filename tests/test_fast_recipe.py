"The fast recipe's parts, each on real CIFAR-10 where it matters; synthetic tensors only for shapes."
import math
import pytest, torch
import torch.nn.functional as F
from resnet_fast.data import normalise, pad_reflect
from resnet_fast.model import forward_flops
from resnet_fast.fast_recipe import (FAST_NET, alternating_flip_batches, evaluate_tta, fast_net, fast_optimizer, fast_schedule,
                                     image_patches, lookahead_update, randomly_flipped, train_fast, tta_logits, whitening_filters)

def test_network_shape_and_cost():
    net = fast_net()
    assert net(torch.zeros(3, 3, 32, 32)).shape == (3, 10)
    assert forward_flops(net) == pytest.approx(0.236e9, rel=0.01)  # airbench94's network
    assert not net.whiten.weight.requires_grad and net.whiten.bias.requires_grad
    assert all(not m.weight.requires_grad for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    narrow = fast_net((('a', 8), ('b', 16), ('c', 16)))
    assert narrow(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(ValueError, match='three conv groups'): fast_net((('a', 8), ('b', 16)))

def test_whitening_decorrelates_real_patches(cifar):
    images = normalise(cifar.train_images[:2000])
    filters = whitening_filters(images)
    assert filters.shape == (24, 3, 2, 2)
    torch.testing.assert_close(filters[12:], -filters[:12])
    out = F.conv2d(images, filters[:6]).permute(1, 0, 2, 3).flatten(1)  # the 6 strongest components
    moment = out @ out.T / out.shape[1]
    torch.testing.assert_close(moment, torch.eye(6), atol=0.03, rtol=0)

def test_alternating_flips_mirror_every_image_in_odd_epochs(cifar):
    images = normalise(cifar.train_images[:64]); labels = torch.arange(64)
    plain = randomly_flipped(images, seed=1)
    assert 10 < sum(not torch.equal(a, b) for a, b in zip(plain, images)) < 54  # about half flipped
    even = torch.cat([x for x, _ in alternating_flip_batches(plain, labels, 16, 0, seed=1, translate=0)])
    order_even = torch.cat([y for _, y in alternating_flip_batches(plain, labels, 16, 0, seed=1, translate=0)])
    odd = torch.cat([x for x, _ in alternating_flip_batches(plain, labels, 16, 1, seed=1, translate=0)])
    order_odd = torch.cat([y for _, y in alternating_flip_batches(plain, labels, 16, 1, seed=1, translate=0)])
    torch.testing.assert_close(odd[order_odd.argsort()], even[order_even.argsort()].flip(-1))
    shifted = next(alternating_flip_batches(pad_reflect(plain, 2), labels, 16, 0, seed=1, translate=2))[0]
    assert shifted.shape == (16, 3, 32, 32)

def test_schedule_optimizer_and_averaging():
    s = fast_schedule(100)
    assert s(0) == pytest.approx(0.2) and s(23) == pytest.approx(1.0) and s(100) == pytest.approx(0.07)
    net = fast_net((('a', 8), ('b', 8), ('c', 8)))
    opt = fast_optimizer(net, 1024)
    assert opt.param_groups[0]['lr'] == pytest.approx(64 * opt.param_groups[1]['lr'])
    average = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad(): net.linear.weight.add_(1.0)
    lookahead_update(average, net, decay=0.75)
    torch.testing.assert_close(net.linear.weight, average['linear.weight'])
    assert (average['linear.weight'] - net.linear.weight).abs().max() == 0

def test_tta_levels_average_views():
    net = fast_net((('a', 8), ('b', 8), ('c', 8))).eval()
    x = torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(tta_logits(net, x, 1), 0.5 * net(x) + 0.5 * net(x.flip(-1)))
        assert tta_logits(net, x, 2).shape == (4, 10)

@pytest.mark.parametrize('kwargs, message', [(dict(epochs=0), 'epochs=0'), (dict(epochs=math.nan), 'epochs=nan'),
                                             (dict(tta_level=5), 'tta_level=5'), (dict(batch_size=0), 'batch_size=0'),
                                             (dict(groups=(('a', 0), ('b', 8), ('c', 8))), 'groups='), (dict(groups=(('a', 8),)), 'groups=')])
def test_bad_settings_fail_before_work(cifar, kwargs, message):
    with pytest.raises(ValueError, match=message): train_fast(cifar, **kwargs)

def test_short_real_run_learns(cifar):
    "A sixth of an epoch of a half-width network on real data: far above chance, timings and rows recorded."
    r = train_fast(cifar, epochs=0.17, groups=(('block1', 32), ('block2', 128), ('block3', 128)), tta_level=1, progress=False)
    assert r['steps'] == 9 and r['images'] == 9 * 1024 and len(r['rows']) == 1
    assert r['test_acc'] > 0.25 and not r['diverged']
    assert r['wall_time'] == pytest.approx(r['train_time'] + r['eval_time']) and r['eval_time'] > 0
