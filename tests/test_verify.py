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
