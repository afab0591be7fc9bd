"""Records never averaged with a variant run, replaced by a run on other data, lost to a stale run
when collected, or labelled from an npz's note."""
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quide.analysis import aggregate, stability
from quide.analysis import index as qi
from quide.analysis import results as qr
from quide.analysis.verify import verify
from quide.measure import provenance as qprov

COMMITTED = Path(__file__).resolve().parents[1] / "data" / "results"


def _cifar_graph_root(tmp_path) -> Path:
    """A results root holding the committed SimpleCNN / CIFAR-10 graph-placement sweeps (3 seeds)."""
    root = tmp_path / "results"
    (root / "ptq_sweep").mkdir(parents=True)
    for path in (COMMITTED / "ptq_sweep").glob("simplecnn-cifar10-seed*-graph-paper-*.json"):
        shutil.copy(path, root / "ptq_sweep")
    return root


def _delta_variant(root: Path, delta: float = 0.6) -> Path:
    """What `-p delta 0.6` on SimpleCNN CIFAR-10 seed 0 writes beside the committed runs: valid
    records under their own name."""
    source = next((root / "ptq_sweep").glob("simplecnn-cifar10-seed0-graph-paper-*.json"))
    records = json.loads(source.read_text())
    params = {**records[0]["run_params"], "delta": delta}
    variant = []
    for rec in records:
        rec = {k: v for k, v in rec.items() if k not in ("run_params", "run_params_sha256")}
        rec["delta"] = delta
        rec["p_thresh"] = float(qi.p_thresh(rec["num_classes"], rec["p_fp"], delta))
        rec["I_gated"] = float(qi.gated_index(rec["C_paper"], rec["P"], rec["T_ms"], rec["p_thresh"]))
        variant.append(rec)
    return qr.write_records(variant, "ptq_sweep", qr.named_run("simplecnn-cifar10-seed0-graph-paper", params),
                            root=root, run_params=params)


# --- 1: a variant run is never averaged into Table 1 -------------------------------------------

def test_a_delta_variant_beside_the_committed_runs_is_refused_not_averaged(tmp_path):
    root = _cifar_graph_root(tmp_path)
    canonical = aggregate.table1(qr.load_records(root, "ptq_sweep"))
    variant = _delta_variant(root)
    records = qr.load_records(root, "ptq_sweep")
    for aggregation in (aggregate.table1, aggregate.knees, aggregate.rankings, aggregate.orders,
                        aggregate.placement_table, stability.knee_stability):
        with pytest.raises(ValueError, match=r"model=simplecnn, dataset=cifar10.*different run parameters "
                                             r"\['delta'\]: delta=0\.3 .*delta=0\.6 \(ptq_sweep/" + variant.name):
            aggregation(records)
    # one parameter set selected: the committed table again, three seeds
    chosen = aggregate.table1(aggregate.with_params(records, delta=0.3))
    pd.testing.assert_frame_equal(chosen, canonical)
    assert set(chosen["n_seeds"]) == {3}
    assert set(aggregate.table1(aggregate.with_params(records, delta=0.6))["n_seeds"]) == {1}


def test_verify_lists_a_variant_run_beside_the_committed_runs(tmp_path):
    root = _cifar_graph_root(tmp_path)
    assert verify(root)[1] == []
    variant = _delta_variant(root)
    n, problems = verify(root)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"ptq_sweep/{variant.name}: records of the condition of ptq_sweep/simplecnn-cifar10-")
    assert "delta 0.3 vs 0.6" in problems[0] and "another results root" in problems[0]


def test_records_of_older_schema_pool_as_one_parameter_set():
    recs = [{"model": "m", "dataset": "d", "seed": s, "bits": b, "P": 0.9, "T_ms": 1.0, "C_paper": 32 / b,
             "C_true": 32 / b, "I": 1.0, "I_gated": 1.0, "ACP": 1.0, "ALS": 1.0, "p_thresh": 0.5,
             "num_classes": 10} for s in (0, 1) for b in (32, 8)]
    assert set(aggregate.table1(recs)["n_seeds"]) == {2}
    mixed = [{**recs[0], "run_params": {"seed": 0, "delta": 0.3}}] + recs[1:]
    with pytest.raises(ValueError, match=r"model=m, dataset=d.*different run parameters \['delta'\]: delta=0\.3; delta=absent"):
        aggregate.table1(mixed)


# --- 8: the data's content hash is part of a record's identity ---------------------------------

