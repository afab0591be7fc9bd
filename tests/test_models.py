"""The paper's architectures."""
import pytest
import torch
import torch.nn as nn

from quide.models import SimpleCNN, build_model
from quide.quant import quantizable_layers


@pytest.mark.parametrize("shape, classes, fc1_in", [((28, 28, 1), 10, 3136), ((32, 32, 3), 100, 4096)])
def test_simplecnn_shapes(shape, classes, fc1_in):
    model = build_model("simplecnn", classes, shape)
    assert list(quantizable_layers(model)) == ["conv1", "conv2", "fc1", "fc2"]
    assert model.fc1.in_features == fc1_in
    assert model(torch.randn(2, shape[2], shape[0], shape[1])).shape == (2, classes)


def test_simplecnn_matches_paper_layers():
    m = SimpleCNN(3, 10, 32)
    assert (m.conv1.out_channels, m.conv2.out_channels, m.fc1.out_features) == (32, 64, 128)
    assert m.conv1.kernel_size == m.conv2.kernel_size == (3, 3)


def test_resnet18_cifar_stem():
    m = build_model("resnet18_cifar", 10, (32, 32, 3))
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1)
    assert isinstance(m.maxpool, nn.Identity)
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert sum(p.numel() for p in m.parameters()) == pytest.approx(11.17e6, rel=0.01)


def test_resnet18_imagenet_without_weights():
    m = build_model("resnet18_imagenet", 1000, (224, 224, 3), pretrained=False)
    assert m.conv1.kernel_size == (7, 7) and m.fc.out_features == 1000


def test_unknown_model():
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        build_model("vgg", 10)
