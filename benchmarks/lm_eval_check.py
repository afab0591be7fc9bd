"""Cross-check of quide's MMLU scorer against lm-evaluation-harness on the same model and questions.

Runs lm-eval's `mmlu` prompt (its default template: description, "A. ..", "Answer:", first-n dev
shots, `acc` over the log-likelihood of " A".." D") as local tasks built from the MMLU file in
QUIDE_DATA, and `quide.measure.mmlu.score` on the same items; prints both accuracies, how many predictions
agree and the largest log-likelihood difference. With `--scoring cloze`, lm-eval's
`mmlu_continuation` layout instead ("Question: ..", "Answer:", each answer's text scored, `acc` and
`acc_norm`) against `quide.measure.mmlu.score_cloze`. lm-eval is not a dependency of the project: run it
from an environment that has lm-eval, torch and transformers, with the repository on PYTHONPATH::

    PYTHONPATH=. QUIDE_DATA=/tmp/quide-data python benchmarks/lm_eval_check.py \\
        --model DIR --gguf-file SmolLM2-135M-Instruct.Q4_1.gguf --subjects marketing anatomy --limit 20
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np


# lm-eval's two MMLU layouts: `mmlu` (lettered options, the letter scored) and `mmlu_continuation`
LAYOUTS = {
    "letter": {"description": "The following are multiple choice questions (with answers) about {}.\n\n",
               "doc_to_text": "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:",
               "doc_to_choice": ["A", "B", "C", "D"], "metrics": ["acc"]},
    "cloze": {"description": "The following are questions (with answers) about {}.\n\n",
              "doc_to_text": "Question: {{question.strip()}}\nAnswer:", "doc_to_choice": "{{choices}}",
              "metrics": ["acc", "acc_norm"]},
}


def write_tasks(folder: Path, subjects, items_by_split, scoring: str = "letter") -> list[str]:
    """Local copies of the chosen subjects and one lm-eval task per subject, in the layout of
    lm-eval's own `mmlu_<subject>` (or, for cloze, `mmlu_continuation_<subject>`) tasks but
    reading JSON files."""
    layout = LAYOUTS[scoring]
    names = []
    for subject in subjects:
        for split, items in items_by_split.items():
            rows = [{"question": it.question, "choices": list(it.choices), "answer": it.answer}
                    for it in items if it.subject == subject]
            (folder / f"{subject}_{split}.json").write_text("\n".join(json.dumps(r) for r in rows))
        name = f"quide_mmlu_{subject}"
        desc = layout["description"].format(subject.replace('_', ' '))
        (folder / f"{name}.yaml").write_text(json.dumps({
            "task": name, "dataset_path": "json",
            "dataset_kwargs": {"data_files": {"test": str(folder / f"{subject}_test.json"),
                                              "dev": str(folder / f"{subject}_dev.json")}},
            "test_split": "test", "fewshot_split": "dev", "fewshot_config": {"sampler": "first_n"},
            "output_type": "multiple_choice", "description": desc,
            "doc_to_text": layout["doc_to_text"], "doc_to_choice": layout["doc_to_choice"], "doc_to_target": "answer",
            "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in layout["metrics"]],
        }, indent=1))
        names.append(name)
    return names


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--gguf-file", default=None)
    ap.add_argument("--subjects", nargs="+", required=True)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--n-shot", type=int, nargs="+", default=[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--scoring", choices=sorted(LAYOUTS), default="letter")
    args = ap.parse_args()

    import lm_eval
    from lm_eval.tasks import TaskManager

    from quide.measure import llm, mmlu
    test = mmlu.load_mmlu("test", args.subjects, args.limit)
    dev = mmlu.load_mmlu("dev", args.subjects)
    params = llm.LLMParams(model=args.model, gguf_file=args.gguf_file, subjects=args.subjects, limit=args.limit,
                           dtype="float32", device=args.device)
    model, tokenizer = llm.load_model(params)
    model_args = f"pretrained={args.model},dtype=float32" + (f",gguf_file={args.gguf_file}" if args.gguf_file else "")
    print(f"model {args.model} {args.gguf_file or ''} | {len(test)} questions, subjects {args.subjects} | "
          f"lm-eval {lm_eval.__version__}")
    worst = 0
    with tempfile.TemporaryDirectory() as tmp:
        tasks = write_tasks(Path(tmp), args.subjects, {"test": test, "dev": dev}, args.scoring)
        for n_shot in args.n_shot:
            out = lm_eval.simple_evaluate(model="hf", model_args=model_args, tasks=tasks, num_fewshot=n_shot,
                                          device=args.device, batch_size=8, log_samples=True,
                                          task_manager=TaskManager(include_path=tmp), limit=args.limit)
            theirs = {}
            for task, samples in out["samples"].items():
                subject = task.removeprefix("quide_mmlu_")
                for s in samples:
                    ll = [r[0] for r in s["filtered_resps"]]
                    theirs[(subject, s["doc_id"])] = (int(np.argmax(ll)), ll, s["acc"], s.get("acc_norm"))
            shots = mmlu.few_shot(dev, n_shot) if n_shot else None
            ours = (mmlu.score_cloze if args.scoring == "cloze" else mmlu.score)(model, tokenizer, test, shots)
            ours["doc_id"] = ours.groupby("subject").cumcount()
            agree, diffs, acc_theirs, norm_theirs = 0, [], [], []
            for _, row in ours.iterrows():
                pred, ll, acc, acc_norm = theirs[(row["subject"], row["doc_id"])]
                agree += int(pred == row["pred"])
                diffs.append(float(np.max(np.abs(np.array(ll) - np.array(row["loglik"])))))
                acc_theirs.append(acc)
                norm_theirs.append(acc_norm)
            worst = max(worst, max(diffs))
            norm = (f" | acc_norm quide {ours['correct_norm'].mean():.4f} | lm-eval {np.mean(norm_theirs):.4f}"
                    if args.scoring == "cloze" else "")
            print(f"{n_shot}-shot {args.scoring}: accuracy quide {ours['correct'].mean():.4f} | lm-eval {np.mean(acc_theirs):.4f}"
                  f"{norm} | same prediction {agree}/{len(ours)} | max |log-likelihood difference| {max(diffs):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
