"""The paper's architectures."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from quide.measure.models import SimpleCNN, build_model
from quide.measure.quant import quantizable_layers


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


def _bits(t: torch.Tensor) -> bytes:
    return t.detach().contiguous().view(-1).view(torch.uint8).numpy().tobytes()


def _tied_activations(shape, channels_last=False):
    """ReLU outputs with the ties real images make: zeros (ReLU) and equal positive values in a
    window (a flat image region, the zero padding of a crop), one window with every value equal."""
    gen = torch.Generator().manual_seed(0)
    x = torch.relu(torch.randn(shape, generator=gen))
    x[:, :, :4, :4] = 0.5
    x[0, 0, 4:6, 4:6] = 0.0
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x.requires_grad_()


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
@pytest.mark.parametrize("shape", [(4, 3, 8, 8), (2, 5, 7, 7)])   # odd: the last row and column are dropped
@pytest.mark.parametrize("channels_last", [False, True])
def test_max_pool_2x2_same_bits_as_pytorch(shape, channels_last, device):
    """Forward and backward are bit for bit those of F.max_pool2d(x, 2), ties, -0.0 and subnormals
    included, in the layout training uses (NCHW: SimpleCNN's recipes, the only users of this pooling,
    train without channels_last) on CPU and CUDA, and in channels_last on the CPU. PyTorch's own
    channels_last CUDA backward keeps a -0.0 gradient that its NCHW kernels turn into +0.0 (seen on
    H100 and H200, torch 2.11 / CUDA 13.0); ours gives +0.0 in every layout, so there the gradients
    are equal in value and differ only in the sign of zeros."""
    from quide.measure.models import max_pool_2x2
    x = _tied_activations(shape, channels_last).detach().to(device).requires_grad_()
    grad = torch.randn(shape[0], shape[1], shape[2] // 2, shape[3] // 2, generator=torch.Generator().manual_seed(1))
    grad[0, 0, 0, 0] = -0.0   # PyTorch's backward sums from zero, so this arrives as +0.0
    grad[0, 0, 0, 1] = 1e-40  # a subnormal stays one (an atomic add on the GPU would flush it to zero)
    grad = grad.to(device)
    outs, grads = [], []
    for pool in (max_pool_2x2, lambda t: F.max_pool2d(t, 2)):
        x.grad = None
        out = pool(x)
        out.backward(grad)
        outs.append(out)
        grads.append(x.grad)
    assert _bits(outs[0].cpu()) == _bits(outs[1].cpu())
    assert grads[0].is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    ours, theirs = grads[0].cpu(), grads[1].cpu()
    if channels_last and device == "cuda":
        assert torch.equal(ours, theirs)   # values, -0.0 == +0.0
        differ = torch.signbit(ours) != torch.signbit(theirs)
        assert bool((ours[differ] == 0).all())   # only zeros differ, and only in sign
        assert _bits(torch.where(differ, ours.abs(), ours)) == _bits(torch.where(differ, theirs.abs(), theirs))
        return
    assert _bits(ours) == _bits(theirs)
    assert torch.signbit(theirs).sum() == torch.signbit(ours).sum()


def test_max_pool_2x2_is_used_only_in_the_layout_its_bit_test_covers():
    """SimpleCNN (the only model with this pooling) trains NCHW under every recipe that trains it."""
    from quide.analysis import conditions, protocol
    recipes = {c.recipe for c in conditions.CONDITIONS.values() if c.model == "simplecnn" and c.recipe}
    assert recipes and not any(protocol.RECIPES[name].channels_last for name in recipes)


def test_max_pool_2x2_without_autograd_is_plain_pooling():
    from quide.measure.models import _MaxPool2x2, max_pool_2x2
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    with torch.no_grad():
        out = max_pool_2x2(x)
    assert out.grad_fn is None and torch.equal(out, F.max_pool2d(x, 2))
    assert max_pool_2x2(x).grad_fn.name() == _MaxPool2x2.__name__ + "Backward"


def test_simplecnn_traces_pooling_as_one_call():
    """quide.measure.quant traces SimpleCNN with torch.fx; the pooling stays one call_function node."""
    from quide.measure.models import max_pool_2x2
    gm = torch.fx.symbolic_trace(SimpleCNN(1, 10, 28))
    assert [n.target for n in gm.graph.nodes if n.op == "call_function"].count(max_pool_2x2) == 2


@pytest.mark.slow
def test_simplecnn_training_steps_same_weights_as_pytorch_pooling(monkeypatch):
    """Adam steps with quide's pooling and with F.max_pool2d end in byte-identical weights."""
    from quide.measure import models
    from quide.measure.train import state_sha256
    gen = torch.Generator().manual_seed(2)
    batches = [(torch.randn(16, 3, 32, 32, generator=gen), torch.randint(0, 10, (16,), generator=gen)) for _ in range(5)]
    shas = []
    for pool in (models.max_pool_2x2, lambda t: F.max_pool2d(t, 2)):
        monkeypatch.setattr(models, "max_pool_2x2", pool)
        torch.manual_seed(0)
        model = SimpleCNN(3, 10, 32)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
        for x, y in batches:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        shas.append(state_sha256(model.state_dict()))
    assert shas[0] == shas[1]
