"""quide's trainer vs a conventional PyTorch loop on the same recipe, and both against the FLOP floor.

The conventional loop is the way most paper code is written: a Dataset of PIL images with
torchvision's CPU transforms (RandomCrop(32, padding=4) + RandomHorizontalFlip for CIFAR, ToTensor,
Normalize), a DataLoader (shuffle, ``--workers`` processes, pinned memory) and an eager step with the
same optimizer, schedule, bf16/channels_last settings and batch size as ``quide.measure.train``. Both run
``--epochs`` epochs from the same seed on the same GPU; the script prints images/s, s/epoch and the
ratio over all epochs, and again after the first epoch: the first carries one-off costs (quide
captures its step as a CUDA graph; the DataLoader starts its workers), which a 50- or 100-epoch
training spreads over many epochs and a 3-epoch benchmark does not. Before either is timed, one
untimed eager step of a throwaway model starts the process's CUDA libraries (cuDNN and cuBLAS
handles, lazily loaded kernels): without it the trainer, timed first, paid that start-up in its
first epoch and the loop after it did not (0.72 s and 0.38 s on two H200s:
``results/step_kernels_h200_before_pooling.txt``, ``results/step_kernels_h200.txt``). The FLOP
floor is the training FLOPs of one epoch (``torch.utils.flop_counter`` on one step: forward +
backward, x steps) divided by the GPU's measured peak (a large matmul in the recipe's dtype); each
trainer's distance to it is printed. From the repository root, on a GPU machine::

    QUIDE_DATA=/tmp/quide-data python benchmarks/train_vs_dataloader.py --model simplecnn --epochs 3
    QUIDE_DATA=/tmp/quide-data python benchmarks/train_vs_dataloader.py --model resnet18_cifar --epochs 2
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode
from torchvision import transforms

from quide.measure import data as qd
from quide.measure import models
from quide.measure import train as qt


class ArrayImages(Dataset):
    """uint8 NHWC arrays served as PIL images through torchvision transforms (CPU, per item)."""

    def __init__(self, x, y, transform):
        self.x, self.y, self.transform = x, y, transform

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        img = self.x[i]
        img = Image.fromarray(img[..., 0] if img.shape[2] == 1 else img)
        return self.transform(img), int(self.y[i])


def conventional_train(model, data: qd.ImageData, recipe: qt.Recipe, epochs: int, workers: int, device) -> list[float]:
    """Train ``epochs`` epochs the conventional way; returns each epoch's wall seconds (device synchronized)."""
    mean, std = (tuple(float(v) for v in a) for a in qd.channel_stats(data.x_train))   # as quide normalizes
    ops = [transforms.RandomCrop(data.x_train.shape[1], padding=4), transforms.RandomHorizontalFlip()] \
        if recipe.augment else []
    tf = transforms.Compose(ops + [transforms.ToTensor(), transforms.Normalize(mean, std)])
    n_train = len(data.x_train) - recipe.val_size   # the same number of training images as quide's split
    loader = DataLoader(ArrayImages(data.x_train[:n_train], data.y_train[:n_train], tf), batch_size=recipe.batch_size,
                        shuffle=True, num_workers=workers, pin_memory=True, drop_last=True,
                        persistent_workers=workers > 0)
    memory = torch.channels_last if recipe.channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory).train()
    opt = (torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                           weight_decay=recipe.weight_decay, nesterov=False)
           if recipe.optimizer == "sgd" else
           torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=recipe.epochs) if recipe.schedule == "cosine" else None
    torch.cuda.synchronize()
    ends = [time.perf_counter()]
    for _ in range(epochs):
        for x, y in loader:
            x = x.to(device, non_blocking=True, memory_format=memory)
            y = y.to(device, non_blocking=True)
            with torch.autocast("cuda", torch.bfloat16, enabled=recipe.bf16):
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if sched:
            sched.step()
        torch.cuda.synchronize()
        ends.append(time.perf_counter())
    return list(np.diff(ends))


def start_cuda_libraries(model, shape, recipe: qt.Recipe, device) -> None:
    """One untimed eager forward and backward of ``model`` (a throwaway copy) in the recipe's dtype
    and layout: cuDNN, cuBLAS and their kernels load here, not inside whichever training is timed first."""
    memory = torch.channels_last if recipe.channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory)
    x = torch.randn(recipe.batch_size, *shape, device=device).contiguous(memory_format=memory)
    with torch.autocast("cuda", torch.bfloat16, enabled=recipe.bf16):
        loss = F.cross_entropy(model(x), torch.zeros(recipe.batch_size, dtype=torch.long, device=device))
    loss.backward()
    torch.cuda.synchronize(device)


