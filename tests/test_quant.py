"""PTQ: the arithmetic against torch's kernels, the config's validation, placements, calibration."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from quide.measure import data as qd
from quide.measure import quant as qq
from quide.measure.models import SimpleCNN, resnet18_cifar
from quide.measure.train import SIMPLECNN, train

from helpers import synthetic_arrays


def sqnr_db(reference: torch.Tensor, approx: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio in dB (torchao's accuracy check)."""
    return float(10 * torch.log10(reference.pow(2).sum() / (reference - approx).pow(2).sum()))


@pytest.fixture(scope="module")
def small_trained():
    """A SimpleCNN trained for a few epochs on learnable synthetic 16x16 RGB data."""
    arrays = synthetic_arrays(n_train=512, n_test=256, shape=(16, 16, 3), num_classes=4)
    data = qd.ImageData("synthetic", **arrays, num_classes=4, source="synthetic", path="", sha256="")
    splits = qd.device_splits(data, "cpu", val_size=64, seed=0)
    model = SimpleCNN(in_channels=3, num_classes=4, image_size=16)
    train(model, splits, SIMPLECNN.replace(epochs=3, batch_size=64, val_size=64), seed=0)
    calib = splits.train.images(qd.calibration_indices(len(splits.train), 128, seed=0))
    return model, splits, calib


# --- arithmetic -------------------------------------------------------------------------------

def elementwise_fake_quantize(x, scale, zero_point, qmin, qmax):
    """The arithmetic quide used before the fused kernels (six elementwise ops): multiply by the
    float32 reciprocal, round half to even, add the zero point, clamp, dequantize."""
    scale = scale.to(torch.float32)
    zp = zero_point.to(torch.float32)
    q = torch.clamp(torch.round(x * (1.0 / scale)) + zp, qmin, qmax)
    return (q - zp) * scale


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bits", [2, 3, 4, 8, 12])
def test_fused_fake_quantize_is_bit_identical_to_the_elementwise_arithmetic(bits, device):
    gen = torch.Generator().manual_seed(bits)
    x = (torch.randn(20_000, generator=gen) * 3).to(device)
    qmin, qmax = qq.activation_qrange(bits)
    scale, zp = qq.affine_qparams(x.min(), x.max(), bits)
    ties = (torch.arange(-50, 50, device=device) + 0.5) * scale   # exact half steps: rounding mode shows
    for v in (x, ties, torch.cat([x, torch.tensor([1e9, -1e9], device=device)])):
        assert torch.equal(qq.fake_quantize(v, scale, zp, qmin, qmax), elementwise_fake_quantize(v, scale, zp, qmin, qmax))
    act = qq.ActivationQuantizer(bits).to(device)
    act(x)
    act.finish_calibration()
    assert torch.equal(act(x), elementwise_fake_quantize(x, act.scale, act.zero_point, qmin, qmax))
    w_scale, w_zp = qq.symmetric_qparams(x.min(), x.max(), bits)
    wmin, wmax = qq.weight_qrange(bits)
    assert torch.equal(qq.quantize_weight(x, bits), elementwise_fake_quantize(x, w_scale, w_zp, wmin, wmax))
    w = (torch.randn(16, 8, 3, 3, generator=gen) * torch.linspace(0.1, 3, 16).view(-1, 1, 1, 1)).to(device)
    flat = w.reshape(16, -1)
    c_scale, c_zp = qq.symmetric_qparams(flat.min(1).values, flat.max(1).values, bits)
    shape = (-1, 1, 1, 1)
    assert torch.equal(qq.quantize_weight(w, bits, per_channel=True),
                       elementwise_fake_quantize(w, c_scale.view(shape), c_zp.view(shape), wmin, wmax))


def test_fake_quantize_refuses_a_scale_it_cannot_place():
    with pytest.raises(ValueError, match="scale of shape"):
        qq.fake_quantize(torch.randn(4, 6), torch.ones(2, 3), torch.zeros(2, 3), -8, 7)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_per_channel_weights_match_torch(bits):
    w = torch.randn(16, 8, 3, 3) * torch.linspace(0.1, 3, 16).view(-1, 1, 1, 1)
    ours = qq.quantize_weight(w, bits, per_channel=True)
    flat = w.reshape(16, -1)
    scale, zp = qq.symmetric_qparams(flat.min(1).values, flat.max(1).values, bits)
    qmin, qmax = qq.weight_qrange(bits)
    ref = torch.fake_quantize_per_channel_affine(w, scale, zp.int(), 0, qmin, qmax)
    assert torch.equal(ours, ref)


