"""The latency protocol: counts, statistics, and that it times the forward pass it is given."""
import time

import pytest
import torch
import torch.nn as nn

from quide.latency import BATCH, TIMED, WARMUP, measure_latency


class Sleeper(nn.Module):
    def __init__(self, seconds):
        super().__init__()
        self.seconds, self.calls = seconds, 0

    def forward(self, x):
        self.calls += 1
        time.sleep(self.seconds)
        return x


def test_paper_defaults():
    assert (BATCH, WARMUP, TIMED) == (64, 100, 1000)


def test_counts_passes_and_reports_device():
    model = Sleeper(0.0)
    lat = measure_latency(model, torch.zeros(64, 1), warmup=3, timed=7)
    assert model.calls == 10
    assert (lat.passes, lat.warmup, lat.batch) == (7, 3, 64)
    assert lat.device.startswith("CPU") and lat.driver is None
    assert lat.p10_ms <= lat.median_ms <= lat.p90_ms


def test_measures_the_forward_time():
    lat = measure_latency(Sleeper(0.004), torch.zeros(2, 1), warmup=1, timed=5)
    assert lat.median_ms >= 4.0


def test_runs_under_inference_mode():
    seen = []
    class Probe(nn.Module):
        def forward(self, x):
            seen.append(torch.is_inference_mode_enabled())
            return x
    measure_latency(Probe(), torch.zeros(1), warmup=1, timed=2)
    assert seen == [True, True, True]


@pytest.mark.parametrize("warmup, timed", [(-1, 10), (0, 0)])
def test_bad_counts(warmup, timed):
    with pytest.raises(ValueError, match="warmup"):
        measure_latency(Sleeper(0), torch.zeros(1), warmup=warmup, timed=timed)
