"""The runs manifest (data/reruns/RUNS.toml, quide.analysis.runs), the rerun summary that "Does it
reproduce?" shows first, and the benchmark results that "Performance" reads from their files."""
import re
import shutil
from pathlib import Path

import pytest

from quide.analysis import benchmarks, reruns, runs
from quide.analysis.stability import StabilityConfig
from quide.config import project_root

ROOT = project_root()


def test_manifest_covers_every_kept_run():
    manifest = runs.load_manifest()
    assert runs.problems(manifest) == []
    assert runs.canonical(manifest).folder == "data/results"
    listed = {r.folder for r in manifest}
    on_disk = {f"data/reruns/{d.name}" for d in (ROOT / "data/reruns").iterdir() if d.is_dir()}
    assert on_disk <= listed, f"rerun folders without a manifest entry: {sorted(on_disk - listed)}"


def test_reader_facing_names_are_descriptive():
    # names and purposes are what the book shows: no run letter, host, commit or "device call"
    for r in runs.load_manifest():
        for text in (r.name, r.purpose):
            assert not re.search(r"\brun [a-m]\b|vm-[0-9a-f]{6,}|\b[0-9a-f]{7,40}\b|device call", text, re.I), text
        assert re.match(r"\d+ x H\d+", r.name), f"{r.name!r} should start with its GPUs, e.g. '4 x H200'"


def _tree(tmp_path):
    """A copy of the manifest, with the folders it names made empty, under tmp_path."""
    manifest = runs.load_manifest()
    for r in manifest:
        (tmp_path / r.folder).mkdir(parents=True, exist_ok=True)
        if r.wall_time_file != runs.UNKNOWN:
            (tmp_path / r.wall_time_file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / r.wall_time_file, tmp_path / r.wall_time_file)
    shutil.copy(runs.manifest_path(), runs.manifest_path(tmp_path))
    return manifest


def test_a_rerun_folder_without_an_entry_and_a_missing_folder_are_reported(tmp_path):
    manifest = _tree(tmp_path)
    assert runs.problems(manifest, tmp_path) == []
    (tmp_path / "data/reruns/stray_run").mkdir()
    shutil.rmtree(tmp_path / "data/reruns/run2")
    found = runs.problems(manifest, tmp_path)
    assert any("data/reruns/stray_run: a rerun folder without an entry" in p for p in found), found
    assert any("folder data/reruns/run2 does not exist" in p for p in found), found


def test_a_wall_time_the_file_does_not_state_is_reported(tmp_path):
    manifest = _tree(tmp_path)
    wrong = [runs.Run(**{**vars(r), "wall_time_s": r.wall_time_s + 100}) if r.canonical else r for r in manifest]
    found = runs.problems(wrong, tmp_path)
    assert len(found) == 1 and "wall_time_s 594" in found[0] and "states 494 s" in found[0], found


@pytest.mark.parametrize("change, message", [
    (lambda t: t.replace('gpus = 4\n', '', 1), "missing gpus"),
    (lambda t: t.replace('gpus = 4\n', 'gpus = "four"\n', 1), "gpus = 'four'; expected a whole number"),
    (lambda t: t.replace('calls = 1\n', 'calls = 1\nnotes = "x"\n', 1), "unknown field(s) notes"),
    (lambda t: t.replace('wall_time_s = 494', 'wall_time_s = "about 500"', 1), "expected a positive number or 'unknown'"),
    (lambda t: t.replace('name = "4 x H200, third run"', 'name = "4 x H200, second run"'), "given to more than one run"),
])
def test_a_malformed_entry_is_refused_with_its_field(tmp_path, change, message):
    path = tmp_path / "RUNS.toml"
    path.write_text(change(runs.manifest_path().read_text()))
    with pytest.raises(ValueError, match=re.escape(message)):
        runs.load_manifest(path)


def test_wall_times_come_from_the_results_files():
    times = runs.wall_times(runs.load_manifest()).set_index("run")
    committed = runs.canonical(runs.load_manifest())
    assert times.loc[committed.name, "wall time (s)"] == runs.wall_time_from_file(ROOT / committed.wall_time_file)[0]
    assert times.loc[committed.name, "GPUs"] == "4 x NVIDIA H200"


def test_wall_time_line_is_required(tmp_path):
    (tmp_path / "out.txt").write_text("17 runs\n")
    with pytest.raises(ValueError, match="no line 'wall N s on ...'"):
        runs.wall_time_from_file(tmp_path / "out.txt")


def test_every_benchmark_result_is_read_from_its_file():
    table = benchmarks.table()
    assert len(table) == len(benchmarks.BENCHMARKS) and table["result"].str.contains(r"\d").all()
    whole = table.set_index("script").loc["quide reproduce"]
    assert whole["result"] == f"{runs.wall_time_from_file(ROOT / 'benchmarks/results/reproduce_h200.txt')[0]:g} s wall time"


def test_a_benchmark_line_missing_is_named(tmp_path):
    (tmp_path / benchmarks.RESULTS).mkdir(parents=True)
    b = benchmarks.BENCHMARKS[0]
    (tmp_path / benchmarks.RESULTS / b.file).write_text("nothing here\n")
    with pytest.raises(ValueError, match=f"{b.file}: no line matching .* expected the output of {b.script}"):
        benchmarks.result(b, tmp_path)


def test_the_second_four_gpu_run_agrees_with_the_committed_results():
    manifest = runs.load_manifest()
    second = next(r for r in manifest if r.name == "4 x H200, second run")
    summary = reruns.agreement_summary(reruns.load_run(runs.canonical(manifest).folder),
                                       {second.name: reruns.load_run(second.folder)}, StabilityConfig(draws=20))
    row = summary.iloc[0]
    assert row["P_n"] == row["P_of"] > 600 and row["knees_n"] == row["knees_of"] == 10
    assert row["T_sweeps_n"] == row["T_sweeps_of"] and row["T_max_abs_pct"] < reruns.T_AGREEMENT_PCT
    shown = reruns.summary_table(summary).iloc[0]
    assert shown["P equal"] == f"{row['P_n']} of {row['P_of']}"


def _outputs(page):
    import json
    nb = json.loads((ROOT / "book" / f"{page}.ipynb").read_text())
    return [o for c in nb["cells"] for o in c.get("outputs", [])]


def test_performance_is_an_executed_page_with_a_chart_and_the_benchmark_table():
    assert (ROOT / "book/src/performance.md").is_file() and not (ROOT / "book/performance.md").exists()
    outputs = _outputs("performance")
    assert any("image/png" in o.get("data", {}) for o in outputs), "the wall-time chart"
    html = "".join("".join(o["data"]["text/html"]) for o in outputs if "text/html" in o.get("data", {}))
    assert "benchmarks" in html and all(b.script in html for b in benchmarks.BENCHMARKS)
    assert "literalinclude" not in (ROOT / "book/src/performance.md").read_text()


def test_reproducibility_answers_first_and_the_run_log_is_the_last_page():
    source = (ROOT / "book/src/reproducibility.md").read_text()
    assert len(source.split()) < 1500, "the page gives its answer, one table and one figure; the detail is in the run log"
    outputs = _outputs("reproducibility")
    kinds = ["markdown" if "text/markdown" in o.get("data", {}) else "table" if "text/html" in o.get("data", {})
             else "figure" if "image/png" in o.get("data", {}) else "other" for o in outputs]
    assert kinds[:3] == ["markdown", "table", "figure"], kinds
    toc = (ROOT / "_toc.yml").read_text().strip().splitlines()
    assert toc[-1].strip() == "- file: book/run_log"
