"The fastest recipe's ingredients: Muon for the filters, smaller training windows, selective test-time augmentation."
import json
import pytest, torch
import torch.nn.functional as F
from torch import nn
from resnet_fast.data import IMAGE_SIZE, MIN_SIZE, Augment, Batches, normalise
from resnet_fast.model import fast_net, forward_flops, layer_flops, make_model
from resnet_fast.optim import Muon, orthogonalise, set_lr
from resnet_fast.training import RECIPES, run, selective_tta_logits, tta_logits
from resnet_fast.bench import step_flops, training_flops_per_image, training_pflop

def test_orthogonalise_flattens_the_spectrum_of_wide_and_tall_matrices():
    torch.manual_seed(0)
    for rows, cols in [(256, 576), (576, 64)]:
        k = min(rows, cols)
        u, v = torch.linalg.qr(torch.randn(rows, k))[0], torch.linalg.qr(torch.randn(cols, k))[0]
        g = u @ torch.diag(torch.logspace(-3, 0, k)) @ v.T  # singular values spread over three decades
        o = orthogonalise(g)
        assert o.shape == g.shape and o.dtype == torch.bfloat16
        before, after = torch.linalg.svdvals(g), torch.linalg.svdvals(o.float())
        assert after.max() < 1.3 and after.median() / after.max() > 5 * before.median() / before.max()

def _batch(cifar, n=256):
    return normalise(cifar.train_images[:n]).contiguous(memory_format=torch.channels_last), cifar.train_labels[:n]

def test_muon_steps_filters_orthogonally_at_a_fixed_norm_and_the_rest_by_sgd(cifar):
    torch.manual_seed(0)
    net = fast_net(0.25).to(memory_format=torch.channels_last)
    x, y = _batch(cifar)
    net.fit_to_data(x)
    ref = fast_net(0.25).to(memory_format=torch.channels_last); ref.load_state_dict(net.state_dict())
    muon = Muon(filter_lr=0.1, filter_momentum=0.6, momentum=0.85, weight_decay=2e-3, norm_bias_lr_scale=64.0)
    opt = muon(net, len(y)); set_lr(opt, 1.5, len(y))
    filters = [p for p in net.parameters() if p.ndim == 4 and p.requires_grad]
    assert opt.param_groups[0]['params'] == filters and opt.param_groups[0]['lr'] == pytest.approx(0.15)  # value x filter_lr
    # the other weights (every bias at the fast rate, the head at the base rate) step exactly as torch's SGD would step them
    assert {len(g['params']) for g in opt.param_groups[1:]} == {1, 7}  # the head; the stem's and the six batch-norm biases
    ref_opt = torch.optim.SGD(muon.groups([(n, p) for n, p in ref.named_parameters() if p.requires_grad and p.ndim != 4], len(y)),
                              lr=0.0, momentum=0.85, nesterov=True)
    set_lr(ref_opt, 1.5, len(y))
    before = [p.detach().clone() for p in filters]
    for model, o in ((net, opt), (ref, ref_opt)):
        o.zero_grad(); F.cross_entropy(model(x), y, reduction='sum').backward(); o.step()  # one step: the filters then differ
    others = [(n, p) for n, p in net.named_parameters() if p.requires_grad and p.ndim != 4]
    for (n, p), q in zip(others, [q for q in ref.parameters() if q.requires_grad and q.ndim != 4]):
        assert torch.allclose(p, q, atol=1e-6), n
    for p, p0 in zip(filters, before):
        step = (p - p0 * (len(p) ** 0.5 / p0.norm())).detach()  # after the rescale to norm sqrt(out channels), one orthogonal step of size lr
        assert not torch.allclose(p, p0)
        assert p.norm().item() == pytest.approx(len(p) ** 0.5, rel=0.1)
        sv = torch.linalg.svdvals(step.flatten(1).float() / 0.15)
        assert 0.3 < sv.median() and sv.max() < 1.3  # an orthogonalised step, whatever the gradient's scale