def _record(data_sha256, P=0.99):
    return qr.make_record(experiment="ptq_sweep", model="m", dataset="cifar10", data_source="CIFAR-10",
                          seed=0, bits=8, P=P, T_ms=0.5, T_kind="simulated", C_paper=4.0, C_true=3.9,
                          num_classes=10, p_fp=0.992, delta=0.19,
                          provenance=qprov.provenance(device="test", data_sha256=data_sha256))


def test_a_run_on_other_data_of_the_same_name_does_not_replace_the_records(tmp_path):
    path = qr.write_records([_record("a" * 64)], "ptq_sweep", "run", root=tmp_path)
    before = path.read_text()
    with pytest.raises(ValueError, match=r"run.json holds records made on other data \(data_sha256 "
                                         r"aaaaaaaaaaaa\.\.\. vs bbbbbbbbbbbb\.\.\.\); not replaced"):
        qr.write_records([_record("b" * 64, P=0.5)], "ptq_sweep", "run", root=tmp_path)
    assert path.read_text() == before
    qr.write_records([_record("a" * 64, P=0.5)], "ptq_sweep", "run", root=tmp_path)   # a rerun on the same data


def test_a_sweep_names_and_identifies_its_records_by_the_data_hash(tmp_path, monkeypatch):
    from quide.measure import sweep
    params = sweep.SweepParams(dataset="cifar10", profile="smoke", device="cpu", compare_placements=False)
    monkeypatch.setattr(sweep, "measure_sweep", lambda *a, **k: ([_record("c" * 64)], None))
    paths = []
    for digest in ("c" * 64, "d" * 64):
        info = sweep.DataInfo("cifar10", "CIFAR-10", 10, digest)
        condition = sweep.ConditionData(params, info, None)
        (records, path), = sweep.run_sweeps(condition, sweep.TrainedModel(None), root=tmp_path).values()
        assert json.loads(path.read_text())[0]["run_params"]["data_sha256"] == digest
        paths.append(path)
    assert paths[0] != paths[1]   # the other data's run is another file: nothing replaced
    assert paths[0].name == params.run_id(data_sha256="c" * 64) + ".json"


def test_a_search_identifies_its_records_by_the_data_hash():
    from quide.measure import mixed_precision as mp
    params = mp.SearchParams(dataset="mnist", profile="smoke", device="cpu")
    assert mp.resolved(params, "ga", 0, "e" * 64)["data_sha256"] == "e" * 64
    assert qr.named_run("x", mp.resolved(params, "ga", 0, "e" * 64)) != qr.named_run("x", mp.resolved(params, "ga", 0, "f" * 64))


# --- 17: an npz's note never labels known content and reaches HTML only as escaped text ---------

HOSTILE_NOTE = 'CIFAR-10 <b onmouseover="x">original</b>'


def test_known_content_is_labelled_by_the_project_whatever_the_note(mnist, tmp_path):
    from quide.measure import data as qd
    qd.save_npz(tmp_path / "mnist.npz", mnist.x_train[..., 0], mnist.y_train, mnist.x_test[..., 0], mnist.y_test,
                source=HOSTILE_NOTE)
    d = qd.load_dataset("mnist", root=tmp_path, download=False)
    assert d.source == "MNIST" and d.sha256 == mnist.sha256


def test_an_unknown_note_is_kept_as_plain_text_only(tmp_path):
    from quide.measure import data as qd
    from helpers import synthetic_arrays
    arrays = synthetic_arrays(n_train=40, n_test=20, shape=(32, 32, 3), num_classes=10)
    qd.save_npz(tmp_path / "cifar10.npz", **arrays, source=HOSTILE_NOTE + "\n<script>alert(1)</script>" + "x" * 200)
    source = qd.load_dataset("cifar10", root=tmp_path, download=False).source
    assert source.startswith("CIFAR-10 (unverified: CIFAR-10 original alert(1) xxx")
    assert not set("<>\n") & set(source) and len(source) <= len("CIFAR-10 (unverified: )") + qd.NOTE_CHARS


def test_book_tables_escape_cell_text():
    from quide.analysis import report
    table = pd.DataFrame({"data": [HOSTILE_NOTE, "a & b"], "orders": [["<i>"], [4, 8]], "P": [0.5, np.nan]})
    for shown in (table, table.style.format(precision=2)):
        page = report.html_table(shown, "t").data
        assert "<b" not in page and "<i>" not in page
        assert "CIFAR-10 &lt;b onmouseover=\"x\"&gt;original&lt;/b&gt;" in page and "a &amp; b" in page
    assert table["data"][0] == HOSTILE_NOTE   # the caller's frame is left as it was


