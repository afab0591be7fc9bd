"""quide reproduce: planning, refusal of bad input and data, the Dask path, kills and races."""
import json
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quide import reproduce as rp
from quide.analysis import results

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
    return subprocess.run([sys.executable, str(ROOT / "tests" / "fixtures" / "quide_cli.py"), *args], cwd=ROOT, capture_output=True, text=True,
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


def test_a_p_override_sets_the_parameter_where_a_notebook_has_it_and_changes_the_key(tmp_path, mnist):
    cfg = write_config(tmp_path / "a.toml", [("sleepy", SLEEPY, {"bits": 8}, {"seed": [0]}),
                                             ("ptq_sweep", None, {"profile": "smoke", "timed": 1000}, {})])
    plain = rp.plan(cfg, ROOT)
    light = rp.plan(cfg, ROOT, overrides={"timed": 200})
    assert [r.parameters.get("timed") for r in light] == [None, 200]   # sleepy has no `timed`; the config's 1000 yields
    assert light[0].key == plain[0].key and light[1].key != plain[1].key


@pytest.mark.parametrize("overrides, message", [
    ({"colour": "red"}, "no experiment's notebook has such a parameter"),
    ({"seed": 3}, "would override what its grid varies"),
    ({"timed": -1}, "'timed'"),   # checked by the notebook's parameter class like any parameter
])
def test_a_p_override_that_cannot_apply_is_refused(tmp_path, mnist, overrides, message):
    cfg = write_config(tmp_path / "a.toml", [("ptq_sweep", None, {"profile": "smoke"}, {"seed": [0, 1]})])
    with pytest.raises(rp.ConfigError, match=message):
        rp.plan(cfg, ROOT, overrides=overrides)


@pytest.mark.slow
def test_the_cli_passes_p_overrides_as_papermill_would_read_them(tmp_path, mnist):
    cfg = write_config(tmp_path / "a.toml", [("ptq_sweep", None, {"profile": "smoke", "device": "cpu"}, {})])
    proc = quide_cli("reproduce", str(cfg), "--out", str(tmp_path / "out"), "--dry-run", "-p", "timed", "200")
    assert proc.returncode == 0, proc.stderr
    assert "timed=200" in proc.stdout


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_bad_data_is_refused_with_what_and_where(tmp_path, mnist, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    good = Path(mnist.path).read_bytes()
    cfg = write_config(tmp_path / "c.toml", [("ptq_sweep", None, {"profile": "smoke"}, {"seed": [0]})])
    # (a file with other bytes but the known content, such as a re-saved npz, is accepted: test_data)
    mid = len(good) // 2
    for name, content in [("truncated", good[: len(good) // 3]),
                          ("flipped", good[:mid] + bytes([good[mid] ^ 1]) + good[mid + 1:])]:
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
@pytest.mark.slow
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
    timing = {"T_ms", "T_ci_ms", "T_attempt_medians_ms", "T_block_starts_utc", "T_host_ms", "T_host_p10_ms",
              "T_host_p90_ms", "I", "I_gated", "ALS", "provenance", "train"}
    return {k: v for k, v in record.items() if k not in timing}


@pytest.mark.slow
def test_dask_local_cluster_runs_the_smoke_grid_deterministically(tmp_path, mnist):
    """The smoke grid (two seeds) on a 2-worker LocalCluster, twice from scratch (fresh
    checkpoints): every record equal to the bit except latency; a third call skips both runs. Two
    bit-widths (FP32 and 8-bit: training and quantization both) are enough to show that, at a
    third of the five's cost (FP16 on a CPU is the slowest)."""
    argv = ["reproduce", "reproduce/smoke.toml", "-p", "bits", "[32, 8]"]
    outs = []
    for name in ("a", "b"):
        proc = quide_cli(*argv, "--workers", "2", "--out", str(tmp_path / name),
                         env={"QUIDE_CHECKPOINTS": str(tmp_path / f"ck-{name}")})
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "2 done" in proc.stdout
        outs.append(sorted((json.loads(p.read_text())[0] for p in rp.records_of(tmp_path / name)),
                           key=lambda r: r["seed"]))
    assert [r["seed"] for r in outs[0]] == [0, 1]
    assert [comparable(r) for r in outs[0]] == [comparable(r) for r in outs[1]]
    assert outs[0][0]["P"] != outs[0][1]["P"] or outs[0][0]["train"] != outs[0][1]["train"]   # seeds differ
    proc = quide_cli(*argv, "--out", str(tmp_path / "a"))
    assert proc.returncode == 0 and "2 skipped" in proc.stdout
    assert len(results.load_records(tmp_path / "a" / "runs")) == 2 * 2   # two seeds x two bit-widths


@pytest.mark.slow
def test_two_runners_on_one_folder_lose_no_record(tmp_path):
    """Two runners of two workers each start both keys at once: every key races for its lock."""
    cfg = write_config(tmp_path / "c.toml", [("sleepy", SLEEPY, {}, {"seed": [0, 2]})])
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "tests" / "fixtures" / "quide_cli.py"), "reproduce", str(cfg), "--workers", "2", "--out", str(out)]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    seeds = sorted(json.loads(p.read_text())[0]["seed"] for p in rp.records_of(out))
    assert seeds == [0, 2]                            # each record once: none lost, none doubled
    assert not any((out / ".partial").iterdir())
    # case 9: the key's lock lets one runner run it; the other finds it done. One log per attempt:
    # the finished attempt's log is the one copied into the run (a finished kernel may still have
    # logged a ZMQError warning, as a CI clone saw), and any other attempt died before replying
    for run in (out / "runs").iterdir():
        logs = list((out / "logs").glob(f"{run.name}-*.log"))
        finished = [log for log in logs if log.read_text() == (run / "log.txt").read_text()]
        assert len(finished) == 1, [log.name for log in logs]
        assert all(any(s in log.read_text() for s in rp.DEAD_KERNEL_SIGNS) for log in logs if log not in finished)


@pytest.mark.slow
def test_a_failed_run_is_reported_and_does_not_stop_the_others(tmp_path):
    cfg = write_config(tmp_path / "c.toml", [("sleepy", SLEEPY, {}, {"seed": [0, "x"]})])
    proc = quide_cli("reproduce", str(cfg), "--workers", "2", "--out", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert "1 done" in proc.stdout and "1 failed" in proc.stdout
    assert "FAILED sleepy(seed=x)" in proc.stderr and "log:" in proc.stderr
    log = Path(proc.stderr.split("log: ")[1].split()[0])
    assert "parameter 'seed'" in log.read_text()
    assert [json.loads(p.read_text())[0]["seed"] for p in rp.records_of(tmp_path / "out")] == [0]


# --- issue 14: what planning refuses (case 8) -------------------------------------------------------

@pytest.mark.parametrize("params, message", [
    ({"seed": -1}, "parameter 'seed': seeds must be >= 0; got -1"),
    ({"device": "cuda:7"}, "parameter 'device': 'cuda:7' asked for, but this machine has"),
    ({"profile": "paper", "calib_size": 60000},
     "parameter 'calib_size': 60000 calibration images asked for, but the paper profile leaves 55000"),
    ({"experiment": "../../x"}, "parameter 'experiment': must be letters, digits and _"),
    ({"experiment": ""}, "parameter 'experiment'"),
], ids=["negative seed", "absent device", "calib_size", "experiment path", "empty experiment"])
def test_what_would_fail_at_run_time_is_refused_when_planning(tmp_path, mnist, params, message):
    cfg = write_config(tmp_path / "c.toml", [("ptq_sweep", None, {"profile": "smoke", **params}, {})])
    with pytest.raises(rp.ConfigError, match=re.escape(message)):
        rp.reproduce(cfg, tmp_path / "out", root=ROOT, log=None, dry_run=True)
    assert not (tmp_path / "out").exists()


def test_a_negative_model_seed_is_refused(tmp_path, mnist):
    cfg = write_config(tmp_path / "c.toml", [("mixed_precision", None, {"profile": "smoke", "dataset": "mnist",
                                                                        "model_seed": -2}, {})])
    with pytest.raises(rp.ConfigError, match="parameter 'model_seed': seeds must be >= 0"):
        rp.plan(cfg, ROOT)


@pytest.mark.parametrize("notebook, message", [
    ("/tmp/outside.ipynb", "is outside the repository"),
    ("../outside.ipynb", "is outside the repository"),
    ("book/ptq_sweep.ipynb", "book/ptq_sweep.ipynb is not a known experiment notebook"),
    ("README.md", "README.md is not a known experiment notebook"),
])
def test_only_the_repositorys_experiment_notebooks_run(tmp_path, notebook, message):
    cfg = write_config(tmp_path / "c.toml", [("x", notebook, {}, {})])
    with pytest.raises(rp.ConfigError, match=message):
        rp.plan(cfg, ROOT)


@pytest.mark.parametrize("content", ["not json", "{}", '{"cells": 3}', '{"cells": [{"source": "x", "metadata": {"tags": ["parameters"]}}]}'.replace('"x"', '"a = (1"')])
def test_a_file_that_is_not_a_notebook_is_refused(tmp_path, content):
    (tmp_path / "n.ipynb").write_text(content)
    with pytest.raises(rp.ConfigError, match="n.ipynb: (not a readable notebook|no cell tagged)"):
        rp.notebook_defaults(tmp_path / "n.ipynb")


@pytest.mark.parametrize("args, message", [
    (["--workers", "-1"], "--workers must be an int >= 1; got -1"),
    (["--workers", "0"], "--workers must be an int >= 1; got 0"),
    (["--out", ""], "the results folder (--out) is empty"),
    (["--runs-per-gpu", "0"], "--runs-per-gpu must be an int >= 1; got 0"),
    (["--runs-per-gpu", "2", "--workers", "2"], "does not combine with --workers or --scheduler"),
    (["--scheduler", "tcp://127.0.0.1:1"], "cannot reach the Dask scheduler at 'tcp://127.0.0.1:1'"),
    (["--time-limit-s", "0"], "--time-limit-s must be a number of seconds > 0; got 0.0"),
    (["--time-limit-s", "nan"], "--time-limit-s must be a number of seconds > 0; got nan"),
    (["--budget-s", "-5"], "--budget-s must be a number of seconds > 0; got -5.0"),
    (["--train-first", "-1"], "--train-first must be an int >= 0; got -1"),
    (["--train-first", "2", "--scheduler", "tcp://127.0.0.1:1"], "do not combine with --scheduler"),
    (["--resume"], "--resume: "),
])
@pytest.mark.slow
def test_bad_runner_options_are_refused_with_exit_2(tmp_path, args, message):
    cfg = write_config(tmp_path / "c.toml", [("sleepy", SLEEPY, {}, {"seed": [0]})])
    argv = ["reproduce", str(cfg), *(["--out", str(tmp_path / "out")] if "--out" not in args else []), *args]
    proc = quide_cli(*argv, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "refused, nothing ran" in proc.stderr and message in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


# --- partial folders: whose, alive or dead (case 6) -------------------------------------------------

def _partial(out, name, **who):
    folder = out / ".partial" / name
    (folder / "results" / "sleepy").mkdir(parents=True)
    (folder / "results" / "sleepy" / "seed9.json").write_text('[{"seed": 9}]')
    (folder / "owner.json").write_text(json.dumps({**rp.owner(), **who}))
    (folder / "heartbeat").touch()
    return folder


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_partial_is_dead_only_when_surely_gone(tmp_path):
    alive = _partial(tmp_path, "a", pid=os.getpid())
    other_host = _partial(tmp_path, "b", host="elsewhere", pid=_dead_pid())       # its pid means nothing here
    other_container = _partial(tmp_path, "c", pid_ns="pid:[1]", pid=_dead_pid())  # another PID namespace
    other_boot = _partial(tmp_path, "d", boot_id="another-boot", pid=_dead_pid())
    dead = _partial(tmp_path, "e", pid=_dead_pid())
    assert [rp.partial_is_dead(f) for f in (alive, other_host, other_container, other_boot, dead)] == \
        [False, False, False, False, True]
    stale = time.time() - rp.HEARTBEAT_TIMEOUT_S - 10
    os.utime(other_host / "heartbeat", (stale, stale))                            # a heartbeat too old
    assert rp.partial_is_dead(other_host)
    assert rp.clean_partials(tmp_path) == [other_host, dead]
    assert sorted(p.name for p in (tmp_path / ".partial").iterdir()) == ["a", "c", "d"]


def test_a_dry_run_deletes_no_partial_folder(tmp_path):
    cfg = write_config(tmp_path / "c.toml", [("sleepy", SLEEPY, {}, {"seed": [0]})])
    dead = _partial(tmp_path / "out", "k-host-boot-1", pid=_dead_pid())
    outcomes = rp.reproduce(cfg, tmp_path / "out", root=ROOT, log=None, dry_run=True)
    assert [o["status"] for o in outcomes] == ["planned"] and dead.is_dir()


@pytest.mark.slow
def test_a_second_runner_leaves_another_hosts_live_partial_alone(tmp_path):
    """Case 6: a runner on another host (here: another PID namespace) has a live partial folder;
    a second runner's clean-up must not delete it, whatever pid its name or owner carries."""
    cfg = write_config(tmp_path / "c.toml", [("sleepy", SLEEPY, {}, {"seed": [0]})])
    live = _partial(tmp_path / "out", "k-elsewhere-boot-1", host="elsewhere", pid=_dead_pid())
    outcomes = rp.reproduce(cfg, tmp_path / "out", workers=1, root=ROOT, log=None)
    assert [o["status"] for o in outcomes] == ["done"]
    assert (live / "results" / "sleepy" / "seed9.json").is_file()
    assert len(rp.records_of(tmp_path / "out")) == 1   # the partial's record is not a finished run's


@pytest.mark.slow
def test_a_done_run_without_records_is_a_failure(tmp_path):
    """Case 5: a notebook that finishes without writing a record did not do its job."""
    cfg = write_config(tmp_path / "c.toml", [("sleepy", SLEEPY, {"records": False}, {"seed": [0]})])
    outcomes = rp.reproduce(cfg, tmp_path / "out", workers=1, root=ROOT, log=None)
    assert [(o["status"], o["error"]) for o in outcomes] == [("failed", "the notebook finished but wrote no records")]
    assert not (tmp_path / "out" / "runs").exists() or not any((tmp_path / "out" / "runs").iterdir())


@pytest.mark.slow
def test_a_kernel_that_dies_is_retried_once_with_a_log_per_attempt(tmp_path):
    """Case 9 (jupyter_client's port race): a kernel that dies is started once more."""
    marker = tmp_path / "died-once"
    cfg = write_config(tmp_path / "c.toml", [("sleepy", SLEEPY, {"die_once": str(marker)}, {"seed": [0]})])
    outcomes = rp.reproduce(cfg, tmp_path / "out", workers=1, root=ROOT, log=None)
    assert [o["status"] for o in outcomes] == ["done"] and marker.exists()
    logs = sorted((tmp_path / "out" / "logs").glob("*.log"))
    assert len(logs) == 2 and "DeadKernelError" in logs[0].read_text()


def _processes_mentioning(text):
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_papermill_is_started_to_die_with_its_parent_and_keeps_its_arguments_and_exit_code():
    """No preexec_fn (it can deadlock in a threaded worker): the child sets PR_SET_PDEATHSIG itself,
    then execs the command, which reads SIGKILL back with PR_GET_PDEATHSIG."""
    read_back = ("import ctypes, sys; v = ctypes.c_int(); ctypes.CDLL(None).prctl(2, ctypes.byref(v)); "
                 "print(v.value, sys.argv[1:]); sys.exit(7)")
    proc = subprocess.run(rp.die_with_parent([sys.executable, "-c", read_back, "a b", "-y"]),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout.strip() == f"{int(signal.SIGKILL)} ['a b', '-y']"


@pytest.mark.slow
def test_a_killed_runner_ends_its_runs_leaves_no_partial_record_and_a_rerun_finishes_only_the_rest(tmp_path):
    """Case 6: SIGKILL to the runner's pid alone, once seed 0 has finished and seed 1 has written its
    record and sleeps: its workers, papermill and the kernel end too, so no orphan goes on to finish
    a record; seed 1's record is not among the finished ones, and the same command again runs only
    seed 1 and removes the killed run's folder."""
    cfg = write_config(tmp_path / "c.toml", [("sleepy", SLEEPY, {}, {"seed": [0, 1]})])
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fixtures" / "quide_cli.py"), "reproduce", str(cfg), "--workers", "2", "--out", str(out)],
                            cwd=ROOT, env={**os.environ, "SLEEPY_S": "300"}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:   # seed 0 finished, seed 1 has written its record and sleeps
            if len(list((out / "runs").glob("*"))) == 1 and list((out / ".partial").glob("*/results/sleepy/seed1.json")):
                break
            time.sleep(0.5)
        else:
            pytest.fail("the runs did not reach the point to kill")
        record = next((out / ".partial").glob("*/results/sleepy/seed1.json"))
        kernel = json.loads(record.read_text())[0]["provenance"]["pid"]
        worker = json.loads((record.parents[2] / "owner.json").read_text())["pid"]
        papermill = _processes_mentioning(str(out / ".partial"))
        assert papermill and rp.pid_alive(kernel) and rp.pid_alive(worker)
        proc.kill()                      # the runner's pid only, not its process group
        proc.wait()
        left = [kernel, worker, *papermill]
        deadline = time.time() + 120     # a bound for the test to end, not a timing under test
        while time.time() < deadline and any(rp.pid_alive(pid) for pid in left):
            time.sleep(0.5)
        assert not [pid for pid in left if rp.pid_alive(pid)]
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    finished = rp.records_of(out)
    assert [json.loads(p.read_text())[0]["seed"] for p in finished] == [0]   # seed 1's record is not in
    nb = json.loads(next((out / "runs").glob("*/notebook.ipynb")).read_text())
    assert not nb["metadata"]["papermill"].get("exception")   # the finished notebook is whole
    outcomes = rp.reproduce(cfg, out, workers=1, root=ROOT, log=None)
    assert sorted(o["status"] for o in outcomes) == ["done", "skipped"]
    assert sorted(json.loads(p.read_text())[0]["seed"] for p in rp.records_of(out)) == [0, 1]
    assert not any((out / ".partial").iterdir())   # the killed run's folder was cleaned


def test_the_queue_starts_the_longest_runs_first_and_keeps_the_order_of_equals():
    nb = ROOT / "notebooks" / "ptq_sweep.ipynb"
    runs = [rp.Run("ptq_sweep", nb, {"model": "simplecnn", "seed": 0}, "a"),
            rp.Run("mixed_precision", nb, {"model": "simplecnn"}, "b"),
            rp.Run("ptq_sweep", nb, {"model": "resnet18_cifar", "seed": 0}, "c"),
            rp.Run("ptq_sweep", nb, {"model": "simplecnn", "seed": 1}, "d"),
            rp.Run("ptq_sweep", nb, {"model": "resnet18_cifar", "seed": 1}, "e")]
    assert [r.key for r in rp.queue_order(runs)] == ["c", "e", "b", "a", "d"]


def test_packed_workers_share_the_gpus_round_robin():
    assert [rp.gpu_of_worker(name, ["0", "1", "2", "3"]) for name in range(8)] == ["0", "1", "2", "3"] * 2
    assert [rp.gpu_of_worker(str(name), ["0", "1"]) for name in range(3)] == ["0", "1", "0"]   # Dask names may be str
    assert rp.gpu_of_worker(0, ["0"]) == "0"


def test_a_worker_gets_the_gpu_this_process_sees_not_the_hosts_of_that_index(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert rp.visible_gpus(2) == ["2", "3"]
    assert [rp.gpu_of_worker(name, rp.visible_gpus(2)) for name in range(3)] == ["2", "3", "2"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert rp.visible_gpus(2) == ["0", "1"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="refused only where no GPU is visible")
@pytest.mark.slow
def test_packing_runs_onto_gpus_is_refused_without_a_gpu(tmp_path):
    cfg = write_config(tmp_path / "c.toml", [("sleepy", SLEEPY, {}, {"seed": [0]})])
    proc = quide_cli("reproduce", str(cfg), "--out", str(tmp_path / "out"), "--runs-per-gpu", "2", timeout=120)
    assert proc.returncode == 2 and "--runs-per-gpu 2 needs a visible GPU" in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "out").exists()   # refused before planning, so nothing was made


# --- a time limit: runs that would not fit wait for the next call --------------------------------

def test_a_run_is_deferred_only_when_its_expected_seconds_pass_the_limit(tmp_path):
    run = rp.Run("sleepy", ROOT / SLEEPY, {"seed": 0}, "k")
    assert run.expected_seconds == 30.0   # an experiment the queue does not know counts as short
    outcome = rp.execute(run, tmp_path, ROOT, ends_by=time.time() + 10)
    assert outcome["status"] == "deferred" and not (tmp_path / "runs").exists() and not (tmp_path / "logs").exists()
    assert rp.execute(run, tmp_path, ROOT, ends_by=time.time() + 600)["status"] == "done"


@pytest.mark.slow
def test_a_time_limit_starts_what_fits_and_the_same_command_finishes_the_rest(tmp_path):
    """A run expected to take 300 s (the LLM's expectation) is deferred under a 100 s limit while the
    short one starts; exit 3 says so, and the same command again starts only the deferred run."""
    cfg = write_config(tmp_path / "c.toml", [("llm_case_study", SLEEPY, {"seed": 7}, {}),
                                             ("sleepy", SLEEPY, {}, {"seed": [0]})])
    argv = ["reproduce", str(cfg), "--workers", "1", "--out", str(tmp_path / "out")]
    first = quide_cli(*argv, "--time-limit-s", "100")
    assert first.returncode == 3, first.stderr[-2000:]
    assert "1 done" in first.stdout and "1 deferred" in first.stdout and "again starts them" in first.stderr
    assert sorted(json.loads(p.read_text())[0]["seed"] for p in rp.records_of(tmp_path / "out")) == [0]
    second = quide_cli(*argv)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "1 done" in second.stdout and "1 skipped" in second.stdout
    assert sorted(json.loads(p.read_text())[0]["seed"] for p in rp.records_of(tmp_path / "out")) == [0, 7]


def test_a_sweep_run_whose_checkpoint_exists_expects_no_training(tmp_path, monkeypatch):
    from helpers import synthetic_arrays
    from quide.measure import data as qd
    from quide.measure import sweep as qsweep
    monkeypatch.setattr(qd, "KNOWN_FILE_SHA256", {})   # a small made-up MNIST
    qd.save_npz(tmp_path / "mnist.npz", **synthetic_arrays(n_train=400, n_test=50, shape=(28, 28, 1), num_classes=10))
    monkeypatch.setenv("QUIDE_DATA", str(tmp_path))
    monkeypatch.setenv("QUIDE_CHECKPOINTS", str(tmp_path / "checkpoints"))
    cfg = write_config(tmp_path / "c.toml", [("ptq_sweep", None, {"model": "simplecnn", "dataset": "mnist",
                                                                  "profile": "smoke", "device": "cpu"}, {"seed": [3, 4]})])
    before = rp.plan(cfg, ROOT)
    assert [r.checkpoint_found for r in before] == [False, False]
    assert [r.expected_seconds for r in before] == [rp.EXPECTED_SECONDS[("ptq_sweep", None)]] * 2
    qsweep.model_for(qsweep.load_condition(qsweep.SweepParams(**before[0].parameters)))   # as `quide train` does
    after = rp.plan(cfg, ROOT)
    assert [r.checkpoint_found for r in after] == [True, False] and [r.key for r in after] == [r.key for r in before]
    assert after[0].expected_seconds == pytest.approx(rp.EXPECTED_SECONDS[("ptq_sweep", None)]
                                                      - rp.EXPECTED_TRAINING_SECONDS["simplecnn"])
    assert rp.queue_order(after) == [after[1], after[0]]   # the untrained one is the longer now


def test_the_expected_seconds_are_run_as_medians_from_its_committed_files():
    """EXPECTED_SECONDS and EXPECTED_TRAINING_SECONDS are what their comment says they are."""
    rows = [re.match(r"\s*([\d.]+) s  (\w+)\((?:model=(\w+))?", line)
            for line in (ROOT / "benchmarks/results/grid_wall_4xh200_vm-c1f066cc.txt").read_text().splitlines()]
    runs = {}
    for m in filter(None, rows):
        kind = (m[2], m[3] if m[3] == "resnet18_cifar" else None)
        runs.setdefault(kind, []).append(float(m[1]))
    assert sum(len(v) for v in runs.values()) == 17
    for kind, seconds in runs.items():
        assert rp.EXPECTED_SECONDS[kind] == pytest.approx(np.median(seconds), abs=0.05), kind
    trainings = {}
    for path in (ROOT / "data/results/ptq_sweep").glob("*.json"):
        record = json.loads(path.read_text())[0]
        key = (record["model"], record["dataset"], record["seed"])
        assert record["provenance"]["git_commit"].startswith("5eafdf2")
        trainings[key] = record["train"]["train_wall_s"]   # both placements of a seed share one training
    for model, seconds in rp.EXPECTED_TRAINING_SECONDS.items():
        assert seconds == pytest.approx(np.median([s for (m, _, _), s in trainings.items() if m == model]), abs=0.05)


# --- the options of a session on a lent machine: budget, resume, MPS, the timing summary ----------

@pytest.mark.parametrize("time_limit_s, budget_s, expected", [
    (120.0, 500.0, (1120.0, 1490.0)),   # an explicit time limit is kept; the budget still stops at its end
    (None, None, (None, None)),         # no budget, no limit
    (None, 230.0, (1220.0, 1220.0)),    # what the budget leaves, less the stop grace, is the time limit
    (None, 10.0, (1000.0, 1000.0)),     # a budget within the grace starts nothing
])
def test_the_time_limit_is_the_budgets_stop_unless_given(time_limit_s, budget_s, expected):
    assert rp.STOP_GRACE_S == 10
    assert rp.deadlines(1000.0, time_limit_s, budget_s) == expected


def sleepy_config(tmp_path, seeds=(0, 2), **params):
    return write_config(tmp_path / "c.toml", [("sleepy", SLEEPY, params, {"seed": list(seeds)})])


def test_a_budget_spent_before_the_runs_would_start_runs_nothing_and_says_so(tmp_path):
    result = rp.run_grid(sleepy_config(tmp_path), tmp_path / "out", root=ROOT, log=None, budget_s=0.001)
    assert [o["status"] for o in result.outcomes] == ["deferred", "deferred"]
    assert not (tmp_path / "out" / "runs").exists()
    assert result.summary[-2].startswith("0 of 2 runs finished")
    assert result.summary[-1].startswith("whole reproduction: not finished: 0 of 2 runs after ")


def test_resume_adds_the_earlier_calls_of_the_same_grid_and_refuses_another(tmp_path):
    """Runs expected to take 30 s under a 1 s time limit are deferred, so no call starts a cluster."""
    cfg, out = sleepy_config(tmp_path), tmp_path / "out"
    with pytest.raises(rp.ConfigError, match="--resume: .*calls.json not found; the first call runs without --resume"):
        rp.run_grid(cfg, out, root=ROOT, log=None, resume=True, time_limit_s=1)
    out.mkdir()
    (out / "mine.txt").write_text("kept")   # nothing in --out is emptied, first call or not
    first = rp.run_grid(cfg, out, root=ROOT, log=None, time_limit_s=1, overrides={"bits": 4})
    with pytest.raises(rp.ConfigError, match="give the same config and -p"):
        rp.run_grid(cfg, out, root=ROOT, log=None, resume=True, time_limit_s=1)
    second = rp.run_grid(cfg, out, root=ROOT, log=None, resume=True, time_limit_s=1, overrides={"bits": 4})
    assert "over 2 calls" in second.summary[-1] and "over" not in first.summary[-1]
    third = rp.run_grid(cfg, out, root=ROOT, log=None, time_limit_s=1)   # without --resume: a new measurement
    assert "over" not in third.summary[-1]
    assert (out / "mine.txt").read_text() == "kept" and len(list((out / "logs").glob("summary-*.txt"))) >= 1


def test_mps_on_a_machine_without_it_is_refused_before_anything_is_made(tmp_path, monkeypatch):
    monkeypatch.setattr(rp, "mps_available", lambda: False)
    with pytest.raises(rp.ConfigError, match="--mps: nvidia-cuda-mps-control not found"):
        rp.run_grid(sleepy_config(tmp_path), tmp_path / "out", root=ROOT, log=None, mps=True)
    assert not (tmp_path / "out").exists()


def test_a_run_records_the_checkpoint_it_loads_and_the_training_that_makes_it(tmp_path, monkeypatch):
    from helpers import synthetic_arrays
    from quide.measure import data as qd
    from quide.measure import sweep as qsweep
    monkeypatch.setattr(qd, "KNOWN_FILE_SHA256", {})   # a small made-up MNIST
    qd.save_npz(tmp_path / "mnist.npz", **synthetic_arrays(n_train=400, n_test=50, shape=(28, 28, 1), num_classes=10))
    monkeypatch.setenv("QUIDE_DATA", str(tmp_path))
    monkeypatch.setenv("QUIDE_CHECKPOINTS", str(tmp_path / "checkpoints"))
    cfg = write_config(tmp_path / "c.toml", [
        ("ptq_sweep", None, {"dataset": "mnist", "profile": "smoke", "device": "cpu", "bits": [32, 8]}, {"seed": [0]}),
        ("mixed_precision", None, {"dataset": "mnist", "profile": "smoke", "device": "cpu", "model_seed": 0}, {})])
    sweep, search = rp.plan(cfg, ROOT)
    assert sweep.checkpoint == search.checkpoint and sweep.checkpoint.startswith(str(tmp_path / "checkpoints"))
    assert sweep.own_training and not search.own_training   # a search quantizes the sweep's model
    assert list(sweep.training)[:3] == ["model", "dataset", "seed"]
    assert qsweep.checkpoint_of(qsweep.SweepParams(**sweep.training)) == Path(sweep.checkpoint)
    assert sweep.table == "ptq_sweep(dataset=mnist, profile=smoke, device=cpu, bits=[32, 8])"


def test_the_seeds_grid_has_ten_seeds_per_simplecnn_condition_and_five_for_resnet18(monkeypatch):
    """reproduce/seeds.toml plans 4 x 10 + 5 = 45 PTQ-sweep runs by the paper's profile (the data
    sets' hashes are not what this checks: Fashion-MNIST need not be here)."""
    from collections import Counter
    monkeypatch.setattr(rp, "data_hashes", lambda resolved, cache, kind="dataset": {resolved["dataset"]: "unhashed"})
    runs = rp.plan(ROOT / "reproduce" / "seeds.toml", ROOT)
    assert len(runs) == 45 and {r.experiment for r in runs} == {"ptq_sweep"}
    assert {r.parameters["profile"] for r in runs} == {"paper"}
    seeds = {}
    for r in runs:
        seeds.setdefault((r.parameters["model"], r.parameters["dataset"]), set()).add(r.parameters["seed"])
    assert Counter({k: len(v) for k, v in seeds.items()}) == Counter(
        {("simplecnn", d): 10 for d in ("mnist", "fashion_mnist", "cifar10", "mnist_jpeg")} | {("resnet18_cifar", "cifar10"): 5})
    assert all({0, 42, 123} <= v for v in seeds.values())   # the paper's three among them


@pytest.mark.slow
def test_a_budget_stops_a_run_that_outlives_it_and_leaves_nothing_running(tmp_path, monkeypatch):
    """Seed 0 ends within the budget; seed 1 writes its record and sleeps past it: it is stopped at
    the budget's end less the grace, and its worker, papermill and kernel are gone when the call
    returns. The time limit lets it start although it was not expected to fit."""
    monkeypatch.setenv("SLEEPY_S", "600")
    monkeypatch.setattr(rp, "STOP_GRACE_S", 2)
    out = tmp_path / "out"
    result = rp.run_grid(sleepy_config(tmp_path, seeds=(0, 1)), out, root=ROOT, log=None, workers=2,
                         budget_s=75, time_limit_s=600)
    assert sorted(o["status"] for o in result.outcomes) == ["done", "stopped"]
    record = next((out / ".partial").glob("*/results/sleepy/seed1.json"))   # it had started
    kernel = json.loads(record.read_text())[0]["provenance"]["pid"]
    worker = json.loads((record.parents[2] / "owner.json").read_text())["pid"]
    assert not [pid for pid in (kernel, worker, *_processes_mentioning(str(out / ".partial"))) if rp.pid_alive(pid)]
    assert [json.loads(p.read_text())[0]["seed"] for p in rp.records_of(out)] == [0]
    assert "stopped by --budget-s at" in next(line for line in result.summary if line.startswith("critical path"))


@pytest.mark.slow
def test_the_cli_ends_with_the_timing_summary_and_writes_it_beside_the_logs(tmp_path):
    proc = quide_cli("reproduce", str(sleepy_config(tmp_path)), "--workers", "2", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[1].startswith(f"# quide reproduce {tmp_path / 'c.toml'} --workers 2") and lines[1].endswith("| 1 x CPU")
    assert re.fullmatch(r"whole reproduction: \d+ s on 1 x CPU", lines[-1])
    assert any(re.match(r"critical path \(ended at \d+ s\): planning \d+ s > .*sleepy\(seed=\d\) \d+ s \[worker \d\]", line)
               for line in lines)
    written = next((tmp_path / "out" / "logs").glob("summary-*.txt")).read_text().splitlines()
    assert written[0] == lines[1] and written[-1] == lines[-1]

