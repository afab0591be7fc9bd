"""Peer check: quide's PTQ against torch.ao's FX graph mode on the same trained model.

torch.ao.quantization is deprecated; it is imported here only, and the test is skipped with the
reason where the installed torch no longer ships it. Both sides: MinMax observers calibrated on
the same 512 images, per-tensor symmetric weights in [-2^(b-1), 2^(b-1)-1], affine activations in
[0, 2^b-1], observers placed by FX (quide's ``placement="graph"``), fake quantization in eval mode.
"""
import warnings

import pytest
import torch

from quide.measure import data as qd
from quide.measure import quant as qq

ao = pytest.importorskip("torch.ao.quantization", reason="this torch no longer ships torch.ao.quantization")
quantize_fx = pytest.importorskip("torch.ao.quantization.quantize_fx", reason="torch.ao FX flow missing")


def torch_ao_fake_quant(model, bits, calib, example):
    act = ao.FakeQuantize.with_args(observer=ao.MinMaxObserver, quant_min=0, quant_max=2 ** bits - 1,
                                    dtype=torch.quint8, qscheme=torch.per_tensor_affine)
    weight = ao.FakeQuantize.with_args(observer=ao.MinMaxObserver, quant_min=-(2 ** (bits - 1)),
                                       quant_max=2 ** (bits - 1) - 1, dtype=torch.qint8,
                                       qscheme=torch.per_tensor_symmetric)
    mapping = ao.QConfigMapping().set_global(ao.QConfig(activation=act, weight=weight))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the deprecation notice
        prepared = quantize_fx.prepare_qat_fx(_copy(model).train(), mapping, (example,))
    prepared.eval()
    prepared.apply(ao.disable_fake_quant)     # calibrate on float activations, as PTQ does
    prepared.apply(ao.enable_observer)
    with torch.inference_mode():
        for start in range(0, len(calib), 256):
            prepared(calib[start:start + 256])
    prepared.apply(ao.disable_observer)
    prepared.apply(ao.enable_fake_quant)
    return prepared


def _copy(model):
    import copy
    return copy.deepcopy(model)


@pytest.mark.parametrize("bits", [8, 4, 2])
@pytest.mark.slow
def test_quide_agrees_with_torch_ao_fx(mnist_trained, bits):
    data, splits, trained = mnist_trained
    model = trained.model.eval()
    calib = splits.train.images(qd.calibration_indices(len(splits.train), 512, seed=0))
    x = splits.test.images()
    ours = qq.quantize(model, qq.PTQConfig(bits=bits, placement="graph"), calib)
    theirs = torch_ao_fake_quant(model, bits, calib, x[:1])
    with torch.inference_mode():
        pred_ours, pred_theirs = ours(x).argmax(1), theirs(x).argmax(1)
    agreement = (pred_ours == pred_theirs).float().mean().item()
    acc_ours = (pred_ours == splits.test.y).float().mean().item()
    acc_theirs = (pred_theirs == splits.test.y).float().mean().item()
    print(f"{bits}-bit: prediction agreement {agreement:.4f} over {len(x)} MNIST test images; "
          f"P quide {acc_ours:.4f}, torch.ao {acc_theirs:.4f}")
    assert agreement >= 0.99
