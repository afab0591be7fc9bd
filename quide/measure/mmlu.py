"""MMLU as lm-evaluation-harness scores it: data, prompts, log-likelihood scoring, accuracy with
its interval. The model side (quantization, latency, the case study) is in :mod:`quide.measure.llm`.

- MMLU: the 57-subject test split (14,042 questions) and its dev split for few-shot examples, from
  ``<QUIDE_DATA>/mmlu_dev_test.jsonl.gz``. Prompts follow lm-evaluation-harness's ``mmlu`` task:
  "The following are multiple choice questions (with answers) about <subject>.", each question with
  "A. ..." to "D. ..." and "Answer:", few-shot examples the first ``n_shot`` dev items of the same
  subject, each followed by " <letter>" and a blank line. A question is answered by the letter whose
  continuation (" A" ... " D") has the highest log-likelihood (lm-eval's ``acc``).
- Cloze scoring (:func:`score_cloze`) follows lm-evaluation-harness's ``mmlu_continuation`` task:
  "The following are questions (with answers) about <subject>.", then ``"Question: ...\\nAnswer:"``
  without the lettered options, few-shot examples answered by their answer's text; each answer's
  text (" " + choice) is scored by its summed log-likelihood after the prompt (lm-eval's ``acc``)
  and by that sum over its length in characters (``acc_norm``). A model that knows nothing of the
  letters' meaning can still separate from chance this way if it knows the answers.
- P is the **micro** average (fraction of all questions right, lm-eval's aggregate over the
  subtasks); the macro average (mean over subjects) is recorded beside it. The 95% interval is
  Wilson's, over questions.
- Per-question samples (as lm-eval's ``--log_samples``): one JSON line per question, ``doc_id`` (its
  index in the test split), subject, the four log-likelihoods, prediction, gold and whether it was
  right, gzipped and written atomically.

Accuracy with its interval, the sample files and McNemar's test read no model: they are in
:mod:`quide.analysis.mmlu_stats`.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..analysis.mmlu_stats import normalised_predictions
from ..config import atomic_path, data_root
from ..hostlock import gpu_work

MMLU_FILE = "mmlu_dev_test.jsonl.gz"
LETTERS = "ABCD"


@dataclass(frozen=True)
class MMLUItem:
    subject: str
    question: str
    choices: tuple
    answer: int      # index of the right choice, 0..3
    doc_id: int = -1   # index in its split (file order), whatever subjects and limit were chosen


def load_mmlu(split: str = "test", subjects=None, limit: int | None = None, root=None) -> list[MMLUItem]:
    """MMLU items of ``split`` ("test" or "dev"), optionally only some subjects and at most
    ``limit`` per subject (in file order), from ``<root or QUIDE_DATA>/mmlu_dev_test.jsonl.gz``."""
    if split not in ("test", "dev"):
        raise ValueError(f"split must be 'test' or 'dev'; got {split!r}")
    path = Path(root or data_root()) / MMLU_FILE
    if not path.is_file():
        raise FileNotFoundError(f"MMLU not found at {path} (set QUIDE_DATA; shared/data has {MMLU_FILE})")
    wanted = set(subjects) if subjects else None
    items, per_subject, doc_id = [], {}, -1
    with gzip.open(path, "rt") as f:
        for line in f:
            row = json.loads(line)
            if row["split"] != split:
                continue
            doc_id += 1
            if wanted and row["subject"] not in wanted:
                continue
            n = per_subject.get(row["subject"], 0)
            if limit is not None and n >= limit:
                continue
            per_subject[row["subject"]] = n + 1
            items.append(MMLUItem(row["subject"], row["question"], tuple(row["choices"]),
                                  LETTERS.index(row["answer"]), doc_id))
    if wanted and (missing := wanted - set(per_subject)):
        raise ValueError(f"unknown MMLU subjects {sorted(missing)}")
    return items


SCORINGS = ("letter", "cloze")


def _example(item: MMLUItem, with_answer: bool) -> str:
    text = item.question.strip() + "".join(f"\n{L}. {c}" for L, c in zip(LETTERS, item.choices)) + "\nAnswer:"
    return text + (f" {LETTERS[item.answer]}" if with_answer else "")


def prompt(item: MMLUItem, shots=()) -> str:
    """lm-evaluation-harness's MMLU prompt for ``item`` with the given few-shot examples."""
    head = f"The following are multiple choice questions (with answers) about {item.subject.replace('_', ' ')}.\n\n"
    return head + "".join(_example(s, True) + "\n\n" for s in shots) + _example(item, False)


def cloze_prompt(item: MMLUItem, shots=()) -> str:
    """lm-evaluation-harness's ``mmlu_continuation`` prompt for ``item``: the question without its
    lettered options, each few-shot example followed by its answer's text."""
    head = f"The following are questions (with answers) about {item.subject.replace('_', ' ')}.\n\n"
    question = lambda it: f"Question: {it.question.strip()}\nAnswer:"
    return head + "".join(f"{question(s)} {s.choices[s.answer]}\n\n" for s in shots) + question(item)


def few_shot(dev: list[MMLUItem], n_shot: int) -> dict:
    """The first ``n_shot`` dev items of each subject."""
    out = {}
    for it in dev:
        out.setdefault(it.subject, [])
        if len(out[it.subject]) < n_shot:
            out[it.subject].append(it)
    return out