def test_muon_is_checked_and_recorded():
    with pytest.raises(ValueError, match='filter_lr=0'): Muon(filter_lr=0)
    with pytest.raises(ValueError, match='newton_schulz_steps=0'): Muon(newton_schulz_steps=0)
    with pytest.raises(ValueError, match='momentum=1.5'): Muon(momentum=1.5)
    s = RECIPES['fastest'].settings()
    assert s['optimizer']['kind'] == 'Muon' and s['optimizer']['filter_lr'] == RECIPES['fastest'].optimizer.filter_lr and 0 < s['tta_fraction'] < 1
    json.dumps(s)

def test_a_muon_run_resumes_from_its_checkpoint_exactly(cifar, tmp_path, monkeypatch):
    kw = dict(width=0.125, batch_size=256, train_size=1024, data=cifar, seed=2, progress=False, epochs=2, tta_fraction=0.0)
    full = run(RECIPES['fastest'], **kw)
    ckpt, real_batch = tmp_path/'m.ckpt', Batches.batch
    def interrupt_in_second_epoch(self, epoch, index):
        if epoch == 1 and len(self.labels) == 1024: raise KeyboardInterrupt
        return real_batch(self, epoch, index)
    monkeypatch.setattr(Batches, 'batch', interrupt_in_second_epoch)
    with pytest.raises(KeyboardInterrupt): run(RECIPES['fastest'], checkpoint=ckpt, **kw)
    monkeypatch.setattr(Batches, 'batch', real_batch)
    resumed = run(RECIPES['fastest'], checkpoint=ckpt, **kw)
    assert resumed.resumed_from_epoch == 1 and [r['train_loss'] for r in resumed.rows] == [r['train_loss'] for r in full.rows]
    assert resumed.final['test_acc'] == full.final['test_acc']

def test_training_windows_are_translated_centre_windows_and_whole_images_later(cifar):
    aug = Augment.parse('crop=2,size=28:2')
    b = Batches(cifar.train_images[:512], cifar.train_labels[:512], 128, aug, seed=3)
    x, _ = b.batch(0, 1)
    assert x.shape == (128, 3, 28, 28) and torch.equal(x, b.batch(0, 1)[0])
    images, plan = normalise(cifar.train_images[:512]), b.plan(0)
    for j in range(5):
        i, k = plan.order[128 + j], 128 + j
        top, left = int(plan.crop_top[k]), int(plan.crop_left[k])  # 0..4: the window's corner in the unpadded image
        assert torch.equal(x[j], images[i, :, top:top + 28, left:left + 28])
    assert {int(t) for t in plan.crop_top} == {0, 1, 2, 3, 4}  # +-2 pixels around the centre (2, 2)
    assert b.batch(1, 0)[0].shape[-1] == 28 and b.batch(2, 0)[0].shape[-1] == 32  # whole images from epoch 2 on
    assert Augment.parse('size=28').size_at(10**6) == 28 and str(Augment.parse('crop=2,size=28:2')) == 'crop=2,size=28:2'
    with pytest.raises(ValueError, match='size=40'): Augment.parse('size=40')
    with pytest.raises(ValueError, match='size=4 '): Augment(size=4)

def test_the_fast_network_takes_every_allowed_window():
    net = fast_net(0.125).eval()
    for size in range(MIN_SIZE, IMAGE_SIZE + 1): assert net(torch.zeros(2, 3, size, size)).shape == (2, 10)
    with pytest.raises(ValueError, match=f'size={MIN_SIZE - 1} is not allowed'): Augment(size=MIN_SIZE - 1)

def test_the_silu_variant_differs_only_in_the_conv_groups_activation():
    gelu, silu = make_model('fast_net'), make_model('fast_net_silu')
    acts = lambda net: {name: type(m).__name__ for name, m in net.named_modules() if isinstance(m, (nn.GELU, nn.SiLU))}
    assert acts(silu) == {name: ('GELU' if name == 'act' else 'SiLU') for name in acts(gelu)} and len(acts(gelu)) == 7
    assert [p.shape for p in gelu.parameters()] == [p.shape for p in silu.parameters()]

