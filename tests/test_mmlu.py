"""MMLU as lm-evaluation-harness scores it (quide.measure.mmlu): prompt format, the data file; its statistics (quide.analysis.mmlu_stats): intervals, samples, McNemar."""
import gzip
import json

import pandas as pd
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


# --- cloze scoring (lm-eval's mmlu_continuation), on a hand-made bigram LM (issue 43) ---------

def test_cloze_prompt_matches_lm_evals_mmlu_continuation():
    it = mmlu.MMLUItem("high_school_physics", " What is 2+2? ", ("3", "4", "5", "6"), 1)
    shot = mmlu.MMLUItem("high_school_physics", "1+1?", ("2", "3", "4", "5"), 0)
    assert mmlu.cloze_prompt(it) == "The following are questions (with answers) about high school physics.\n\nQuestion: What is 2+2?\nAnswer:"
    assert mmlu.cloze_prompt(it, [shot]).split("\n\n")[1] == "Question: 1+1?\nAnswer: 2"


class CharTokenizer:
    """One token per character (ids from 1; 0 pads), so every continuation's tokens are its characters."""
    pad_token_id = 0

    def __init__(self, alphabet):
        self.ids = {c: i + 1 for i, c in enumerate(sorted(set(alphabet)))}

    def __call__(self, texts):
        from types import SimpleNamespace
        return SimpleNamespace(input_ids=[[self.ids[c] for c in t] for t in texts])


def bigram_lm(vocab: int, boosts: dict):
    """A causal LM whose next-token logits depend on the current token only: a vocab x vocab table,
    0 but for ``boosts`` {(token, next token): logit}."""
    import torch
    from types import SimpleNamespace

    class Bigram(torch.nn.Module):
        config = SimpleNamespace(max_position_embeddings=512)

        def __init__(self):
            super().__init__()
            self.table = torch.nn.Embedding(vocab, vocab)
            torch.nn.init.zeros_(self.table.weight)
            for (a, b), logit in boosts.items():
                self.table.weight.data[a, b] = logit

        def forward(self, input_ids, attention_mask=None):
            return SimpleNamespace(logits=self.table(input_ids))
    return Bigram().eval()


def test_cloze_scores_each_answers_text_summed_and_per_character():
    """Known answers: after " " the model strongly expects "g"; inside "abcefhijkm" each next letter.
    So "gold" wins both ways; "gx" wins the summed log-likelihood but "abcefhijkm" the per-character
    one (lm-eval's acc_norm), and the scores are the hand-computed sums over each answer's characters."""
    import torch
    items = [mmlu.MMLUItem("anatomy", "Which metal?", ("gold", "silver", "iron", "lead"), 0, doc_id=0),
             mmlu.MMLUItem("anatomy", "Which string?", ("gx", "abcefhijkm", "zz", "qq"), 1, doc_id=1),
             mmlu.MMLUItem("virology", "Which one?", ("qq", "zz", "gold", "lead"), 2, doc_id=2)]
    shots = {"anatomy": [mmlu.MMLUItem("anatomy", "Which first?", ("qq", "gx", "zz", "lead"), 1)]}
    texts = [mmlu.cloze_prompt(it, shots.get(it.subject, [])) + " " + c for it in items for c in it.choices]
    tok = CharTokenizer("".join(texts))
    t = tok.ids
    boosts = {(t[" "], t["g"]): 8.0, **{(t[a], t[b]): 6.0 for a, b in zip("abcefhijk", "bcefhijkm")}}
    model = bigram_lm(len(t) + 1, boosts)
    encoded = mmlu.encode(tok, items, shots, 512, scoring="cloze")
    assert [kind for kind, _, _ in encoded] == ["each"] * 3
    assert [n for n in encoded[1][2]] == [3, 11, 3, 3]   # " gx", " abcefhijkm", ...: the space and the text
    scored = mmlu.score_cloze(model, tok, items, shots, batch_size=3, encoded=encoded)

    logp = torch.log_softmax(model.table.weight.detach(), -1)
    for it, row in zip(items, scored.itertuples()):
        context = mmlu.cloze_prompt(it, shots.get(it.subject, []))
        want = [sum(float(logp[t[p], t[n]]) for p, n in zip((context + " " + c)[len(context) - 1:-1], " " + c))
                for c in it.choices]
        assert row.loglik == pytest.approx(want, abs=1e-5)
        assert row.choice_chars == [len(c) for c in it.choices]
    assert scored["pred"].tolist() == [0, 0, 2] and scored["pred_norm"].tolist() == [0, 1, 2]
    assert scored["correct"].tolist() == [True, False, True] and scored["correct_norm"].tolist() == [True, True, True]
    rows = mmlu_stats.sample_rows(scored)
    assert rows[1]["choice_chars"] == [2, 10, 2, 2] and rows[1]["pred_norm"] == 1 and rows[1]["correct_norm"] is True
    with pytest.raises(ValueError, match="scoring"):
        mmlu.encode(tok, items, shots, 512, scoring="letters")


