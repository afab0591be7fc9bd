"""The sweep notebook: bad parameters (and names that are not parameters) fail in its first cells
with one message (those cells run in-process, and once under papermill); CIFAR-100 and ImageNet
layouts run under papermill (smoke profile, synthetic data); the nbval copy is not stale."""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image

from quide.measure import data as qd
from helpers import synthetic_arrays

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "ptq_sweep.ipynb"
SMOKE_COPY = ROOT / "tests" / "notebooks" / "ptq_sweep_smoke.ipynb"


def papermill(tmp_path, env_data, *params):
    out = tmp_path / "out.ipynb"
    cmd = [sys.executable, "-m", "papermill", "-k", "python3", str(NOTEBOOK), str(out), "--cwd", str(ROOT)]
    for name, value in params:
        cmd += ["-y", json.dumps({name: value})]
    env = {**__import__("os").environ, "QUIDE_DATA": str(env_data),
           "QUIDE_RESULTS": str(tmp_path / "results"), "QUIDE_CHECKPOINTS": str(tmp_path / "ckpt")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    return proc, out


FIRST_CELLS = 4   # imports, parameters, validation, data: a bad parameter must fail in these


def first_cells(*params):
    """The notebook's first code cells, with the cell papermill would inject after the parameters
    cell (``name = value`` lines, as papermill writes them for Python)."""
    cells = [c for c in nbformat.read(NOTEBOOK, 4).cells if c.cell_type == "code"][:FIRST_CELLS]
    assert "sweep.load_condition(" in cells[-1].source, "the notebook's data cell moved: update FIRST_CELLS"
    at = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    injected = "\n".join(f"{name} = {value!r}" for name, value in params)
    sources = [c.source for c in cells]
    return sources[:at + 1] + [injected] + sources[at + 1:]


@pytest.mark.parametrize("params, message", [
    ([("dataset", "svhn")], "parameter 'dataset': unknown dataset"),
    ([("bits", [32, 8, 1])], "parameter 'bits': every entry must be an int in 2..16 or 32"),
    ([("seed", "zero")], "parameter 'seed': seeds must be ints"),
    ([("model", "resnet18_cifar"), ("dataset", "mnist")], "resnet18_cifar runs on"),
    ([("dataset", "cifar100")], "CIFAR-100 not found"),
    ([("sed", 42)], "unknown parameter(s) ['sed']"),
])
def test_bad_parameters_fail_in_the_first_cells(tmp_path, monkeypatch, params, message):
    """The notebook's own first cells, executed in this process as its kernel would run them: the
    same validation (parameter_names, SweepParams, load_condition) refuses each bad parameter."""
    monkeypatch.setenv("QUIDE_DATA", str(tmp_path / "empty-data-root"))
    namespace = {}
    with pytest.raises((ValueError, FileNotFoundError)) as refused:
        for source in first_cells(("profile", "smoke"), ("device", "cpu"), *params):
            exec(compile(source, str(NOTEBOOK), "exec"), namespace)
    assert message in str(refused.value)


@pytest.mark.slow
def test_a_bad_parameter_fails_in_the_first_cells_under_papermill(tmp_path):
    """One real papermill run (the others are checked in-process above): a name that is not a
    parameter fails in the notebook's first cells, in a real kernel whose globals hold IPython's names."""
    proc, out = papermill(tmp_path, tmp_path / "empty-data-root", ("profile", "smoke"), ("device", "cpu"),
                          ("sed", 42))
    assert proc.returncode != 0
    assert "unknown parameter(s) ['sed']" in proc.stderr + proc.stdout
    nb = nbformat.read(out, 4)
    failed = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
              and any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    assert failed and failed[0] in code_cells[:FIRST_CELLS + 1]   # the injected cell is one more


def _records(tmp_path):
    files = sorted((tmp_path / "results" / "ptq_sweep").glob("*.json"))
    return files, [r for f in files for r in json.loads(f.read_text())]


@pytest.mark.slow
def test_cifar100_layout_runs(tmp_path, synthetic_root):
    proc, _ = papermill(tmp_path, synthetic_root, ("dataset", "cifar100"), ("profile", "smoke"),
                        ("device", "cpu"), ("bits", [32, 8, 4]), ("warmup", 0), ("timed", 1))
    assert proc.returncode == 0, proc.stderr[-2000:]
    files, records = _records(tmp_path)
    assert [f.stem.rsplit("-", 1)[0] for f in files] == ["simplecnn-cifar100-seed0-graph-smoke",
                                                         "simplecnn-cifar100-seed0-inputs-smoke"]
    assert {r["num_classes"] for r in records} == {100} and {r["delta"] for r in records} == {0.43}
    assert all(r["p_thresh"] >= 0.01 for r in records)


@pytest.mark.slow
def test_imagenet_folder_layout_runs(tmp_path):
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("n01440764", "n01443537"):
            folder = root / "imagenet" / split / cls
            folder.mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    proc, _ = papermill(tmp_path, root, ("model", "resnet18_imagenet"), ("dataset", "imagenet"),
                        ("profile", "smoke"), ("device", "cpu"), ("bits", [32, 8]),
                        ("compare_placements", False), ("calib_size", 4),
                        ("warmup", 0), ("timed", 1))   # the layout is under test, not the host timing
    assert proc.returncode == 0, proc.stderr[-2000:]
    _, records = _records(tmp_path)
    assert [r["bits"] for r in records] == [32, 8]
    assert records[0]["data_source"] == "ImageNet-1K" and records[0]["num_classes"] == 2
    assert records[0]["delta"] == 0.60 and records[0]["n_test"] == 6


def test_nbval_copy_matches_the_notebook():
    source = [c.source for c in nbformat.read(NOTEBOOK, 4).cells if c.cell_type == "code"]
    smoke = [c.source for c in nbformat.read(SMOKE_COPY, 4).cells if c.cell_type == "code"
             and "injected-parameters" not in c.metadata.get("tags", [])]
    assert smoke == source, "tests/notebooks/ptq_sweep_smoke.ipynb is stale: run `make smoke-notebook`"


def test_source_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, 4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