def encode(tokenizer, items, shots: dict | None = None, max_length: int = 2048, scoring: str = "letter") -> list:
    """Token sequences to score, per item, as lm-eval splits them: context+continuation encoded
    whole, the continuation being what follows the context's own encoding. The continuations are
    " A" ... " D" after :func:`prompt` (``scoring="letter"``) or " " + each answer's text after
    :func:`cloze_prompt` (``"cloze"``). Each entry is ("last", [context tokens], [4 tokens]) when
    every continuation is one token after the same context (one forward scores all four), else
    ("each", [4 token lists], [4 continuation lengths]). Too long a sequence keeps its last
    ``max_length`` tokens as the model's input, as lm-eval does (an "each" list holds one token
    more, the last, which is only predicted). Independent of the weights, so a sweep over
    bit-widths encodes once."""
    if scoring not in SCORINGS:
        raise ValueError(f"scoring must be one of {SCORINGS}; got {scoring!r}")
    make = prompt if scoring == "letter" else cloze_prompt
    contexts = [make(it, (shots or {}).get(it.subject, [])) for it in items]
    answers = [[f" {L}" for L in LETTERS] if scoring == "letter" else [f" {c}" for c in it.choices] for it in items]
    if any(len(a) != len(LETTERS) for a in answers):
        raise ValueError(f"encode: every item needs {len(LETTERS)} choices")
    ctx_ids = tokenizer(contexts).input_ids
    whole = [tokenizer([c + a[k] for c, a in zip(contexts, answers)]).input_ids for k in range(len(LETTERS))]
    encoded = []
    for i, ctx in enumerate(ctx_ids):
        conts = [w[i][len(ctx):] for w in whole]
        same_context = all(w[i][:len(ctx)] == ctx for w in whole)
        if same_context and all(len(c) == 1 for c in conts):
            encoded.append(("last", ctx[-max_length:], [c[0] for c in conts]))
        else:
            # lm-eval keeps max_length + 1 tokens and feeds all but the last (it is only predicted)
            encoded.append(("each", [(w[i])[-(max_length + 1):] for w in whole], [len(c) for c in conts]))
    return encoded


@torch.inference_mode()
def score(model, tokenizer, items, shots: dict | None = None, batch_size: int = 8, encoded: list | None = None) -> pd.DataFrame:
    """Log-likelihood of " A" ... " D" after each item's prompt (see :func:`encode`); one row per
    item with the prediction."""
    device = next(model.parameters()).device
    if encoded is None:
        encoded = encode(tokenizer, items, shots, getattr(model.config, "max_position_embeddings", 2048))
    # (item, choice slot, tokens); "last" items have one sequence for all four choices
    flat = [(i, k, seq) for i, (kind, seqs, _) in enumerate(encoded)
            for k, seq in enumerate([seqs] if kind == "last" else seqs)]
    order = sorted(range(len(flat)), key=lambda j: -len(flat[j][2]))   # similar lengths batch together
    results = {i: [None] * (1 if encoded[i][0] == "last" else 4) for i in range(len(items))}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        # an "each" sequence's last token is only predicted, never fed (see encode)
        inputs = [flat[j][2] if encoded[flat[j][0]][0] == "last" else flat[j][2][:-1] for j in chunk]
        width = max(len(x) for x in inputs)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        # only the positions that predict a letter or continuation token are normalised (a few
        # of a 5-shot prompt's ~600), and their log-probabilities leave the GPU in one copy
        rows, positions, picks, tokens = [], [], [], []
        for r, j in enumerate(chunk):
            i, k, seq = flat[j]
            ids[r, :len(inputs[r])] = torch.tensor(inputs[r])
            mask[r, :len(inputs[r])] = 1
            kind, _, info = encoded[i]
            wanted = ([(len(seq) - 1, info)] if kind == "last" else
                      [(p, [seq[p + 1]]) for p in range(len(seq) - info[k] - 1, len(seq) - 1)])
            for p, toks in wanted:
                picks += [len(rows)] * len(toks)
                tokens += toks
                rows.append(r)
                positions.append(p)
        with gpu_work():   # one batch at a time, so another run's timing waits at most one batch
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            logp = torch.log_softmax(logits[torch.tensor(rows, device=device), torch.tensor(positions, device=device)].float(), -1)
            values = logp[torch.tensor(picks, device=device), torch.tensor(tokens, device=device)].tolist()
        at = 0
        for j in chunk:
            i, k, seq = flat[j]
            kind, _, info = encoded[i]
            n = 4 if kind == "last" else info[k]
            results[i][0 if kind == "last" else k] = values[at:at + n] if kind == "last" else float(sum(values[at:at + n]))
            at += n
    rows = []
    for i, it in enumerate(items):
        ll = results[i][0] if encoded[i][0] == "last" else results[i]
        pred = int(np.argmax(ll))
        rows.append({"doc_id": it.doc_id, "subject": it.subject, "answer": it.answer, "pred": pred,
                     "correct": pred == it.answer, "loglik": ll})
    return pd.DataFrame(rows)


def score_cloze(model, tokenizer, items, shots: dict | None = None, batch_size: int = 8,
                encoded: list | None = None) -> pd.DataFrame:
    """Cloze scoring (lm-eval's ``mmlu_continuation``): :func:`score`'s rows for the answers' texts
    after :func:`cloze_prompt` (``encoded`` from ``encode(..., scoring="cloze")``, or made here),
    with each answer's length in characters (``choice_chars``) and the length-normalised
    prediction (``pred_norm``, ``correct_norm``: lm-eval's ``acc_norm``) beside the summed one
    (``pred``, ``correct``: ``acc``)."""
    if encoded is None:
        encoded = encode(tokenizer, items, shots, getattr(model.config, "max_position_embeddings", 2048), "cloze")
    scored = score(model, tokenizer, items, batch_size=batch_size, encoded=encoded)
    chars = [[len(c) for c in it.choices] for it in items]
    scored["choice_chars"] = chars
    scored["pred_norm"] = normalised_predictions(np.stack(scored["loglik"].to_list()), chars)
    scored["correct_norm"] = scored["pred_norm"] == scored["answer"]
    return scored