def test_normalised_predictions_are_lm_evals_acc_norm():
    assert mmlu_stats.normalised_predictions([[-2.0, -3.0], [-1.0, -9.0]], [[1, 10], [1, 1]]).tolist() == [1, 0]
    with pytest.raises(ValueError, match="lengths"):
        mmlu_stats.normalised_predictions([[-2.0, -3.0]], [[1, 0]])


# --- what the answers are: letter shares and shifts read through them (issue 43) --------------

def _answers(preds, golds, start=0):
    return [{"doc_id": start + i, "subject": "anatomy", "pred": p, "gold": g, "correct": p == g}
            for i, (p, g) in enumerate(zip(preds, golds))]


GOLD = [0] * 200 + [1] * 250 + [2] * 250 + [3] * 300     # unbalanced, as MMLU's test split


def test_letter_shares_and_the_letter_only_guesser():
    always_a = _answers([0] * 1000, GOLD)
    assert mmlu_stats.choice_shares(always_a).tolist() == [1, 0, 0, 0]
    assert mmlu_stats.choice_shares(always_a, "gold").tolist() == [0.2, 0.25, 0.25, 0.3]
    assert mmlu_stats.letter_only_accuracy([0.5, 0, 0.5, 0], [0.2, 0.25, 0.25, 0.3]) == pytest.approx(0.225)
    assert mmlu_stats.majority_rate(always_a) == 0.3
    with pytest.raises(ValueError, match="choice index"):
        mmlu_stats.choice_shares(_answers([4], [0]))


def test_an_accuracy_from_letter_bias_alone_is_not_beyond_it_and_knowledge_is():
    always_a = mmlu_stats.beyond_letter_bias(_answers([0] * 1000, GOLD), n_resamples=999)
    assert always_a["P"] == 0.2 and always_a["P_letter_only"] == pytest.approx(0.2)
    assert always_a["excess"] == pytest.approx(0) and always_a["p_value"] == 1.0   # every re-pairing gives 0.2
    knows = mmlu_stats.beyond_letter_bias(_answers(GOLD, GOLD), n_resamples=999)
    assert knows["P"] == 1.0 and knows["P_letter_only"] == pytest.approx(0.255) and knows["p_value"] <= 0.002


