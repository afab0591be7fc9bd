"""quide.measure.deploy: deployed-latency paths per bit-width, and the join of Table 1 with them."""
import numpy as np
import pandas as pd
import pytest
import torch

from quide.measure import deploy, models
from quide.measure.latency import TimerConfig, measure_latency

QUICK = TimerConfig(rounds=6, passes=2, warmup=0)


def test_cpu_paths_and_reasons():
    model = models.build_model("simplecnn", 10, (28, 28, 1)).eval()
    x = torch.randn(4, 1, 28, 28)
    fp32 = deploy.deployed_batch_latency(model, 32, x, QUICK)
    assert set(fp32["candidates_ms"]) == {"fp32, NCHW", "fp32, channels_last"}
    assert fp32["T_deployed_ms"] == min(fp32["candidates_ms"].values()) > 0
    assert fp32["T_deployed_kind"] in fp32["candidates_ms"] and fp32["T_deployed_reason"] is None
    lo, hi = fp32["T_deployed_ci_ms"]
    assert lo <= fp32["T_deployed_ms"] <= hi and fp32["T_deployed_method"] == "host"
    assert set(deploy.deployed_batch_latency(model, 16, x, QUICK)["candidates_ms"]) == \
        {"bf16, NCHW", "bf16, channels_last"}   # no TF32 or FP16 on a CPU
    for bits in (8, 4, 2):
        out = deploy.deployed_batch_latency(model, bits, x, QUICK)
        assert out["T_deployed_ms"] is None and out["T_deployed_reason"]
    assert type(model.conv1.weight) is torch.nn.Parameter and model.conv1.weight.dtype == torch.float32
    with pytest.raises(ValueError, match="bits"):
        deploy.candidates(3, torch.device("cpu"))


def test_cuda_paths_name_the_missing_convolution_kernels():
    assert [p[0] for p in deploy.candidates(16, torch.device("cuda"))] == ["tf32", "bf16", "fp16"]
    assert deploy.candidates(8, torch.device("cuda")) == []
    assert "convolution" in deploy.NO_LOW_BIT_KERNEL


def test_timer_choice_is_validated():
    model, x = torch.nn.Linear(3, 3), torch.randn(2, 3)
    with pytest.raises(ValueError, match="timer"):
        measure_latency(model, x, 0, 1, timer="wall")
    with pytest.raises(ValueError, match="CUDA"):
        measure_latency(model, x, 0, 1, timer="cuda_events")


def test_with_deployed_recomputes_the_index_and_moves_the_knee():
    table = pd.DataFrame({"model": "m", "dataset": "d", "bits": ["32", "16", "8", "4"],
                          "C_paper": [1.0, 2.0, 4.0, 8.0], "P_mean": [0.9, 0.9, 0.9, 0.8],
                          "p_thresh": 0.6, "knee": [False, False, False, True]})
    dep = pd.DataFrame({"model": "m", "dataset": "d", "bits": [32, 16, 8, 4],
                        "T_deployed_ms": [3.0, 1.0, None, None], "T_deployed_kind": ["fp32", "fp16", None, None],
                        "T_deployed_reason": [None, None, "no kernel", "no kernel"]})
    out = deploy.with_deployed(table, dep)
    assert out["I_deployed"].iloc[0] == pytest.approx(1 * 0.9 / np.log2(4))
    assert out["I_gated_deployed"].iloc[1] == pytest.approx(2 * 0.3 / np.log2(2))
    assert out["I_deployed"].iloc[2:].isna().all()
    assert out["knee_deployed"].tolist() == [False, True, False, False]