def quide_train(model, splits, recipe: qt.Recipe, seed: int) -> list[float]:
    """Train with ``quide.measure.train.train``; returns each epoch's wall seconds. The trainer logs each epoch
    after its loss has been read back (the device has finished the epoch); the first epoch is the
    trainer's own wall less the later epochs."""
    stamps = []
    res = qt.train(model, splits, recipe, seed, log=lambda _: stamps.append(time.perf_counter()))
    later = list(np.diff(stamps))
    return [res.wall_s - sum(later)] + later


def step_flops(model, shape, batch: int, bf16: bool, device) -> int:
    """FLOPs of one training step (forward + backward) at ``batch`` images."""
    x = torch.randn(batch, *shape, device=device)
    y = torch.zeros(batch, dtype=torch.long, device=device)
    with FlopCounterMode(display=False) as counter:
        with torch.autocast("cuda", torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def peak_flops(dtype, device, n: int = 8192, repeats: int = 20) -> float:
    """Measured matmul throughput (FLOP/s) in ``dtype`` (TF32 allowed for float32)."""
    torch.backends.cuda.matmul.allow_tf32 = True
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize()
    return 2 * n ** 3 * repeats / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="simplecnn", choices=["simplecnn", "resnet18_cifar"])
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=8, help="DataLoader processes of the conventional loop")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        ap.error("this benchmark compares GPU training; no CUDA device here")
    device = torch.device("cuda")
    data = qd.load_dataset(args.dataset, download=False)
    recipe = qt.paper_recipe(args.model, args.dataset).replace(epochs=args.epochs)
    shape = (data.x_train.shape[3], *data.x_train.shape[1:3])
    n_train = len(data.x_train) - recipe.val_size
    print(f"{args.model} on {data.source}, {n_train} training images, {args.epochs} epochs, batch "
          f"{recipe.batch_size}, {torch.cuda.get_device_name(0)}, torch {torch.__version__}")

    splits = qd.device_splits(data, device, val_size=recipe.val_size, seed=args.seed)
    start_cuda_libraries(models.build_model(args.model, data.num_classes, data.x_train.shape[1:]), shape, recipe,
                         device)
    qt.seed_everything(args.seed)
    e_quide = quide_train(models.build_model(args.model, data.num_classes, data.x_train.shape[1:]), splits, recipe,
                          args.seed)
    qt.seed_everything(args.seed)
    model = models.build_model(args.model, data.num_classes, data.x_train.shape[1:])
    e_conv = conventional_train(model, data, recipe, args.epochs, args.workers, device)
    t_quide, t_conv = sum(e_quide), sum(e_conv)

    flops_epoch = step_flops(model, shape, recipe.batch_size, recipe.bf16, device) * (n_train // recipe.batch_size)
    peak = peak_flops(torch.bfloat16 if recipe.bf16 else torch.float32, device)
    floor_s = flops_epoch / peak
    for name, epochs in (("quide trainer", e_quide), ("conventional loop", e_conv)):
        per_epoch = sum(epochs) / len(epochs)
        print(f"{name:18}: {per_epoch:7.3f} s/epoch, {n_train * len(epochs) / sum(epochs):9.0f} images/s, "
              f"{per_epoch / floor_s:6.1f}x the FLOP floor; first epoch {epochs[0]:.3f} s"
              + (f", later epochs median {np.median(epochs[1:]):.3f} s" if len(epochs) > 1 else ""))
    print(f"speed-up of quide's trainer: {t_conv / t_quide:.2f}x")
    if args.epochs > 1:
        print(f"speed-up after the first epoch (median of the later epochs): "
              f"{np.median(e_conv[1:]) / np.median(e_quide[1:]):.2f}x")
    print(f"FLOP floor: {flops_epoch / 1e12:.3f} TFLOP per epoch / measured peak {peak / 1e12:.0f} TFLOP/s "
          f"({'bf16' if recipe.bf16 else 'fp32 with TF32'} matmul) = {floor_s:.3f} s/epoch")
    return 0 if math.isfinite(t_conv / t_quide) else 1


if __name__ == "__main__":
    raise SystemExit(main())
