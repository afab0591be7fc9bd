"""`quide verify`: the committed records check out; a tampered copy is caught, naming file and key."""
import json
import shutil
from pathlib import Path

from quide import cli
from quide.verify import verify

COMMITTED = Path(__file__).resolve().parents[1] / "data" / "results"


def test_committed_records_verify(capsys):
    assert cli.main(["verify", "--root", str(COMMITTED)]) == 0
    assert "0 problems" in capsys.readouterr().out


def test_tampered_records_are_caught(tmp_path):
    root = tmp_path / "results"
    shutil.copytree(COMMITTED, root)
    sweep = root / "ptq_sweep" / "simplecnn-mnist-seed0-graph-paper.json"
    recs = json.loads(sweep.read_text())
    recs[2]["I_gated"] *= 1.01                       # a derived number edited by hand
    sweep.write_text(json.dumps(recs))
    search = root / "mixed_precision" / "simplecnn-cifar10-seed0-ga-s42-paper.json"
    recs = json.loads(search.read_text())
    recs[0]["rank_of_n"] = [1, 256]                  # a better rank than the exhaustive pass gives
    search.write_text(json.dumps(recs))
    n, problems = verify(root)
    assert n > 600 and len(problems) == 2
    assert any("simplecnn-mnist-seed0-graph-paper.json [2]: I_gated" in p for p in problems)
    assert any("ga-s42-paper.json: rank_of_n [1, 256]" in p for p in problems)


def test_missing_folder_is_refused(tmp_path, capsys):
    assert cli.main(["verify", "--root", str(tmp_path / "nowhere")]) == 2
    assert "no results folder" in capsys.readouterr().err


def test_deployed_index_is_checked():
    from quide.results import make_record
    from quide.verify import check_record
    rec = make_record(experiment="x", model="m", dataset="d", data_source="d", seed=0, bits=8, P=0.9, T_ms=2.0,
                      T_kind="simulated", C_paper=4.0, C_true=4.0, num_classes=10, p_fp=0.9, delta=0.1,
                      provenance={}, T_deployed_ms=1.0, T_deployed_reason=None)
    assert check_record(rec) == [] and rec["I_deployed"] > rec["I"]   # a faster T, a larger I
    assert check_record({**rec, "I_gated_deployed": rec["I_gated_deployed"] * 1.01})[0].startswith("I_gated_deployed")
    none = make_record(**{**{k: rec[k] for k in ("experiment", "model", "dataset", "data_source", "seed", "bits", "P",
                                                  "T_ms", "T_kind", "C_paper", "C_true", "num_classes", "p_fp",
                                                  "delta", "provenance")}, "T_deployed_ms": None,
                          "T_deployed_reason": "no kernel"})
    assert none["I_deployed"] is None and check_record(none) == []
    assert check_record({**none, "T_deployed_reason": None})   # None needs a reason
