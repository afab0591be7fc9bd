"""Why quide's max-pool backward scatters rather than adds: on the GPU, scatter_add_'s atomic adds
flush subnormal gradients to zero, PyTorch's own backward does not.

On one CUDA device: a ReLU'd tensor of SimpleCNN's first pooling shape (128 x 32 x 32 x 32) and a
random output gradient with subnormals, -0.0 and +0.0 written into it; the backward of
``F.max_pool2d(x, 2)`` against the first version of quide's (``scatter_add_`` into zeros) and the
one in ``quide.measure.models`` (``gradient + 0.0``, then ``scatter_``): how many input gradients differ
bit for bit, and their values. Output: ``results/pool_backward_subnormals_h200.txt`` (run at commit
31470ab as ``.diag/pool_diag3.py``, an untracked copy of this file without this docstring).

    PYTHONPATH=. python benchmarks/probes/pool_backward_subnormals.py     # on a GPU machine; seconds
"""
import torch, torch.nn.functional as F
from quide.measure import models
dev = torch.device("cuda")
g = torch.Generator(device=dev).manual_seed(0)
x = torch.relu(torch.randn(128, 32, 32, 32, device=dev, generator=g))
grad = torch.randn(128, 32, 16, 16, device=dev, generator=g)
grad[0, 0, 0, :8] = torch.tensor([1e-40, -1e-40, 1e-39, -0.0, 1e-45, 2e-38, 0.0, -3e-40])
def run(pool):
    xx = x.clone().requires_grad_()
    pool(xx).backward(grad)
    return xx.grad
def scatter_add_pool(t):   # the first version: scatter_add_ into zeros
    class P(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            out, i = F.max_pool2d(x, 2, return_indices=True); ctx.save_for_backward(i); ctx.s = x.shape; return out
        @staticmethod
        def backward(ctx, go):
            (i,) = ctx.saved_tensors; n, c, h, w = ctx.s
            gi = torch.zeros(ctx.s, device=go.device); gi.view(n, c, h * w).scatter_add_(2, i.reshape(n, c, -1), go.reshape(n, c, -1)); return gi
    return P.apply(t)
native = run(lambda t: F.max_pool2d(t, 2))
for name, pool in (("scatter_add_ (first version)", scatter_add_pool), ("quide now (+0.0, scatter_)", models._MaxPool2x2.apply)):
    got = run(pool)
    d = (got.view(torch.int32) != native.view(torch.int32))
    idx = d.view(-1).nonzero()[:8, 0]
    print(f"{name}: {int(d.sum())} of {got.numel()} differ from PyTorch's backward; native {native.view(-1)[idx].tolist()} vs {got.view(-1)[idx].tolist()}")
