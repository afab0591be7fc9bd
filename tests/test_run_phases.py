"""benchmarks/run_phases.py: the GPU's busy seconds from nvidia-smi samples, and the committed
phase files, which must come out of the committed notebooks and samples as they are."""
import contextlib
import io
import sys

import pytest

from quide.config import project_root

ROOT = project_root()
sys.path.insert(0, str(ROOT / "benchmarks"))
import run_phases  # noqa: E402  (a script beside the package, not part of it)


def write_smi(path, rows):
    path.write_text("timestamp, utilization.gpu [%], memory.used [MiB]\n"
                    + "".join(f"2026/12/02 13:13:{s:06.3f}, {u} %, 4 MiB\n" for s, u in rows))
    return path


def test_busy_seconds_weigh_each_sample_by_the_interval_to_the_next(tmp_path):
    samples = run_phases.smi_samples(write_smi(tmp_path / "smi.csv", [(0, 100), (5, 50), (15, 0), (20, 30)]))
    assert [u for _, u in samples] == [1.0, 0.5, 0.0, 0.3]
    span, busy, se = run_phases.busy_s(samples)
    assert span == pytest.approx(20.0)
    assert busy == pytest.approx(1.0 * 5 + 0.5 * 10 + 0.0 * 5)   # the last sample has no interval after it
    assert se > 0


def test_a_card_always_busy_or_always_idle_has_no_spread(tmp_path):
    for util, expected in ((100, 15.0), (0, 0.0)):
        samples = run_phases.smi_samples(write_smi(tmp_path / f"smi{util}.csv", [(s, util) for s in (0, 5, 10, 15)]))
        span, busy, se = run_phases.busy_s(samples)
        assert (span, busy, se) == (pytest.approx(15.0), pytest.approx(expected), 0.0)


@pytest.mark.parametrize("run, committed", [("one_gpu", "reproduce_h200_run_d_phases.txt"),
                                            ("one_gpu2", "reproduce_h200_run_e_phases.txt"),
                                            ("one_gpu_mps", "reproduce_h200_mps_phases.txt"),
                                            ("one_gpu_train_first", "reproduce_h200_train_first_phases.txt"),
                                            ("one_gpu_host200", "reproduce_h200_host200_phases.txt"),
                                            ("one_gpu_6_per_gpu", "reproduce_h200_run_k_phases.txt"),
                                            ("one_gpu_one_call", "reproduce_h200_phases.txt")])
def test_the_committed_phase_files_come_from_the_committed_runs(run, committed):
    folder = ROOT / "data/reruns" / run
    smi = sorted((folder / "logs").glob("smi-call*.csv"))  # one file per device call the run took
    assert smi
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run_phases.main([str(folder / "notebooks"), "--smi", *map(str, smi)])
    expected = (ROOT / "benchmarks/results" / committed).read_text()
    # the first line names the folder, which the committed file gives relative to the repository
    assert out.getvalue().splitlines()[1:] == expected.splitlines()[1:]
