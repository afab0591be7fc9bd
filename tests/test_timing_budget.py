"""benchmarks/timing_budget.py: the seconds the timings held the GPU to themselves, from the records
(each timing counted once however many configurations share it), and the committed files, which
must come out of the committed records as they are."""
import contextlib
import io
import sys

import pandas as pd
import pytest

from quide.config import project_root

ROOT = project_root()
sys.path.insert(0, str(ROOT / "benchmarks"))
import timing_budget  # noqa: E402  (a script beside the package, not part of it)


def record(block, signature, scope="configuration", attempts=1, t_ms=1.0, host_ms=2.0):
    return {"experiment": "ptq_sweep", "model": "m", "T_block_starts_utc": [block], "T_signature": signature,
            "T_ms": t_ms, "T_passes_per_round": 10, "T_rounds": 21, "T_captures": 3, "T_attempts": attempts,
            "T_host_scope": scope, "T_host_ms": host_ms, "latency_passes": 1000, "latency_warmup": 100}


def test_configurations_sharing_a_graph_in_one_block_are_timed_once_and_attempts_multiply():
    df = pd.DataFrame([record("b1", "g"), record("b1", "g"), record("b2", "g", attempts=3)])
    row = timing_budget.timed_seconds(df).loc[("ptq_sweep", "m")]
    assert row["timings"] == 2
    assert row["graph replay s"] == pytest.approx((1 + 3) * 1.0 * 10 * 21 * 3 / 1e3)
    # the host protocol ran for each configuration (scope "configuration"): three times
    assert row["host protocol s"] == pytest.approx(3 * 2.0 * 1100 / 1e3)


def test_a_host_protocol_timed_per_graph_counts_once_per_graph_and_block():
    df = pd.DataFrame([record("b1", "g", scope="graph"), record("b1", "g", scope="graph"),
                       record("b1", "h", scope="graph")])
    assert timing_budget.timed_seconds(df).loc[("ptq_sweep", "m"), "host protocol s"] == pytest.approx(2 * 2.2)


@pytest.mark.parametrize("folder, committed", [("data/results", "timing_budget_run_a.txt"),
                                               ("data/reruns/one_gpu2", "timing_budget_run_e.txt"),
                                               ("data/reruns/one_gpu_6_per_gpu", "timing_budget_run_k.txt"),
                                               ("data/reruns/one_gpu_one_call", "timing_budget_run_l.txt")])
def test_the_committed_files_come_from_the_committed_records(folder, committed, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        timing_budget.main([folder])
    assert out.getvalue() == (ROOT / "benchmarks/results" / committed).read_text()
