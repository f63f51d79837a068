import pytest
from resnet_fast.schedule import SCHEDULES, piecewise_linear, recipe_schedule

def test_values_at_knots_and_between():
    lr = piecewise_linear([0, 15, 30, 35], [0, 0.4, 0.005, 0])
    assert [lr(e) for e in (0, 15, 30, 35)] == [0, 0.4, 0.005, 0]
    assert lr(7.5) == pytest.approx(0.2)
    assert lr(22.5) == pytest.approx((0.4 + 0.005) / 2)
    assert lr(32.5) == pytest.approx(0.0025)
    assert lr(-1) == 0 and lr(40) == 0  # flat outside the knots

def test_recipe_schedules():
    assert recipe_schedule('resnet9')(5) == pytest.approx(0.4)
    assert recipe_schedule('resnet9', batch_size=512)(5) == pytest.approx(0.4)
    s = recipe_schedule('resnet9', epochs=12, lr_mult=4)
    assert s.knots == [0, 2.5, 12] and s(2.5) == pytest.approx(1.6) and s(12) == 0
    # parts 1-2: 0.1 at batch 128 (the authors' code); batch 512 keeps the rate per example, +10% gives their 0.44
    r18 = recipe_schedule('resnet18', batch_size=128)
    assert [r18(e) for e in (0, 15, 30, 35)] == pytest.approx([0, 0.1, 0.005, 0])
    assert recipe_schedule('resnet18', batch_size=512, lr_mult=1.1)(15) == pytest.approx(0.44)
    assert recipe_schedule('resnet18', batch_size=512)(15) / 512 == pytest.approx(r18(15) / 128)
    assert set(SCHEDULES) == {'resnet9', 'resnet18'}

def test_bad_knots():
    with pytest.raises(ValueError, match='knots must not decrease'): piecewise_linear([0, 2, 1], [0, 1, 0])
    with pytest.raises(ValueError, match='as many knots as values'): piecewise_linear([0, 1], [0])
