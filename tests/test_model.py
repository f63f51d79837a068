import pytest
import torch
import torch.nn.functional as F
from resnet_fast.data import normalise
from resnet_fast.model import (FAST_NET, MODELS, count_parameters, fast_net, forward_flops, make_model, resnet9, resnet18,
                               whitening_filters)

@pytest.mark.parametrize('name', sorted(MODELS))
@pytest.mark.parametrize('width', [0.125, 0.5])
def test_shapes(name, width):
    out = make_model(name, width)(torch.randn(3, 3, 32, 32))  # synthetic input: shapes only
    assert out.shape == (3, 10)

def test_full_width_sizes():
    assert count_parameters(resnet9()) == 6_573_120
    assert round(3 * forward_flops(resnet9()) / 1e9, 1) == 2.3
    r18 = resnet18()
    assert r18.linear.in_features == 512 and r18.layer4[0].conv1.out_channels == 256
    assert round(3 * forward_flops(r18) / 1e9, 1) == 2.8
    net = fast_net()
    assert forward_flops(net) / 1e9 == pytest.approx(0.236, abs=0.002)
    assert [net.block1.conv1.out_channels, net.block2.conv1.out_channels, net.block3.conv1.out_channels] == [c for _, c in FAST_NET]
    assert not net.whiten.weight.requires_grad and all(not m.weight.requires_grad for n, m in net.named_modules() if 'norm' in n)

def test_whitening_decorrelates_real_patches(cifar):
    images = normalise(cifar.train_images[:2000])
    filters = whitening_filters(images)
    out = F.conv2d(images, filters[:12]).permute(1, 0, 2, 3).flatten(1)
    second = out @ out.T / out.shape[1]
    assert (second - torch.diag(second.diagonal())).abs().max() < 1e-2 and second.diagonal()[:6].min() > 0.9
    net = fast_net(0.25); net.fit_to_data(images)
    assert torch.equal(net.whiten.weight, whitening_filters(images[:5000]))
    assert not net.whiten.weight.requires_grad and net.whiten.bias.requires_grad  # fixed filters, a learnt bias

def test_bad_model_and_width():
    with pytest.raises(ValueError, match="model='resnet50'"): make_model('resnet50')
    with pytest.raises(ValueError, match='width=0'): make_model('resnet9', 0)
    with pytest.raises(ValueError, match='width=100'): make_model('resnet9', 100)