@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8])
def test_at_most_2_pow_b_weight_levels(bits):
    w = torch.randn(64, 32, 3, 3)
    assert torch.unique(qq.quantize_weight(w, bits)).numel() <= 2 ** bits
    per_ch = qq.quantize_weight(w, bits, per_channel=True)
    for row in per_ch.reshape(64, -1):
        assert torch.unique(row).numel() <= 2 ** bits


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_activation_error_at_most_half_a_step_inside_range(bits):
    q = qq.ActivationQuantizer(bits)
    calib = torch.rand(4096) * 5 - 1          # range [-1, 4]
    q(calib)
    q.finish_calibration()
    x = torch.linspace(float(calib.min()), float(calib.max()), 50_001)
    err = (q(x) - x).abs().max()
    assert err <= q.scale / 2 * (1 + 1e-5)
    outside = torch.tensor([10.0, -10.0])     # beyond the range: clipped, not within half a step
    assert (q(outside) - outside).abs().min() > q.scale


def test_fp16_is_lossless_in_rounding_terms():
    w = torch.randn(1000)
    assert torch.equal(qq.quantize_weight(w, 16), w.half().float())
    assert torch.equal(qq.quantize_weight(w, 32), w)


@pytest.mark.parametrize("observer", ["percentile", "mse"])
def test_clipping_observers_stay_inside_minmax(observer):
    q = qq.ActivationQuantizer(4, observer=observer, percentile=99.0)
    x = torch.cat([torch.randn(100_000).abs(), torch.tensor([50.0])])   # one outlier
    q(x)
    q.finish_calibration()
    minmax = qq.ActivationQuantizer(4)
    minmax(x)
    minmax.finish_calibration()
    assert q.scale < minmax.scale          # the outlier no longer sets the range
    assert (q(x[:-1]) - x[:-1]).pow(2).mean() < (minmax(x[:-1]) - x[:-1]).pow(2).mean()


# --- config validation --------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, field", [
    ({"bits": 0}, "bits"), ({"bits": 1}, "bits"), ({"bits": 17}, "bits"), ({"bits": 33}, "bits"),
    ({"bits": "8"}, "bits"), ({"bits": True}, "bits"), ({"bits": 8.0}, "bits"), ({"bits": []}, "bits"),
    ({"bits": [8, 1]}, "bits"), ({"bits": {}}, "bits"), ({"bits": {"fc1": 64}}, "bits"),
    ({"calib_size": 0}, "calib_size"), ({"calib_size": 5.5}, "calib_size"),
    ({"observer": "histogram"}, "observer"), ({"percentile": 20}, "percentile"),
    ({"placement": "outputs"}, "placement"),
])
def test_config_rejects_bad_fields(kwargs, field):
    with pytest.raises(ValueError, match=rf"PTQConfig\.{field}"):
        qq.PTQConfig(**kwargs)


def test_config_normalizes_bits():
    assert qq.PTQConfig(bits=[8, np.int64(4)]).bits == (8, 4)
    assert qq.PTQConfig(bits=np.int64(4)).bits == 4


def test_per_layer_bits_must_match_layers():
    model = SimpleCNN()
    with pytest.raises(ValueError, match="4 layers"):
        qq.quantize(model, qq.PTQConfig(bits=[8, 8]), torch.randn(4, 1, 28, 28))
    with pytest.raises(ValueError, match="unknown layers"):
        qq.quantize(model, qq.PTQConfig(bits={"conv1": 8, "conv9": 4}), torch.randn(4, 1, 28, 28))


def test_calibration_data_required_below_16_bits():
    with pytest.raises(ValueError, match="calib_data"):
        qq.quantize(SimpleCNN(), qq.PTQConfig(bits=8))


# --- the model-level entry point -------------------------------------------------------------

def test_32_bits_is_the_untouched_model(small_trained):
    model, splits, calib = small_trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = qq.quantize(model, qq.PTQConfig(bits=32), calib)
    x = splits.test.images()
    with torch.inference_mode():
        assert torch.equal(q(x), model(x))
    assert q is not model and q.ptq_info.kind == "fp32" and q.ptq_info.C_true == 1.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_16_bits_is_real_half_precision(small_trained):
    model, splits, calib = small_trained
    q = qq.quantize(model, qq.PTQConfig(bits=16), calib)
    assert q.ptq_info.kind == "fp16"
    assert all(p.dtype == torch.float16 for p in q.parameters())
    assert q.ptq_info.C_true == pytest.approx(2.0)
    x = splits.test.images()
    with torch.inference_mode():
        out = q(x)
        assert out.dtype == torch.float32
        assert sqnr_db(model(x), out) > 40


@pytest.mark.slow
def test_8_bit_stays_close_to_fp32(small_trained):
    model, splits, calib = small_trained
    x = splits.test.images()
    with torch.inference_mode():
        ref = model(x)
        for placement in qq.PLACEMENTS:
            q8 = qq.quantize(model, qq.PTQConfig(bits=8, placement=placement), calib)
            assert sqnr_db(ref, q8(x)) > 35, placement
            q2 = qq.quantize(model, qq.PTQConfig(bits=2, placement=placement), calib)
            assert sqnr_db(ref, q2(x)) < sqnr_db(ref, q8(x)) - 15


