"""Training throughput (images per second) of resnet_fast's pipeline against a plain PyTorch baseline.

Both train the same network on the real CIFAR-10 training set with the same augmentation (reflect-pad 4 +
random crop + horizontal flip), the same batch size and SGD, measured in the same run on the same machine:

* resnet_fast: the dataset normalised and padded once and kept on the device as a tensor, whole-batch
  augmentation, bfloat16 autocast (float16 on CUDA), channels_last, summed loss;
* baseline: a `Dataset` of PIL images with torchvision transforms (RandomCrop, RandomHorizontalFlip, ToTensor,
  Normalize) behind a `DataLoader`, float32, NCHW, mean loss. Measured with 0 and with `--workers` loader
  workers; the faster of the two is the baseline.

Usage: python bench/throughput.py --out results/throughput_cpu.json [--steps 6] [--warmup 2]
"""
import argparse, json, time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image

from resnet_fast.data import Augment, Batches, CIFAR10_MEAN, CIFAR10_STD, load_cifar10
from resnet_fast.model import make_model
from resnet_fast.training import autocast, hardware, make_optimizer, resolve_device, resolve_precision, set_lr, synchronize


class PILDataset(torch.utils.data.Dataset):
    "CIFAR-10 images as PIL images through torchvision transforms, the way most tutorials load it."
    def __init__(self, images, labels, transform): self.images, self.labels, self.transform = images, labels, transform
    def __len__(self): return len(self.labels)
    def __getitem__(self, i): return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def timed_steps(step, batches, warmup, steps, device):
    "Seconds per step over `steps` steps after `warmup` steps, data loading included."
    it = iter(batches)
    for _ in range(warmup): step(*next(it))
    synchronize(device); t0 = time.perf_counter()
    for _ in range(steps): step(*next(it))
    synchronize(device)
    return (time.perf_counter() - t0) / steps


def project_pipeline(name, data, batch_size, device, warmup, steps):
    precision = resolve_precision('auto', device)
    torch.manual_seed(0)
    model = make_model(name).to(device, memory_format=torch.channels_last).train()
    opt = make_optimizer(model, batch_size); set_lr(opt, 0.1, batch_size)
    batches = Batches(data.train_images, data.train_labels, batch_size, Augment(4, True, 0), seed=0, device=device,
                      memory_format=torch.channels_last)
    def step(x, y):
        with autocast(device, precision): logits = model(x)
        loss = F.cross_entropy(logits.float(), y, reduction='sum')
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    return timed_steps(step, batches, warmup, steps, device), precision


def baseline(name, data, batch_size, device, warmup, steps, workers):
    torch.manual_seed(0)
    model = make_model(name).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    transform = T.Compose([T.RandomCrop(32, padding=4, padding_mode='reflect'), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize([m / 255 for m in CIFAR10_MEAN], [s / 255 for s in CIFAR10_STD])])
    dataset = PILDataset(data.train_images.permute(0, 2, 3, 1).numpy(), data.train_labels.numpy(), transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size, shuffle=True, drop_last=True, num_workers=workers,
                                         persistent_workers=workers > 0)
    def step(x, y):
        x, y = x.to(device), y.to(device)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    return timed_steps(step, loader, warmup, steps, device)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--models', default='resnet9,resnet18')
    p.add_argument('--batch-size', type=int, default=512)
    p.add_argument('--steps', type=int, default=6)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--device', default='auto')
    p.add_argument('--out', type=Path, required=True)
    args = p.parse_args()
    if args.out.exists(): raise SystemExit(f'{args.out} exists: refusing to overwrite a benchmark result')
    device = resolve_device(args.device)
    data = load_cifar10()
    rows = []
    for name in args.models.split(','):
        ours, precision = project_pipeline(name, data, args.batch_size, device, args.warmup, args.steps)
        base = {w: baseline(name, data, args.batch_size, device, args.warmup, args.steps, w) for w in sorted({0, args.workers})}
        best_workers = min(base, key=base.get)
        row = dict(model=name, batch_size=args.batch_size, resnet_fast_precision=precision,
                   resnet_fast_images_per_s=args.batch_size / ours,
                   **{f'baseline_fp32_workers{w}_images_per_s': args.batch_size / t for w, t in base.items()},
                   speedup=base[best_workers] / ours, baseline_best_workers=best_workers)
        rows.append(row); print(json.dumps(row), flush=True)
    record = dict(benchmark='training throughput', hardware=hardware(device), steps=args.steps, warmup=args.warmup,
                  augmentation='reflect-pad 4 + random crop + flip', rows=rows, date=time.strftime('%Y-%m-%d %H:%M'))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + '.tmp'); tmp.write_text(json.dumps(record, indent=1)); tmp.replace(args.out)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