def test_one_data_set_of_known_content_is_one_row_of_table1():
    """Records of known content all carry the project's label, so notes cannot split Table 1."""
    from quide.measure import data as qd
    labels = {qd._label(qd.SPECS["mnist"], qd.KNOWN_CONTENT_SHA256["mnist"], note, "x.npz", "")
              for note in ("", "torchvision download", HOSTILE_NOTE, "MNIST (stand-in)")}
    assert labels == {"MNIST"}


# --- 2: stale runs of other keys are named, and collecting refuses name clashes -----------------

def _finished_run(out: Path, key: str, bits: int, content: str) -> Path:
    """A finished run folder as the runner leaves it: run.yml and its record file."""
    folder = out / "runs" / key
    (folder / "results" / "sleepy").mkdir(parents=True)
    (folder / "run.yml").write_text(json.dumps({"experiment": "sleepy", "parameters": {"bits": bits, "seed": 0},
                                                "key": key}))
    (folder / "results" / "sleepy" / "seed0.json").write_text(content)
    return folder


def _sleepy_config(tmp_path, bits):
    (tmp_path / "c.toml").write_text('[[experiment]]\nname = "sleepy"\nnotebook = "tests/fixtures/sleepy.ipynb"\n'
                                     f'parameters = {{ bits = {bits} }}\ngrid = {{ seed = [0] }}\n')
    return tmp_path / "c.toml"


def test_the_runner_names_finished_runs_of_other_keys(tmp_path):
    from quide import reproduce as rp
    root = Path(__file__).resolve().parents[1]
    out, cfg = tmp_path / "out", _sleepy_config(tmp_path, 4)
    (run,) = rp.plan(cfg, root)
    _finished_run(out, run.key, 4, '[{"seed": 0, "bits": 4}]')
    old = _finished_run(out, "0" * 20, 8, '[{"seed": 0, "bits": 8}]')   # made by older code, say
    for dry_run in (True, False):
        said = []
        outcomes = rp.reproduce(cfg, out, root=root, log=said.append, dry_run=dry_run)
        assert [(o["status"], o["key"]) for o in outcomes] == [("skipped", run.key), ("stale", old.name)]
        assert outcomes[1]["label"] == "sleepy(bits=8, seed=0)"
        assert any(f"1 finished runs in {out / 'runs'} are not of this plan" in s and old.name in s for s in said)
    assert old.is_dir()   # named, never deleted


def test_collect_refuses_two_runs_files_of_one_name_and_never_replaces_a_file(tmp_path, capsys):
    from quide import cli
    from quide import reproduce as rp
    out, into = tmp_path / "out", tmp_path / "results"
    new = _finished_run(out, "b" * 20, 4, '[{"seed": 0, "bits": 4}]')
    old = _finished_run(out, "a" * 20, 8, '[{"seed": 0, "bits": 8}]')
    assert cli.main(["collect", str(out), "--into", str(into)]) == 2
    err = capsys.readouterr().err
    assert "refused, nothing copied: two runs hold sleepy/seed0.json with other contents" in err
    assert str(old / "results" / "sleepy" / "seed0.json") in err and str(new / "results" / "sleepy" / "seed0.json") in err
    assert not into.exists()
    shutil.rmtree(old)
    assert cli.main(["collect", str(out), "--into", str(into)]) == 0
    assert "1 files copied, 0 already there" in capsys.readouterr().out
    assert (into / "sleepy" / "seed0.json").read_text() == '[{"seed": 0, "bits": 4}]'
    assert rp.collect(out, into) == {"copied": [], "unchanged": [into / "sleepy" / "seed0.json"]}
    (into / "sleepy" / "seed0.json").write_text('[{"seed": 0, "bits": 2}]')   # the root's own record
    with pytest.raises(rp.CollectError, match=f"{into / 'sleepy' / 'seed0.json'} exists with other contents "
                                              f"than {new / 'results' / 'sleepy' / 'seed0.json'}; not replaced"):
        rp.collect(out, into)
    assert (into / "sleepy" / "seed0.json").read_text() == '[{"seed": 0, "bits": 2}]'
    with pytest.raises(rp.CollectError, match="name both folders"):
        rp.collect(out, "")
