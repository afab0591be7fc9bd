"""MMLU as lm-evaluation-harness scores it (quide.mmlu): prompt format, the data file, intervals."""
import gzip
import json

import pytest

from quide import mmlu


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
    lo, hi = mmlu.wilson_interval(25, 100)
    assert lo == pytest.approx(0.1754, abs=1e-3) and hi == pytest.approx(0.3430, abs=1e-3)
    assert mmlu.wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