def test_same_seed_same_calibration_and_outputs(small_trained):
    model, splits, _ = small_trained
    n = len(splits.train)
    a, b = qd.calibration_indices(n, 128, seed=42), qd.calibration_indices(n, 128, seed=42)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, qd.calibration_indices(n, 128, seed=123))
    cfg = qq.PTQConfig(bits=4)
    x = splits.test.images()
    with torch.inference_mode():
        out_a = qq.quantize(model, cfg, splits.train.images(a))(x)
        out_b = qq.quantize(model, cfg, splits.train.images(b))(x)
    assert torch.equal(out_a, out_b)


def test_graph_placement_quantizes_logits_inputs_does_not(small_trained):
    model, splits, calib = small_trained
    x = splits.test.images()
    with torch.inference_mode():
        graph = qq.quantize(model, qq.PTQConfig(bits=3, placement="graph"), calib)(x)
        inputs = qq.quantize(model, qq.PTQConfig(bits=3, placement="inputs"), calib)(x)
    assert torch.unique(graph).numel() <= 2 ** 3
    assert torch.unique(inputs).numel() > 2 ** 3


def test_quantizer_counts_per_placement(small_trained):
    model, _, calib = small_trained
    count = lambda m: sum(isinstance(s, qq.ActivationQuantizer) for s in m.modules())  # noqa: E731
    # graph: model input + after conv1/relu, conv2/relu, fc1/relu, fc2 (logits) = 5
    assert count(qq.quantize(model, qq.PTQConfig(bits=4, placement="graph"), calib)) == 5
    # inputs: one in front of each of the 4 layers
    assert count(qq.quantize(model, qq.PTQConfig(bits=4, placement="inputs"), calib)) == 4


def test_mixed_precision_records_layers_and_both_compressions(small_trained):
    model, splits, calib = small_trained
    q = qq.quantize(model, qq.PTQConfig(bits=[8, 8, 8, 4]), calib)
    info = q.ptq_info
    assert info.layer_bits == {"conv1": 8, "conv2": 8, "fc1": 8, "fc2": 4}
    assert info.C_paper == pytest.approx(32 / 7)
    sizes, other = qq.layer_sizes(model)
    expected = 32 * (sum(sizes.values()) + other) / (8 * (sizes["conv1"] + sizes["conv2"] + sizes["fc1"])
                                                     + 4 * sizes["fc2"] + 32 * other)
    assert info.C_true == pytest.approx(expected)
    assert torch.unique(q.fc2.weight).numel() <= 16
    assert torch.unique(q.fc1.weight).numel() > 16
    # a layer at 16 inside a mixed configuration is simulated FP16
    q16 = qq.quantize(model, qq.PTQConfig(bits={"conv1": 16, "conv2": 8, "fc1": 8, "fc2": 8}), calib)
    assert torch.equal(q16.conv1.weight, model.conv1.weight.half().float())


@pytest.mark.slow
def test_batchnorm_is_folded_and_equivalent():
    model = resnet18_cifar(10).eval()
    for m in model.modules():          # non-trivial BN statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    folded = qq.fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        assert sqnr_db(model(x), folded(x)) > 60


@pytest.mark.slow
def test_resnet_quantizes_end_to_end():
    model = resnet18_cifar(10).eval()
    calib = torch.randn(8, 3, 32, 32)
    q = qq.quantize(model, qq.PTQConfig(bits=8), calib)
    assert len(q.ptq_info.layer_bits) == 21      # 20 convolutions (3 downsample) + fc
    with torch.inference_mode():
        assert sqnr_db(model(calib), q(calib)) > 15


def test_calibration_passes_are_gpu_work_one_batch_at_a_time(monkeypatch):
    """Each calibration batch holds quide.hostlock.gpu_work, so that under `quide reproduce` another
    run's timing never overlaps it and waits at most one batch."""
    import contextlib
    entered = []

    @contextlib.contextmanager
    def recording():
        entered.append(1)
        yield False

    monkeypatch.setattr(qq, "gpu_work", recording)
    torch.manual_seed(0)
    model = SimpleCNN(in_channels=1, num_classes=10, image_size=28).eval()
    calib = torch.randn(2 * qq.CALIB_BATCH + 1, 1, 28, 28)
    qq.quantize(model, qq.PTQConfig(bits=8, calib_size=len(calib)), calib)
    assert len(entered) == 3
    entered.clear()
    qq.quantize(model, qq.PTQConfig(bits=32), None)   # no calibration at 32 bits
    assert entered == []
