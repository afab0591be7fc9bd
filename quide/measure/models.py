"""The paper's models: SimpleCNN, ResNet-18 (CIFAR variant) and torchvision's ResNet-18 (ImageNet)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from ..analysis.conditions import MODEL_BUILDERS
from ..analysis.protocol import SIMPLECNN_CONV_CHANNELS, SIMPLECNN_HIDDEN, SIMPLECNN_KERNEL, simplecnn_side

MODELS = tuple(MODEL_BUILDERS)


class _MaxPool2x2(torch.autograd.Function):
    """``F.max_pool2d(x, 2)`` whose backward writes each output gradient at its window's argmax
    into zeros. The windows do not overlap, so each input gets at most one gradient: the same bits
    as PyTorch's own backward, which is slower (its NCHW kernel searches the windows of every
    input; ``benchmarks/probes/step_kernels.py``)."""

    @staticmethod
    def forward(ctx, x):
        out, indices = F.max_pool2d(x, 2, return_indices=True)
        ctx.save_for_backward(indices)
        ctx.input_shape = x.shape
        ctx.channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        (indices,) = ctx.saved_tensors
        n, c, h, w = ctx.input_shape
        layout = torch.channels_last if ctx.channels_last else torch.contiguous_format
        # the layout PyTorch's backward returns, so that the layers below pick the same kernels
        grad_in = torch.empty(ctx.input_shape, dtype=grad_out.dtype, device=grad_out.device,
                              memory_format=layout).zero_()
        # PyTorch's backward sums from +0.0, which turns -0.0 into +0.0; "+ 0.0" does the same. The
        # write is a plain scatter: scatter_add_'s atomic adds flush subnormals to zero on the GPU,
        # which changed a 50-epoch CIFAR training (benchmarks/probes/same_weights.py).
        grad = grad_out.reshape(n, c, -1) + 0.0
        # H and W stay adjacent in both layouts, so (n, c, h*w) is a view and the scatter writes in place
        grad_in.view(n, c, h * w).scatter_(2, indices.reshape(n, c, -1), grad)
        return grad_in


def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """2x2 max pooling, stride 2. With autograd recording it runs :class:`_MaxPool2x2`, whose
    backward is faster and bit-identical; otherwise (evaluation, PTQ) plain ``F.max_pool2d``."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _MaxPool2x2.apply(x)
    return F.max_pool2d(x, 2)


# torch.fx (quide.measure.quant traces the models) records the call rather than tracing into it
torch.fx.wrap("max_pool_2x2")


class SimpleCNN(nn.Module):
    """conv(32, 3x3)+ReLU+maxpool2, conv(64, 3x3)+ReLU+maxpool2, fc128+ReLU, fc(classes) (paper 3.3).

    The paper does not give the convolutions' padding; we use padding=1 ("same"), so the
    feature map entering fc1 is 64 x (H/4) x (W/4): 3136 for MNIST, 4096 for CIFAR.
    Layer order conv1, conv2, fc1, fc2 is the GA's L=4 (Appendix B).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28, padding: int = 1):
        super().__init__()
        c1, c2 = SIMPLECNN_CONV_CHANNELS
        self.conv1 = nn.Conv2d(in_channels, c1, SIMPLECNN_KERNEL, padding=padding)
        self.conv2 = nn.Conv2d(c1, c2, SIMPLECNN_KERNEL, padding=padding)
        self.fc1 = nn.Linear(c2 * simplecnn_side(image_size, padding) ** 2, SIMPLECNN_HIDDEN)
        self.fc2 = nn.Linear(SIMPLECNN_HIDDEN, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = max_pool_2x2(F.relu(self.conv1(x)))
        x = max_pool_2x2(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


def resnet18_cifar(num_classes: int = 10) -> nn.Module:
    """torchvision's ResNet-18 with the CIFAR stem: 3x3 stride-1 conv1 and no first max-pool."""
    model = torchvision.models.resnet18(num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def resnet18_imagenet(pretrained: bool = True, num_classes: int = 1000) -> nn.Module:
    """torchvision's ResNet-18; ``pretrained`` loads IMAGENET1K_V1 (the paper's 69.76% top-1)."""
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1 if pretrained else None
    return torchvision.models.resnet18(weights=weights, num_classes=num_classes)


def build_simplecnn(num_classes: int, image_shape: tuple, pretrained: bool = False) -> nn.Module:
    h, w, c = image_shape
    if h != w:
        raise ValueError(f"SimpleCNN expects square images; got {image_shape}")
    return SimpleCNN(in_channels=c, num_classes=num_classes, image_size=h)


def build_resnet18_cifar(num_classes: int, image_shape: tuple, pretrained: bool = False) -> nn.Module:
    if image_shape[2] != 3:
        raise ValueError(f"resnet18_cifar expects 3-channel images; got {image_shape}")
    return resnet18_cifar(num_classes)


def build_resnet18_imagenet(num_classes: int, image_shape: tuple, pretrained: bool = False) -> nn.Module:
    return resnet18_imagenet(pretrained=pretrained, num_classes=num_classes)


def build_model(name: str, num_classes: int, image_shape: tuple = (28, 28, 1), pretrained: bool = False) -> nn.Module:
    """Build a model by name (its builder is named in quide.analysis.conditions.MODEL_BUILDERS); ``image_shape`` is (H, W, C)."""
    if name not in MODEL_BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of {MODELS}")
    return globals()[MODEL_BUILDERS[name]](num_classes, image_shape, pretrained)