def test_jitter_shifts_and_scales_each_image_and_leaves_the_other_draws_alone(cifar):
    plain = Batches(cifar.train_images[:512], cifar.train_labels[:512], 128, Augment.parse('crop=2,altflip'), seed=5)
    lit = Batches(cifar.train_images[:512], cifar.train_labels[:512], 128, Augment.parse('crop=2,altflip,brightness=0.14,contrast=0.13'), seed=5)
    (x, y), (z, w) = plain.batch(1, 2), lit.batch(1, 2)
    assert torch.equal(y, w)  # same order, crops and flips: only the pixel values change
    shift, scale = lit.plan(1).shift[256:384], lit.plan(1).scale[256:384]
    assert torch.allclose(z, (x + shift.view(-1, 1, 1, 1)) * scale.view(-1, 1, 1, 1))
    assert shift.abs().max() <= 0.14 and shift.std() > 0.05 and (scale - 1).abs().max() <= 0.13 and scale.std() > 0.05
    assert not torch.equal(lit.plan(0).shift, lit.plan(1).shift)  # drawn afresh every epoch
    with pytest.raises(ValueError, match='contrast=1.5 is not allowed'): Augment.parse('contrast=1.5')

def _conv_flops(net, size):
    "Forward FLOPs of each convolution and linear layer of `net` on one `size`-pixel image, by layer name."
    names = {m: n for n, m in net.named_modules()}
    return {names[m]: f for m, f in layer_flops(net, size) if f}

def test_a_step_pays_for_the_gradients_it_computes():
    "Weight gradients of learning layers, input gradients where something before learns: three forward passes less what is frozen."
    net = fast_net(); f = _conv_flops(net, 32)
    forward = sum(f.values())
    assert forward == forward_flops(net) and step_flops(net) == 3 * forward - 2 * f['whiten']  # the stem's filters are fixed and nothing runs before it
    net.whiten.bias.requires_grad_(False)
    assert step_flops(net) == 3 * forward - 2 * f['whiten'] - f['block1.conv1']  # nothing before block1 learns: no gradient for its input
    for p in net.block1.parameters(): p.requires_grad_(False)
    assert step_flops(net) == forward + 2 * sum(v for k, v in f.items() if not k.startswith(('whiten', 'block1'))) - f['block2.conv1']

def test_smaller_windows_and_frozen_layers_cost_fewer_flops():
    none = RECIPES['fast'].variant(freeze='none')
    small, early = none.variant(augment='altflip,size=28'), none.variant(augment='crop=2,altflip,size=28:3')
    net = fast_net(); full, reduced = step_flops(net, 32), step_flops(net, 28)
    assert training_flops_per_image(none) == full and training_flops_per_image(small) == reduced < 0.8 * full
    assert training_flops_per_image(early) == pytest.approx((3 * reduced + 8 * full) / 11)  # 3 of 11 epochs on windows
    net.whiten.bias.requires_grad_(False); stem_frozen = step_flops(net, 32)
    assert training_flops_per_image(RECIPES['fast']) == pytest.approx((3 * full + 8 * stem_frozen) / 11)  # the stem's bias learns for 3 of 11 epochs
    for p in net.block1.parameters(): p.requires_grad_(False)
    late = RECIPES['fast'].variant(freeze='3:whiten.bias,9.5:block1')
    assert training_flops_per_image(late) == pytest.approx((3 * full + 6.5 * stem_frozen + 1.5 * step_flops(net, 32)) / 11)  # steps, not epochs, count
    assert training_pflop(RECIPES['fastest']) < 0.29  # below airbench94_muon's training arithmetic

def test_selective_tta_gives_the_views_to_the_least_confident_images_only(cifar):
    torch.manual_seed(0)
    net = fast_net(0.25).to(memory_format=torch.channels_last)
    x, _ = _batch(cifar, 200)
    net.fit_to_data(x); net.eval()
    with torch.no_grad():
        plain, full = net(x).float(), tta_logits(net, x, 2).float()
        assert torch.allclose(selective_tta_logits(net, x, 2, 1.0), full) and torch.allclose(selective_tta_logits(net, x, 2, 0.0), plain)
        some = selective_tta_logits(net, x, 2, 0.25)
    changed = (some != plain).any(1)
    assert changed.sum() == 50 and torch.allclose(some[changed], full[changed], atol=1e-5)
    confidence = plain.softmax(1).amax(1)
    assert confidence[changed].max() <= confidence[~changed].min()

