import pytest
import torch
from resnet_fast.model import count_parameters, forward_flops, make_model, resnet9, resnet18

@pytest.mark.parametrize('name', ['resnet9', 'resnet18'])
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

def test_bad_model_and_width():
    with pytest.raises(ValueError, match="model='resnet50'.*resnet18.*resnet9"): make_model('resnet50')
    with pytest.raises(ValueError, match='width=0'): make_model('resnet9', 0)
