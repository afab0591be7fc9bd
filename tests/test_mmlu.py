"""MMLU as lm-evaluation-harness scores it (quide.measure.mmlu): prompt format, the data file; its statistics (quide.analysis.mmlu_stats): intervals, samples, McNemar."""
import gzip
import json

import pytest

from quide.analysis import mmlu_stats
from quide.measure import mmlu


def test_prompt_matches_lm_eval_format():
    it = mmlu.MMLUItem("high_school_physics", " What is 2+2? ", ("3", "4", "5", "6"), 1)
    shot = mmlu.MMLUItem("high_school_physics", "1+1?", ("2", "3", "4", "5"), 0)
    assert mmlu.prompt(it) == ("The following are multiple choice questions (with answers) about high school physics.\n\n"
                              "What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:")
    assert mmlu.prompt(it, [shot]).split("\n\n")[1] == "1+1?\nA. 2\nB. 3\nC. 4\nD. 5\nAnswer: A"


def test_load_mmlu_counts_and_refuses(tmp_path):
    rows = [{"split": s, "subject": sub, "question": f"q{i}", "choices": ["a", "b", "c", "d"], "answer": "C"}
            for s in ("dev", "test") for sub in ("anatomy", "virology") for i in range(4)]
    with gzip.open(tmp_path / mmlu.MMLU_FILE, "wt") as f:
        f.write("\n".join(json.dumps(r) for r in rows))
    items = mmlu.load_mmlu("test", limit=3, root=tmp_path)
    assert len(items) == 6 and items[0].answer == 2
    assert len(mmlu.load_mmlu("dev", ["virology"], root=tmp_path)) == 4
    assert [len(v) for v in mmlu.few_shot(mmlu.load_mmlu("dev", root=tmp_path), 2).values()] == [2, 2]
    with pytest.raises(ValueError, match="unknown MMLU subjects"):
        mmlu.load_mmlu("test", ["astrology"], root=tmp_path)
    with pytest.raises(FileNotFoundError, match="MMLU not found"):
        mmlu.load_mmlu(root=tmp_path / "nowhere")


def test_the_real_mmlu_file_has_the_full_test_split():
    try:
        items = mmlu.load_mmlu("test")
    except FileNotFoundError:
        pytest.skip("MMLU not in QUIDE_DATA")
    assert len(items) == 14042 and len({i.subject for i in items}) == 57


def test_wilson_interval():
    lo, hi = mmlu_stats.wilson_interval(25, 100)
    assert lo == pytest.approx(0.1754, abs=1e-3) and hi == pytest.approx(0.3430, abs=1e-3)
    assert mmlu_stats.wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)


def test_doc_ids_are_indices_in_the_split_and_shots_come_from_the_same_subjects_dev_items(tmp_path):
    rows = [{"split": s, "subject": sub, "question": f"{s}-{sub}-{i}", "choices": ["a", "b", "c", "d"], "answer": "A"}
            for sub in ("anatomy", "virology") for s in ("dev", "test") for i in range(6)]
    with gzip.open(tmp_path / mmlu.MMLU_FILE, "wt") as f:
        f.write("\n".join(json.dumps(r) for r in rows))
    items = mmlu.load_mmlu("test", ["virology"], limit=2, root=tmp_path)
    assert [i.doc_id for i in items] == [6, 7]          # anatomy's 6 test items come first in the split
    shots = mmlu.few_shot(mmlu.load_mmlu("dev", root=tmp_path), 5)
    assert [s.question for s in shots["virology"]] == [f"dev-virology-{i}" for i in range(5)]
    text = mmlu.prompt(items[0], shots[items[0].subject])
    assert text.count("Answer:") == 6 and "anatomy" not in text and "dev-virology-5" not in text


def _samples(correct, start=0):
    return [{"doc_id": start + i, "subject": "anatomy", "loglik": [-1.0, -2.0, -3.0, -4.0], "pred": 0,
             "gold": 0 if ok else 1, "correct": ok} for i, ok in enumerate(correct)]


@pytest.mark.parametrize("a, b, counts, p", [
    ([True] * 6, [False] * 6, (6, 0), 0.03125),                # all 6 discordant one way: 2 / 2**6
    ([False] * 6 + [True] * 4, [True] * 6 + [True] * 4, (0, 6), 0.03125),
    ([True, False] * 4, [False, True] * 4, (4, 4), 1.0),       # b = c
    ([True] + [False] * 9, [False] + [True] * 9, (1, 9), 22 / 1024),   # 2 (1 + 10) / 2**10
    ([True, False], [True, False], (0, 0), 1.0),               # no discordant pair
])
def test_mcnemar_exact(a, b, counts, p):
    out = mmlu_stats.mcnemar(_samples(a), _samples(b))
    assert (out["b"], out["c"]) == counts and out["p_value"] == pytest.approx(p, rel=1e-12)
    assert out["n_questions"] == len(a) and out["acc_a"] == sum(a) / len(a)


def test_mcnemar_pairs_by_doc_id_and_refuses_other_questions():
    a, b = _samples([True, False, False]), _samples([True, False, False])
    b[0]["correct"], b[2]["correct"] = False, True
    assert mmlu_stats.mcnemar(a, b[::-1])["b"] == 1 and mmlu_stats.mcnemar(a, b[::-1])["c"] == 1   # order does not matter
    with pytest.raises(ValueError, match="other"):
        mmlu_stats.mcnemar(a, _samples([True, False, False], start=1))
    with pytest.raises(ValueError, match="twice"):
        mmlu_stats.mcnemar(a + a[:1], b)


def test_samples_round_trip_same_bytes_and_no_half_file(tmp_path):
    rows = _samples([True, False, True])
    path = tmp_path / "samples_x-4bit.jsonl.gz"
    digest = mmlu_stats.write_samples(path, rows)
    assert mmlu_stats.read_samples(path) == rows and digest == mmlu_stats.file_sha256(path)
    assert mmlu_stats.write_samples(tmp_path / "again.jsonl.gz", rows) == digest    # no name or time in the gzip header
    with pytest.raises(TypeError):                     # interrupted while writing: the old file stays whole
        mmlu_stats.write_samples(path, rows + [{"doc_id": object()}])
    assert mmlu_stats.read_samples(path) == rows and sorted(p.name for p in tmp_path.iterdir()) == ["again.jsonl.gz", path.name]
