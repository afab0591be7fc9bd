"""Bad input to `quide verify`, the record readers, `benchmarks/run_phases.py`, a config and the
notebook parameters: each is refused or listed with a message naming the file or the parameter,
never a crash, a traceback or a hang."""
import gzip
import json
import os
import re
import shutil
import sys
import threading
from pathlib import Path

import pytest

from quide import cli
from quide.analysis import results as qr
from quide.analysis.verify import verify

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "data" / "results"
SWEEP = "simplecnn-mnist-seed0-graph-paper-*.json"
EXP3 = "simplecnn-mnist-seed0-*.json"
sys.path.insert(0, str(ROOT / "benchmarks"))
import run_phases  # noqa: E402  (a script beside the package, not part of it)


def _results(tmp_path) -> Path:
    """A results root with one committed sweep and one committed EXP-3 condition (its exhaustive
    pass, FP32 reference and searches): verify finds nothing wrong with it."""
    root = tmp_path / "results"
    for experiment, pattern in (("ptq_sweep", SWEEP), ("mixed_precision", EXP3)):
        (root / experiment).mkdir(parents=True)
        for path in (COMMITTED / experiment).glob(pattern):
            shutil.copy(path, root / experiment)
    return root


def _one(root, experiment, part) -> Path:
    return next((root / experiment).glob(f"*-{part}-*.json"))


def _set(**changes):
    """Edit the file's first record."""
    def edit(records):
        records[0].update(changes)
        return records
    return edit


def _drop(key):
    def edit(records):
        del records[0][key]
        return records
    return edit


def _scalar_bits(records):
    """An exhaustive pass's record of one bit-width in every layer, its bits written as one int
    (C_paper stays right: only the type is wrong for an EXP-3 configuration)."""
    i = next(i for i, r in enumerate(records) if len(set(r["bits"])) == 1)
    records[i]["bits"] = records[i]["bits"][0]
    return records


DEEP = 100_000

BAD_VALUES = [   # (experiment, file part, edit, what the problem names)
    ("ptq_sweep", "graph", _set(p_thresh=1.5), "p_thresh"),
    ("ptq_sweep", "graph", _set(p_thresh=-0.2), "p_thresh"),
    ("ptq_sweep", "graph", _set(T_deployed_ms="1.0", T_deployed_reason=None), "T_deployed_ms"),
    ("ptq_sweep", "graph", _set(T_deployed_ms=-1.0, T_deployed_reason=None), "T_deployed_ms"),
    ("ptq_sweep", "graph", _set(T_deployed_ms=[1.0], T_deployed_reason=None), "T_deployed_ms"),
    ("ptq_sweep", "graph", _set(T_deployed_ms=float("nan"), T_deployed_reason=None), "T_deployed_ms"),
    ("ptq_sweep", "graph", _set(experiment=["ptq_sweep"]), "experiment"),
    ("ptq_sweep", "graph", _set(P=10 ** 400), "P"),
    ("ptq_sweep", "graph", _set(model=["simplecnn"]), "model"),
    ("ptq_sweep", "graph", _set(seed=[0]), "seed"),
    ("ptq_sweep", "graph", _set(seed=True), "seed"),
    ("ptq_sweep", "graph", _set(dataset={"name": "mnist"}), "dataset"),
    ("ptq_sweep", "graph", _set(data_source=None), "data_source"),
    ("ptq_sweep", "graph", _set(provenance=[]), "provenance"),
    ("ptq_sweep", "graph", lambda records: "[" * DEEP + "]" * DEEP, "nested"),
    ("mixed_precision", "exhaustive", _scalar_bits, "bits"),
    ("mixed_precision", "ga-s0", _drop("search"), "search"),
    ("mixed_precision", "ga-s0", _set(search=["ga"]), "search"),
    ("mixed_precision", "ga-s0", _set(rank_of_n=1), "rank_of_n"),
    ("mixed_precision", "ga-s0", _set(model_seed=[0]), "model_seed"),
    ("mixed_precision", "ga-s0", _set(fitness_name=3), "fitness_name"),
    ("mixed_precision", "fp32", _set(profile=["paper"]), "profile"),
]


def test_the_committed_copies_verify(tmp_path):
    n, problems = verify(_results(tmp_path))
    assert n > 250 and problems == []


@pytest.mark.parametrize("experiment, part, edit, field", BAD_VALUES,
                         ids=[f"{e}-{p}-{f}-{i}" for i, (e, p, _, f) in enumerate(BAD_VALUES)])