def test_a_shift_of_letter_bias_is_read_as_one():
    """From always "A" to always "D": McNemar calls the 10-point gain significant, but the letter
    shares give all of it (re-pairing cannot change it); a shift to the right answers is knowledge."""
    a, d = _answers([0] * 1000, GOLD), _answers([3] * 1000, GOLD)
    assert mmlu_stats.mcnemar(a, d)["p_value"] < 0.05
    shift = mmlu_stats.shift_beyond_letter_bias(a, d, n_resamples=999)
    assert shift["dP"] == pytest.approx(0.1) and shift["dP_letter_only"] == pytest.approx(0.1)
    assert shift["excess"] == pytest.approx(0) and shift["p_value"] == 1.0
    assert shift["b_by_gold"] == [200, 0, 0, 0] and shift["c_by_gold"] == [0, 0, 0, 300]
    learns = mmlu_stats.shift_beyond_letter_bias(a, _answers(GOLD, GOLD), n_resamples=999)
    assert learns["dP"] == pytest.approx(0.8) and learns["excess"] == pytest.approx(0.8 - (0.255 - 0.2))
    assert learns["p_value"] <= 0.002 and learns["c_by_gold"] == [0, 250, 250, 300]
    with pytest.raises(ValueError, match="other gold"):
        mmlu_stats.shift_beyond_letter_bias(a, _answers([0] * 1000, GOLD[::-1]))
    with pytest.raises(ValueError, match="other ones"):
        mmlu_stats.shift_beyond_letter_bias(a, _answers([0] * 1000, GOLD, start=1))


def test_compression_relative_to_the_model_as_loaded():
    formats = pd.DataFrame({"role": ["linear", "linear", "embedding"], "weights": [300, 100, 50],
                            "bits_per_weight": [5.0, 8.5, 8.5]})
    assert mmlu_stats.source_bits_per_weight(formats) == pytest.approx((300 * 5 + 100 * 8.5) / 400)
    with pytest.raises(ValueError, match="no weights"):
        mmlu_stats.source_bits_per_weight(formats, "norm")
    c = mmlu_stats.compression_vs_loaded([16, 8, 5, 4, 2], 5.0)
    assert c.tolist() == pytest.approx([1, 1, 1, 1.25, 2.5])
    assert mmlu_stats.compression_vs_loaded(2, 5.0) == 2.5
    with pytest.raises(ValueError, match="bits"):
        mmlu_stats.compression_vs_loaded(0, 5.0)


def test_a_too_long_prompt_keeps_lm_evals_last_max_length_tokens_as_input():
    """lm-eval keeps the last max_length + 1 tokens of context + answer and feeds all but the last:
    the model sees max_length tokens, never more, and each answer is still scored whole."""
    import torch
    item = mmlu.MMLUItem("anatomy", "A rather long question?", ("gold", "silver", "iron", "lead"), 0, doc_id=0)
    tok = CharTokenizer(mmlu.cloze_prompt(item) + " " + "".join(item.choices))
    model = bigram_lm(len(tok.ids) + 1, {(tok.ids[" "], tok.ids["g"]): 8.0})
    widths = []
    forward = model.forward
    model.forward = lambda input_ids, attention_mask=None: widths.append(input_ids.shape[1]) or forward(input_ids, attention_mask)
    encoded = mmlu.encode(tok, [item], None, max_length=12, scoring="cloze")
    assert [len(seq) for seq in encoded[0][1]] == [13] * 4
    scored = mmlu.score_cloze(model, tok, [item], batch_size=4, encoded=encoded)
    assert widths == [12]
    logp = torch.log_softmax(model.table.weight.detach(), -1)
    context = mmlu.cloze_prompt(item)
    want = [sum(float(logp[tok.ids[p], tok.ids[n]]) for p, n in zip((context + " " + c)[len(context) - 1:-1], " " + c))
            for c in item.choices]
    assert scored["loglik"].iloc[0] == pytest.approx(want, abs=1e-5)


def test_answer_letters_tabulates_shares_and_the_letter_only_reading():
    table = mmlu_stats.answer_letters({(0, 16): _answers([0] * 1000, GOLD), (0, 2): _answers(GOLD, GOLD)}, n_resamples=99)
    assert table["config"].tolist() == [(0, 16), (0, 2)]
    assert table[list("ABCD")].to_numpy().tolist() == [[1, 0, 0, 0], [0.2, 0.25, 0.25, 0.3]]
    assert table["P"].tolist() == [0.2, 1.0] and table["P_letter_only"].tolist() == pytest.approx([0.2, 0.255])