def test_cli_checks_the_new_flags(capsys):
    from resnet_fast.cli import main
    assert main(['train', '--recipe', 'fastest', '--tta-fraction', '1.5']) == 2 and 'tta_fraction=1.5' in capsys.readouterr().err
    assert main(['train', '--recipe', 'fastest', '--augment', 'size=40']) == 2 and 'size=40' in capsys.readouterr().err
    assert main(['train', '--recipe', 'fastest', '--freeze', '3:block9']) == 2 and "'block9' is not a learnt parameter" in capsys.readouterr().err

def test_selective_tta_reuses_the_plain_prediction(cifar):
    "At a quarter, the least confident images get five more forward passes, not six: their plain view is the one already made."
    torch.manual_seed(0)
    net = fast_net(0.25).to(memory_format=torch.channels_last)
    x, _ = _batch(cifar, 200)
    net.fit_to_data(x); net.eval()
    seen = []
    handle = net.register_forward_hook(lambda module, inputs, output: seen.append(len(inputs[0])))
    try:
        with torch.no_grad(): selective_tta_logits(net, x, 2, 0.25)
    finally: handle.remove()
    assert seen == [200] + [50] * 5

def test_freeze_stops_the_named_weights_at_their_epoch(cifar, monkeypatch):
    "A `freeze` epoch is counted in steps (half an epoch of four steps is two steps); a weight frozen from the start keeps its initial value (this recipe averages no weights)."
    import resnet_fast.training as training
    kw = dict(width=0.125, batch_size=256, train_size=1024, data=cifar, progress=False, epochs=2, tta_fraction=0.0)
    learning, real_stops = [], training.freeze_epochs
    def spy(net, freeze):
        stops = real_stops(net, freeze)
        net.register_forward_pre_hook(lambda module, args: learning.append(tuple(p.requires_grad for p, _ in stops)) if module.training else None)
        return stops
    monkeypatch.setattr(training, 'freeze_epochs', spy)
    result, net, _ = run(RECIPES['fastest'], freeze='0.5:whiten.bias,1.25:block1', return_model=True, **kw)
    assert learning == [(True,) + (True,) * 4] * 2 + [(False,) + (True,) * 4] * 3 + [(False,) + (False,) * 4] * 3  # the stem's bias, then block1's 4 learnt tensors
    assert json.loads(result.to_json())['settings']['freeze'] == [[0.5, 'whiten.bias'], [1.25, 'block1']] and RECIPES['fast'].freeze == ((3.0, 'whiten.bias'),)
    learning.clear(); _, net, _ = run(RECIPES['fastest'], freeze='0:whiten.bias,0:block1.conv1', return_model=True, **kw)
    torch.manual_seed(0); initial = fast_net(0.125)
    assert learning == [(False, False)] * 8
    assert torch.equal(net.whiten.bias.detach(), initial.whiten.bias.detach()) and torch.equal(net.block1.conv1.weight.detach(), initial.block1.conv1.weight.detach())
    assert not torch.equal(net.block1.conv2.weight.detach(), initial.block1.conv2.weight.detach())

def test_freeze_follows_the_model_and_must_leave_something_to_train():
    from resnet_fast.report import describe_recipe
    assert RECIPES['fast'].variant(model='resnet9').freeze == () and RECIPES['fast'].variant(model='fast_net_silu').freeze == RECIPES['fast'].freeze
    with pytest.raises(ValueError, match="'whiten.bias' is not a learnt parameter"): RECIPES['fast'].variant(model='resnet9', freeze='3:whiten.bias')
    with pytest.raises(ValueError, match='leaving nothing to train'): RECIPES['fastest'].variant(freeze='1:whiten.bias,1:block1,1:block2,7.5:block3,7.9:linear')
    assert RECIPES['fastest'].variant(freeze='1:whiten.bias,1:block1,1:block2,7.5:block3,8:linear').freeze[-1] == (8.0, 'linear')  # the head learns to the end
    old = {k: v for k, v in json.loads(json.dumps(RECIPES['fast'].settings() | dict(precision='bf16'))).items() if k != 'freeze'}  # a record made before the field
    assert 'freezing whiten.bias at epoch 3' in describe_recipe(old) and 'freezing' not in describe_recipe(old | dict(model='resnet9'))
    assert 'freezing whiten.bias at epoch 3, block1 at epoch 6.5' in describe_recipe(json.loads(json.dumps(RECIPES['fastest'].settings() | dict(precision='bf16'))))
