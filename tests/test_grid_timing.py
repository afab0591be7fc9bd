"""quide.grid_timing: the critical path, the timing summary's last line, and which calls --resume adds."""
import re

import pytest

from quide import grid_timing as gt
from quide.analysis.runs import wall_time_from_file


def row(label, start, end, lane, status="done", table="t"):
    return {"label": label, "table": table, "status": status, "seconds": end - start, "start_s": start,
            "end_s": end, "lane": lane}


def call(runs=(), trainings=(), wall=100.0, done_before=0, planned=None, end="ended", gpus="1 x NVIDIA H200"):
    runs = list(runs)
    return {"started_utc": "2026-01-01T00:00:00+00:00", "gpus": gpus, "planned": len(runs) if planned is None else planned,
            "done_before": done_before, "planned_s": 5.0, "checkpoints_found": 0, "trainings": list(trainings),
            "runs": runs, "training_how": "2 at a time", "end": end, "wall_s": wall}


def test_the_critical_path_is_the_chain_on_the_lane_of_the_run_that_ended_last():
    rows = [row("a", 10, 50, "w0"), row("b", 10, 30, "w1"), row("c", 30, 70, "w1"), row("d", 50, 60, "w0"),
            row("e", 70, 95, "w1")]
    assert [r["label"] for r in gt.critical_path(rows)] == ["b", "c", "e"]
    assert gt.critical_path([]) == []


def test_the_path_goes_from_planning_through_the_trainings_to_the_runs():
    c = call(runs=[row("run x", 60, 90, "worker 0"), row("run y", 61, 80, "worker 1")],
             trainings=[row("train a", 6, 40, "0/0"), row("train b", 6, 20, "0/1"), row("train c", 20, 55, "0/1")],
             wall=93)
    assert gt.path_text(c) == ("planning 5 s > train b 14 s [0/1] > train c 35 s [0/1] > (wait 5 s) > "
                               "run x 30 s [worker 0] > (then 3 s to the end)")
    assert "critical path (ended at 93 s): planning 5 s" in gt.call_lines(c)[-1]


def test_a_stopped_call_says_where_its_path_was_cut():
    c = call(runs=[row("a", 10, 20, "w0"), {**row("b", 0, 0, None, status="stopped"), "start_s": None, "end_s": 50.0}],
             wall=52)
    assert gt.path_text(c).endswith("a 10 s [w0] > stopped by --budget-s at 50 s with 1 unfinished (then 2 s to the end)"
                                    .replace(" (then", " > (then"))


@pytest.mark.parametrize("calls, planned, finished, expected", [
    ([call(wall=512.4)], 17, 17, "whole reproduction: 512 s on 1 x NVIDIA H200"),
    ([call(wall=300), call(wall=212.2, done_before=12)], 17, 17,
     "whole reproduction: 512 s on 1 x NVIDIA H200 over 2 calls (300 + 212 s)"),
    ([call(wall=300, done_before=3)], 17, 17, "whole reproduction: not timed from scratch: 3 of 17 runs"),
    ([call(wall=300)], 17, 12, "whole reproduction: not finished: 12 of 17 runs after 300 s on 1 x NVIDIA H200; "
                               "the rest deferred"),
    ([call(runs=[row("a", 0, 1, "w", status="failed")], wall=30)], 2, 1, "whole reproduction: not finished: 1 of 2 "
                                                                         "runs after 30 s on 1 x NVIDIA H200; 1 failed"),
    ([call(wall=40, end="interrupted by SIGTERM")], 2, 0, "whole reproduction: interrupted by SIGTERM: 0 of 2 runs"),
])
def test_the_last_line_states_a_time_only_for_a_whole_grid_timed_from_scratch(calls, planned, finished, expected):
    line = gt.last_line(calls, planned, finished)
    assert line.startswith(expected)
    timed = re.match(r"whole reproduction: \d+ s on", line) is not None   # what the performance page reads
    assert timed == (finished == planned and not calls[0]["done_before"])


def test_the_summary_file_is_what_the_runs_manifest_and_the_performance_page_read(tmp_path):
    lines = gt.summary([call(runs=[row("ptq_sweep(seed=0)", 6, 96, "worker 0")], wall=100)], 1, 1)
    path = gt.write_summary(tmp_path, "# quide reproduce reproduce/paper.toml | NVIDIA H200", lines, "20260101T000000")
    assert path == tmp_path / "logs" / "summary-20260101T000000.txt"
    assert path.read_text().splitlines()[0].startswith("# quide reproduce")
    assert "    90.0 s  ptq_sweep(seed=0)" in lines and "runs of t: 1 in 90 s wall (6-96 s), sum 90 s" in lines
    assert wall_time_from_file(path) == (100.0, "1 x NVIDIA H200")


def test_resume_continues_only_the_same_grid(tmp_path):
    grid = {"config": "/r/paper.toml", "parameters": {"timed": 200}}
    assert gt.earlier_calls(tmp_path, grid, resume=False) == []
    with pytest.raises(gt.ResumeError, match="calls.json not found; the first call runs without --resume"):
        gt.earlier_calls(tmp_path, grid, resume=True)
    gt.save_calls(tmp_path, grid, [call(wall=300)])
    assert [c["wall_s"] for c in gt.earlier_calls(tmp_path, grid, resume=True)] == [300]
    with pytest.raises(gt.ResumeError, match="give the same config and -p"):
        gt.earlier_calls(tmp_path, {**grid, "parameters": {}}, resume=True)
