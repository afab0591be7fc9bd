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


# --- the ablation's choices (PTQConfig's fields beyond the sweep's; defaults are the sweep's) ----

class TinyResidual(nn.Module):
    """conv-BN-ReLU, conv-BN plus the skip, ReLU, average pool, linear: ResNet-18's pattern in small."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(8, 4)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)) + x)
        return self.fc(torch.flatten(self.pool(x), 1))


@pytest.fixture(scope="module")
def tiny_residual():
    torch.manual_seed(0)
    model = TinyResidual().eval()
    for bn in (model.bn1, model.bn2):   # per-channel scales far apart, as trained BatchNorms have
        bn.weight.data = torch.logspace(-1, 1, 8)
        bn.running_var.uniform_(0.5, 2.0)
        bn.running_mean.uniform_(-0.2, 0.2)
    return model, torch.randn(64, 3, 8, 8)


def n_quantizers(model) -> int:
    return sum(isinstance(m, qq.ActivationQuantizer) for m in model.modules())


def test_the_new_fields_default_to_the_sweeps_reading():
    c = qq.PTQConfig()
    assert (c.fold_batchnorm, c.activation_bits, c.activation_scheme, c.fp_first_last, c.quantize_logits,
            c.rounding) == (True, None, "affine", False, True, "nearest")
    assert c.activation_bits_of(4) == 4 and qq.PTQConfig(activation_bits=8).activation_bits_of(4) == 8


@pytest.mark.parametrize("kwargs, field", [
    ({"fold_batchnorm": "no"}, "fold_batchnorm"), ({"fp_first_last": 1}, "fp_first_last"),
    ({"quantize_logits": None}, "quantize_logits"), ({"per_channel": 0}, "per_channel"),
    ({"activation_bits": 1}, "activation_bits"), ({"activation_bits": True}, "activation_bits"),
    ({"activation_bits": 8.0}, "activation_bits"), ({"activation_scheme": "asymmetric"}, "activation_scheme"),
    ({"rounding": "floor"}, "rounding"), ({"rounding": "stochastic"}, "rounding"),
])
def test_config_rejects_bad_ablation_fields(kwargs, field):
    with pytest.raises(ValueError, match=rf"PTQConfig\.{field}"):
        qq.PTQConfig(**kwargs)


def test_truncation_rounds_toward_zero_as_a_cast_to_int_does():
    x = torch.randn(10_000) * 3
    scale, zp = torch.tensor(0.25), torch.tensor(0)
    out = qq.fake_quantize(x, scale, zp, -8, 7, rounding="truncate")
    cast = torch.clamp((x / 0.25 + 0).to(torch.int32), -8, 7).float() * 0.25
    assert torch.equal(out, cast)
    inside = x.abs() < 1.75
    assert (out[inside].abs() <= x[inside].abs()).all()                     # never away from zero
    assert not torch.equal(out, qq.fake_quantize(x, scale, zp, -8, 7))       # unlike round-to-nearest
    w = torch.randn(16, 3, 3, 3)
    assert (qq.quantize_weight(w, 4, rounding="truncate").abs() <= w.abs() + 1e-7).all()


def test_truncated_activations_sit_below_their_inputs_by_up_to_one_step():
    q = qq.ActivationQuantizer(4, rounding="truncate")
    x = torch.rand(10_000) * 6
    q(x)
    q.finish_calibration()
    err = x - q(x)
    assert (err >= -1e-6).all() and (err < q.scale + 1e-6).all() and err.mean() > 0.4 * q.scale


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_symmetric_activations_give_a_relu_output_half_the_codes(bits):
    x = torch.rand(100_000) * 5   # non-negative, as after a ReLU
    levels = {}
    for scheme in qq.ACTIVATION_SCHEMES:
        q = qq.ActivationQuantizer(bits, scheme=scheme)
        q(x)
        q.finish_calibration()
        levels[scheme] = torch.unique(q(x)).numel()
    assert levels["affine"] == 2 ** bits and levels["symmetric"] == 2 ** (bits - 1)   # codes 0..2^(b-1) - 1
    q = qq.ActivationQuantizer(bits, scheme="symmetric")
    q(x - 1)   # a range below zero too: the zero point stays 0, the codes are signed
    q.finish_calibration()
    assert q.zero_point == 0 and q.qrange() == qq.weight_qrange(bits)


def test_activation_bits_set_every_quantizer_and_32_leaves_weights_only(small_trained):
    model, splits, calib = small_trained
    w4a8 = qq.quantize(model, qq.PTQConfig(bits=4, activation_bits=8), calib)
    assert {q.bits for q in w4a8.modules() if isinstance(q, qq.ActivationQuantizer)} == {8}
    assert torch.unique(w4a8.fc1.weight).numel() <= 16 and w4a8.ptq_info.C_paper == 8
    weight_only = qq.quantize(model, qq.PTQConfig(bits=4, activation_bits=32), calib)
    assert n_quantizers(weight_only) == 0
    x = splits.test.images()
    reference = SimpleCNN(in_channels=3, num_classes=4, image_size=16).eval()
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():
        for name in qq.quantizable_layers(reference):
            layer = reference.get_submodule(name)
            layer.weight.copy_(qq.quantize_weight(layer.weight, 4))
    with torch.inference_mode():
        assert torch.equal(weight_only(x), reference(x))


def test_fp_first_last_keeps_their_weights_and_quantizers_out(small_trained):
    model, splits, calib = small_trained
    q = qq.quantize(model, qq.PTQConfig(bits=4, fp_first_last=True), calib)
    assert torch.equal(q.conv1.weight, model.conv1.weight) and torch.equal(q.fc2.weight, model.fc2.weight)
    assert torch.unique(q.conv2.weight).numel() <= 16
    info, full = q.ptq_info, qq.quantize(model, qq.PTQConfig(bits=4), calib).ptq_info
    assert info.fp_layers == ("conv1", "fc2") and info.layer_bits == {"conv1": 32, "conv2": 4, "fc1": 4, "fc2": 32}
    assert info.C_paper == full.C_paper == 8 and info.C_true < full.C_true
    assert n_quantizers(q) == 3   # graph: the input's and the logits' left out of 5
    assert n_quantizers(qq.quantize(model, qq.PTQConfig(bits=4, placement="inputs", fp_first_last=True), calib)) == 2
    with torch.inference_mode():
        assert torch.unique(q(splits.test.images())).numel() > 16   # FP logits


def test_fp_logits_leave_only_the_output_quantizer_out(small_trained):
    model, splits, calib = small_trained
    q = qq.quantize(model, qq.PTQConfig(bits=3, quantize_logits=False), calib)
    assert n_quantizers(q) == 4 and torch.unique(q.fc2.weight).numel() <= 8
    with torch.inference_mode():
        assert torch.unique(q(splits.test.images())).numel() > 8


def test_unfolded_batchnorm_quantizes_the_convolutions_own_weights(tiny_residual):
    model, x = tiny_residual
    folded = qq.quantize(model, qq.PTQConfig(bits=4), x)
    kept = qq.quantize(model, qq.PTQConfig(bits=4, fold_batchnorm=False), x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in kept.modules()) == 2
    assert torch.equal(kept.conv1.weight, qq.quantize_weight(model.conv1.weight, 4))
    assert n_quantizers(kept) == n_quantizers(folded) == 5   # input, conv1 (after BN+ReLU), conv2+BN, add+ReLU, logits
    # the quantizer sits after the BatchNorm (and its ReLU), so the next convolution reads quantized values
    inputs = {}
    kept.conv2.register_forward_hook(lambda m, i, o: inputs.setdefault("conv2", i[0]))
    with torch.inference_mode():
        kept(x)
    assert torch.unique(inputs["conv2"]).numel() <= 16
    with torch.inference_mode():   # both are 4-bit models of the same network
        ref = model(x)
        assert sqnr_db(ref, kept(x)) > 0 and sqnr_db(ref, folded(x)) > 0
    q8 = qq.quantize(model, qq.PTQConfig(bits=8, fold_batchnorm=False), x)
    with torch.inference_mode():
        assert sqnr_db(model(x), q8(x)) > 25