def test_a_bad_value_is_a_listed_problem_naming_file_and_field(tmp_path, experiment, part, edit, field):
    root = _results(tmp_path)
    path = _one(root, experiment, part)
    content = edit(json.loads(path.read_text()))
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    n, problems = verify(root)
    name = f"{experiment}/{path.name}"
    assert any(p.startswith(name) and field in p for p in problems), problems
    # the other files stay clean, though searches lose the exhaustive pass that ranks them
    assert all(p.startswith(name) or "no exhaustive pass" in p for p in problems), problems


def test_an_unexpected_error_while_checking_a_file_is_a_problem_naming_it(tmp_path, monkeypatch):
    from quide.analysis import verify as qv
    root = _results(tmp_path)
    path = _one(root, "ptq_sweep", "graph")
    real = qv.check_record
    def check_record(rec):
        if rec.get("bits") == 8 and rec["experiment"] == "ptq_sweep":
            raise RuntimeError("a check that broke")
        return real(rec)
    monkeypatch.setattr(qv, "check_record", check_record)
    n, problems = verify(root)
    assert problems == [f"ptq_sweep/{path.name}: could not be checked (RuntimeError: a check that broke)"]


# --- a FIFO under the results root ------------------------------------------------------------

def _without_hanging(call, fifo: Path, timeout_s: float = 120.0):
    """``call()``'s result or exception; fails (and unblocks a reader stuck on ``fifo`` by opening
    its other end) when it has not returned within ``timeout_s``."""
    outcome = {}
    def run():
        try:
            outcome["value"] = call()
        except Exception as err:   # handed to the test
            outcome["error"] = err
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))   # a reader waits: this end opens, then EOF
        thread.join(timeout_s)
        pytest.fail(f"still reading the FIFO {fifo} after {timeout_s} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_named_json_is_listed_not_read(tmp_path):
    root = _results(tmp_path)
    fifo = root / "ptq_sweep" / "stuck.json"
    os.mkfifo(fifo)
    n, problems = _without_hanging(lambda: verify(root), fifo)
    assert n > 250 and len(problems) == 1, problems
    assert problems[0].startswith("ptq_sweep/stuck.json: unreadable") and "is a FIFO, not a regular file" in problems[0]
    with pytest.raises(ValueError, match="stuck.json.*is a FIFO"):
        _without_hanging(lambda: qr.load_records(root), fifo)
    folder = root / "ptq_sweep" / "folder.json"   # rglob finds folders by their name too
    folder.mkdir()
    fifo.unlink()
    assert verify(root)[1] == [f"ptq_sweep/folder.json: unreadable ({folder} is a folder, not a regular file; not read)"]


# --- gzip errors and benchmarks/run_phases.py ------------------------------------------------

NOTEBOOKS = ROOT / "data/reruns/one_gpu/notebooks"


def test_a_gzip_error_names_the_file(tmp_path):
    for data in (b"not gzip", gzip.compress(b"[]")[:-6]):
        path = tmp_path / "r.json.gz"
        path.write_bytes(data)
        with pytest.raises(gzip.BadGzipFile, match="^" + re.escape(f"{path}: not gzip, or a damaged or cut gzip stream")):
            qr.read_json_bytes(path)


@pytest.mark.parametrize("damage", [lambda data: data[:-20], lambda data: b"not gzip", lambda data: gzip.compress(b"{")])
def test_run_phases_names_the_notebook_it_cannot_read_and_exits_1(tmp_path, capsys, damage):
    for path in sorted(NOTEBOOKS.glob("ptq_sweep-simplecnn-*.ipynb.gz"))[:2]:
        shutil.copy(path, tmp_path)
    bad = sorted(tmp_path.iterdir())[1]
    bad.write_bytes(damage(bad.read_bytes()))
    assert run_phases.main([str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"run_phases.py: {bad}: not an executed notebook that can be read") and "Traceback" not in err


def _two_runs(folder) -> list[Path]:
    for path in sorted(NOTEBOOKS.glob("ptq_sweep-simplecnn-*.ipynb.gz"))[:2]:
        shutil.copy(path, folder)
    return sorted(folder.iterdir())


def test_run_phases_counts_a_notebook_kept_plain_and_gzipped_once(tmp_path, capsys):
    packed = _two_runs(tmp_path)
    run_phases.main([str(tmp_path)])
    alone = capsys.readouterr().out
    plain = packed[0].with_suffix("")
    plain.write_bytes(gzip.decompress(packed[0].read_bytes()))   # gunzip -k
    assert run_phases.main([str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("# 2 runs") and out == alone
    assert f"{packed[0].name} holds the same notebook as {plain.name}; counted once, from {plain.name}" in err


def test_run_phases_refuses_a_plain_and_a_gzipped_notebook_that_differ(tmp_path, capsys):
    packed = _two_runs(tmp_path)
    nb = json.loads(gzip.decompress(packed[0].read_bytes()))
    nb["metadata"]["papermill"]["start_time"] = "2000-01-01T00:00:00"   # run again, or edited
    plain = packed[0].with_suffix("")
    plain.write_text(json.dumps(nb))
    assert run_phases.main([str(tmp_path)]) == 1
    assert capsys.readouterr().err == (f"run_phases.py: {plain} and {packed[0].name} beside it are different "
                                       "notebooks of one run; keep the run's own and move the other away\n")


# --- quide verify --root ------------------------------------------------------------------------

@pytest.mark.parametrize("root", ["", " "])
def test_an_empty_root_is_refused_with_exit_2(root, capsys):
    assert cli.main(["verify", "--root", root]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"quide verify: the results folder is empty ({root!r}); name a folder")
    with pytest.raises(ValueError, match="the results folder is empty"):
        verify(root)


def test_the_summary_names_the_root_it_checked(tmp_path, capsys, monkeypatch):
    root = _results(tmp_path)
    assert cli.main(["verify", "--root", str(root)]) == 0
    assert capsys.readouterr().out.endswith(f" records under {root}, 0 problems\n")
    monkeypatch.setenv("QUIDE_RESULTS", str(root))   # the default root
    assert cli.main(["verify"]) == 0
    assert capsys.readouterr().out.endswith(f" records under {root}, 0 problems\n")


# --- a config that cannot be read -------------------------------------------------------------

GOOD_CONFIG = '[[experiment]]\nname = "sweep"\nnotebook = "notebooks/ptq_sweep.ipynb"\n'


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(GOOD_CONFIG.replace("sweep", "sw\xe9ep", 1).encode("latin-1")), "not UTF-8 text"),
    (lambda p: p.write_text("[[experiment]\nname = 1\n"), "cannot read the config"),
    (lambda p: None, "cannot read the config"),
    (lambda p: p.mkdir(), "cannot read the config"),
])
def test_a_config_that_cannot_be_read_is_refused_naming_it(tmp_path, make, message):
    from quide.reproduce import ConfigError, load_config
    path = tmp_path / "grid.toml"
    make(path)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: {message}")):
        load_config(path)


def test_reproduce_refuses_a_config_that_is_not_utf8_with_exit_2(tmp_path, capsys):
    path = tmp_path / "grid.toml"
    path.write_bytes(GOOD_CONFIG.encode("utf-16"))
    assert cli.main(["reproduce", str(path), "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"quide reproduce: refused, nothing ran: {path}: not UTF-8 text") and "Traceback" not in err


# --- booleans for numeric parameters --------------------------------------------------------------

def _param_classes():
    from quide.measure.llm import LLMParams
    from quide.measure.mixed_precision import SearchParams
    from quide.measure.sweep import SweepParams
    return {"SweepParams": SweepParams, "SearchParams": SearchParams, "LLMParams": LLMParams}


NUMERIC_PARAMETERS = [
    ("SweepParams", ["seed", "epochs", "delta", "calib_size", "warmup", "timed"]),
    ("SearchParams", ["model_seed", "population", "generations", "mutation", "elite", "budget", "delta",
                      "haq_min_compression", "calib_size", "warmup", "timed"]),
    ("LLMParams", ["group_size", "n_shot", "limit", "delta", "p_thresh", "batch_size", "latency_context_tokens",
                   "latency_rounds", "latency_passes"]),
]


@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize("cls, name", [(c, n) for c, names in NUMERIC_PARAMETERS for n in names])
def test_a_bool_is_refused_for_every_numeric_parameter(cls, name, value):
    with pytest.raises(ValueError, match=re.escape(f"parameter {name!r}: must be a number, not a bool; got {value}")):
        _param_classes()[cls](**{name: value})


def test_the_numeric_parameters_listed_are_all_there_are():
    import dataclasses
    for cls, names in NUMERIC_PARAMETERS:
        fields = dataclasses.fields(_param_classes()[cls])
        assert sorted(names) == sorted(f.name for f in fields if re.search(r"\b(int|float)\b", str(f.type))), cls


def test_reproduce_refuses_delta_true_in_a_config_with_exit_2(tmp_path, capsys):
    path = tmp_path / "grid.toml"
    path.write_text(GOOD_CONFIG + "[experiment.parameters]\ndelta = true\nprofile = \"smoke\"\n")
    assert cli.main(["reproduce", str(path), "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    assert "parameter 'delta': must be a number, not a bool; got True" in capsys.readouterr().err
