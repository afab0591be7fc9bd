"""quide reproduce: planning, refusal of bad input and data, the Dask path, kills and races."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quide import reproduce as rp
from quide import results

ROOT = Path(__file__).resolve().parents[1]
SLEEPY = "tests/fixtures/sleepy.ipynb"


def write_config(path, experiments):
    """A TOML config from [(name, notebook or None, parameters, grid)]."""
    def value(v):
        return json.dumps(v)   # JSON scalars and lists of them are TOML too
    lines = []
    for name, notebook, params, grid in experiments:
        lines.append("[[experiment]]")
        lines.append(f"name = {value(name)}")
        if notebook:
            lines.append(f"notebook = {value(notebook)}")
        for table, entries in (("parameters", params), ("grid", grid)):
            if entries:
                lines.append(f"{table} = {{ " + ", ".join(f"{k} = {value(v)}" for k, v in entries.items()) + " }")
    path.write_text("\n".join(lines) + "\n")
    return path


def quide_cli(*args, env=None, timeout=300, **kw):
    return subprocess.run([sys.executable, "-m", "quide", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, **kw)


# --- planning and refusal -----------------------------------------------------------------------

def test_plan_keys_runs_by_content(tmp_path):
    cfg = write_config(tmp_path / "a.toml", [("sleepy", SLEEPY, {"bits": 8}, {"seed": [0, 1, 1]})])
    runs = rp.plan(cfg, ROOT)
    assert [r.parameters["seed"] for r in runs] == [0, 1]   # the duplicate is dropped
    assert len({r.key for r in runs}) == 2
    again = rp.plan(cfg, ROOT)
    assert [r.key for r in again] == [r.key for r in runs]   # keys are stable
    other = rp.plan(write_config(tmp_path / "b.toml", [("sleepy", SLEEPY, {"bits": 4}, {"seed": [0]})]), ROOT)
    assert other[0].key != runs[0].key                       # and change with the parameters


def test_smoke_config_plans_with_the_data_hash(mnist):
    runs = rp.plan(ROOT / "reproduce" / "smoke.toml", ROOT)
    assert len(runs) == 2 and all(r.data == {"mnist": mnist.sha256} for r in runs)


@pytest.mark.parametrize("params, message", [
    ({"colour": "red"}, "unknown parameter"),
    ({"seed": "0"}, "'seed'"),
    ({"bits": [0]}, "'bits'"), ({"bits": [1]}, "'bits'"), ({"bits": [33]}, "'bits'"), ({"bits": []}, "'bits'"),
    ({"delta": 1.5}, "'delta'"), ({"delta": -0.1}, "'delta'"),
    ({"dataset": "svhn"}, "'dataset'"), ({"model": "vgg"}, "'model'"), ({"profile": "fast"}, "'profile'"),
])
def test_bad_parameters_are_refused_before_any_run(tmp_path, params, message):
    cfg = write_config(tmp_path / "c.toml", [("ptq_sweep", None, {"profile": "smoke", **params}, {})])
    with pytest.raises(rp.ConfigError, match=message):
        rp.reproduce(cfg, tmp_path / "out", root=ROOT, log=None)
    assert not (tmp_path / "out").exists()


def test_the_cli_refuses_bad_parameters_with_exit_2(tmp_path):
    cfg = write_config(tmp_path / "c.toml", [("ptq_sweep", None, {"profile": "smoke", "seed": "0"}, {})])
    proc = quide_cli("reproduce", str(cfg), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "refused, nothing ran" in proc.stderr and "'seed'" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, message", [
    ("[[experiment]]\nname = 'ptq_sweep'\ngrid = { seed = [] }\n", "non-empty list"),
    ("[[experiment]]\nname = 'ptq_sweep'\nsteps = 3\n", "only"),
    ("name = 'x'\n", "experiment"),
    ("[[experiment\n", "cannot read"),
    ("[[experiment]]\nname = 'nope'\n", "not found"),
    ("[[experiment]]\nname = 'ptq_sweep'\nparameters = { seed = 1 }\ngrid = { seed = [2] }\n", "both"),
])
def test_bad_configs_are_refused(tmp_path, text, message):
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(rp.ConfigError, match=message):
        rp.plan(tmp_path / "c.toml", ROOT)


def test_bad_data_is_refused_with_what_and_where(tmp_path, mnist, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    good = Path(mnist.path).read_bytes()
    cfg = write_config(tmp_path / "c.toml", [("ptq_sweep", None, {"profile": "smoke"}, {"seed": [0]})])
    for name, content in [("truncated", good[: len(good) // 3]), ("flipped", good[:-1] + bytes([good[-1] ^ 1]))]:
        (data / "mnist.npz").write_bytes(content)
        proc = quide_cli("reproduce", str(cfg), "--out", str(tmp_path / "out"), env={"QUIDE_DATA": str(data)})
        assert proc.returncode == 2, name
        assert "data refused" in proc.stderr and str(data / "mnist.npz") in proc.stderr
        assert "sha256 differs" in proc.stderr
    # an npz the project knows no file hash for is still opened and checked: a truncated one is refused
    monkeypatch.setenv("QUIDE_DATA", str(data))
    (data / "cifar10.npz").write_bytes(good[: len(good) // 2])
    cfg = write_config(tmp_path / "d.toml", [("ptq_sweep", None, {"profile": "smoke", "dataset": "cifar10"}, {})])
    with pytest.raises(rp.ConfigError, match="data refused.*cifar10.npz"):
        rp.plan(cfg, ROOT)
    assert not (tmp_path / "out").exists()


def test_an_unusable_results_folder_is_refused(tmp_path):
    cfg = write_config(tmp_path / "c.toml", [("sleepy", SLEEPY, {}, {"seed": [0]})])
    (tmp_path / "afile").write_text("")
    with pytest.raises(rp.ConfigError, match="is a file"):
        rp.reproduce(cfg, tmp_path / "afile", root=ROOT, log=None)
    broken = tmp_path / "results" / "ptq_sweep"
    broken.mkdir(parents=True)
    (broken / "run.json").write_text('[{"P": 0.9')   # a torn file that is not ours to skip
    with pytest.raises(ValueError, match="run.json: unreadable result file"):
        results.load_records(tmp_path / "results")


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(params=st.dictionaries(st.sampled_from(["seed", "bits", "delta", "epochs", "colour"]),
                              st.one_of(st.integers(-3, 40), st.floats(-1, 2, allow_nan=False), st.text(max_size=3),
                                        st.lists(st.integers(-1, 40), max_size=4), st.none(), st.booleans()),
                              max_size=3))
def test_any_parameters_are_planned_or_refused_cleanly(params):
    """Whatever the values, planning either validates a run or raises ConfigError: never a crash,
    and never a run with a value the notebook would reject."""
    try:
        resolved = rp._check_parameters(ROOT / "notebooks" / "ptq_sweep.ipynb", {"profile": "smoke", **params}, "t")
    except rp.ConfigError:
        return
    bits = resolved["bits"]
    assert isinstance(resolved["seed"], int) and not isinstance(resolved["seed"], bool)
    assert bits and all(isinstance(b, int) and not isinstance(b, bool) and (2 <= b <= 16 or b == 32) for b in bits)
    assert resolved["delta"] is None or 0 <= resolved["delta"] <= 1


# --- running ------------------------------------------------------------------------------------

def comparable(record):
    """A record without what a rerun cannot repeat: timings and what is derived from them."""
    timing = {"T_ms", "T_p10_ms", "T_p90_ms", "I", "I_gated", "ALS", "provenance", "train"}
    return {k: v for k, v in record.items() if k not in timing}


@pytest.mark.slow
def test_dask_local_cluster_runs_the_smoke_grid_deterministically(tmp_path, mnist):
    """The real smoke grid on a 2-worker LocalCluster, twice from scratch (fresh checkpoints):
    every record equal to the bit except latency; a third call skips both runs."""
    outs = []
    for name in ("a", "b"):
        proc = quide_cli("reproduce", "reproduce/smoke.toml", "--workers", "2", "--out", str(tmp_path / name),
                         env={"QUIDE_CHECKPOINTS": str(tmp_path / f"ck-{name}")})
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "2 done" in proc.stdout
        outs.append(sorted((json.loads(p.read_text())[0] for p in rp.records_of(tmp_path / name)),
                           key=lambda r: r["seed"]))
    assert [r["seed"] for r in outs[0]] == [0, 1]
    assert [comparable(r) for r in outs[0]] == [comparable(r) for r in outs[1]]
    assert outs[0][0]["P"] != outs[0][1]["P"] or outs[0][0]["train"] != outs[0][1]["train"]   # seeds differ
    proc = quide_cli("reproduce", "reproduce/smoke.toml", "--out", str(tmp_path / "a"))
    assert proc.returncode == 0 and "2 skipped" in proc.stdout
    assert len(results.load_records(tmp_path / "a" / "runs")) == 2 * 5   # two seeds x five bit-widths


@pytest.mark.slow
def test_a_killed_runner_leaves_no_partial_record_and_a_rerun_finishes_only_the_rest(tmp_path):
    cfg = write_config(tmp_path / "c.toml", [("sleepy", SLEEPY, {}, {"seed": [0, 1]})])
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "quide", "reproduce", str(cfg), "--workers", "2", "--out", str(out)],
                            cwd=ROOT, env={**os.environ, "SLEEPY_S": "120"}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:   # seed 0 finished, seed 1 has written its record and sleeps
        if len(list((out / "runs").glob("*"))) == 1 and list((out / ".partial").glob("*/results/sleepy/seed1.json")):
            break
        time.sleep(0.5)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the runs did not reach the point to kill")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = rp.records_of(out)
    assert [json.loads(p.read_text())[0]["seed"] for p in finished] == [0]   # seed 1's record is not in
    nb = json.loads(next((out / "runs").glob("*/notebook.ipynb")).read_text())
    assert not nb["metadata"]["papermill"].get("exception")   # the finished notebook is whole
    time.sleep(1)   # let the killed worker's pid go
    outcomes = rp.reproduce(cfg, out, workers=1, root=ROOT, log=None)
    assert sorted(o["status"] for o in outcomes) == ["done", "skipped"]
    assert sorted(json.loads(p.read_text())[0]["seed"] for p in rp.records_of(out)) == [0, 1]
    assert not any((out / ".partial").iterdir())   # the killed run's folder was cleaned


@pytest.mark.slow
def test_two_runners_on_one_folder_lose_no_record(tmp_path):
    cfg = write_config(tmp_path / "c.toml", [("sleepy", SLEEPY, {}, {"seed": [0, 2, 3, 4]})])
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "quide", "reproduce", str(cfg), "--workers", "2", "--out", str(out)]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    seeds = sorted(json.loads(p.read_text())[0]["seed"] for p in rp.records_of(out))
    assert seeds == [0, 2, 3, 4]                      # each record once: none lost, none doubled
    assert not any((out / ".partial").iterdir())


def test_a_failed_run_is_reported_and_does_not_stop_the_others(tmp_path):
    cfg = write_config(tmp_path / "c.toml", [("sleepy", SLEEPY, {}, {"seed": [0, "x"]})])
    proc = quide_cli("reproduce", str(cfg), "--workers", "2", "--out", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert "1 done" in proc.stdout and "1 failed" in proc.stdout
    assert "FAILED sleepy(seed=x)" in proc.stderr and "log:" in proc.stderr
    log = Path(proc.stderr.split("log: ")[1].split()[0])
    assert "parameter 'seed'" in log.read_text()
    assert [json.loads(p.read_text())[0]["seed"] for p in rp.records_of(tmp_path / "out")] == [0]
