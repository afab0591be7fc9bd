"""benchmarks/probes/mps_timing_probe.py: the table that reads T with MPS against T without, per variant,
from the arms' JSON (timer_probe.py's output), against the spread between arms of one kind."""
import json
import sys

import pytest

from quide.config import project_root

sys.path.insert(0, str(project_root() / "benchmarks" / "probes"))
import mps_timing_probe  # noqa: E402  (a script beside the package, not part of it)


def arm(t_ms, host_ms, bits=(32, 8)):
    return {"device": "GPU X", "rows": [
        {"model": "simplecnn", "shape": "28x28x1", "bits": b, "T_ms": t_ms, "T_ms_block2": t_ms,
         "T_host_ms": host_ms, "T_host_ms_2": host_ms} for b in bits]}


def write(folder, arms):
    for i, (kind, data) in enumerate(arms):
        (folder / f"arm{i}_{kind}.json").write_text(json.dumps(data))


def test_on_against_off_is_the_ratio_of_the_medians_and_spread_is_within_one_kind(tmp_path):
    write(tmp_path, [("off", arm(1.00, 2.0)), ("on", arm(1.10, 2.0)), ("off", arm(1.02, 2.0)), ("on", arm(1.12, 2.2))])
    lines = mps_timing_probe.table(tmp_path).splitlines()
    graph = next(line for line in lines if line.startswith("graph:"))
    # median on 1.11 over median off 1.01: +9.90%; spread off 2/1.01 = 1.98%, on 2/1.11 = 1.80%
    assert "on vs off median +9.90%" in graph
    assert "widest spread between arms of one kind 1.98%" in graph
    host = next(line for line in lines if line.startswith("host:"))
    assert "on vs off median +5.00%" in host   # on arms 2.0 and 2.2: median 2.1


def test_arms_are_read_in_the_order_they_ran_not_by_name(tmp_path):
    write(tmp_path, [(kind, arm(1.0 + i, 1.0)) for i, kind in enumerate(["off", "on"] * 6)])
    header = mps_timing_probe.table(tmp_path).splitlines()[0]
    assert header.endswith(" ".join(["off", "on"] * 6))   # arm10 after arm9, not after arm1


@pytest.mark.parametrize("arms, message", [
    ([("off", arm(1.0, 1.0)), ("off", arm(1.0, 1.0))], "both off and on"),
    ([("off", arm(1.0, 1.0)), ("on", arm(1.0, 1.0, bits=(32, 4)))], "different variants"),
])
def test_a_folder_that_cannot_answer_is_refused(tmp_path, arms, message):
    write(tmp_path, arms)
    with pytest.raises(SystemExit, match=message):
        mps_timing_probe.table(tmp_path)


def test_the_committed_h200_table_is_remade_from_its_arms():
    results = project_root() / "benchmarks/results"
    remade = mps_timing_probe.table(results / "mps_timing_probe_h200")
    assert remade.strip() == (results / "mps_timing_probe_h200.txt").read_text().strip()
