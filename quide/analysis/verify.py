"""``quide verify``: recompute every derived number of the committed records from their raw P, T
and C, and check it against what the record says.

Per file: a regular file of UTF-8 JSON holding a non-empty list of records (a dict, null, ``[]``,
bytes that are not text, JSON nested too deeply, a FIFO or a folder are each a listed problem, never a
crash or a hang; so is any error a check did not foresee, naming the file). Per record: the keys
and types its kind's schema declares (:mod:`quide.analysis.schema`: every required key, no
undeclared one, numbers finite); then the values (P, P_FP and Pthresh in [0, 1], T > 0,
T_deployed_ms None or > 0, C > 0, K >= 2, bits each in 2..16 or 32, C_paper = 32/mean(bits)); an
EXP-3 search record's bits are a list and its rank_of_n is [rank, n]; Pthresh from (K, P_FP, delta) unless the record fixed it
(delta None), then I, I',
ACP and ALS (and I, I' under T_deployed_ms where a record has one, a reason where it has none); a
known T_kind; the timer's fields (T_method, a 95% CI T_ci_ms that holds T_ms, a reason for a
fallback, T_host_ms beside batch timings); ``run_params_sha256`` is the sha256 of ``run_params`` and ends the file name.
An LLM record's per-question samples (``samples_file`` beside it, made by the current code: one with
T_method must name one) exist, have the record's ``samples_sha256``, and give its P (micro
accuracy) and n_questions again; each sample's ``correct`` is ``pred == gold``. A cloze record's
samples also give its P_norm again, each one's ``pred_norm`` is the per-character argmax of its
log-likelihoods (lm-eval's ``acc_norm``) and ``correct_norm`` is ``pred_norm == gold``.
An image classifier's record that names its per-sample predictions (``predictions_file`` beside
it, :mod:`quide.analysis.predictions`): the file exists, has the record's ``predictions_sha256``,
holds the array ``predictions_key`` of as many classes as its labels (``n_test`` of them), every
class in 0..K-1, and P is recomputed from it as mean(predicted == labels) and must equal the
record's exactly: P was computed by the same function from the same arrays and a JSON float reads
back as the float written, so any difference (the least a changed prediction makes is 1/n_test)
means other predictions. Records without predictions or samples (made before they were kept) are
counted, not a problem: their P is not recomputable.
Across records: P_FP equals the P of the run's 32-bit record (the same file; for EXP-3 the run's
FP32 reference file); no two files hold the same records or the same run identity; each EXP-3
exhaustive pass holds every configuration once, and each search record's rank among them is
recomputed under its fitness; no two files hold sweep records of one condition (and profile) made
with different run parameters apart from the seed (Table 1 refuses to pool them: a variant run
belongs in another results root). Records of older schema (without ``run_params``) are accepted.
The book's tables are checked in CI by nbval against their committed outputs.
"""
from __future__ import annotations

import json
import math
import sys
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import index as qi
from ..config import results_root
from . import predictions as qp
from .mmlu_stats import file_sha256, normalised_predictions, read_samples
from . import schema
from .protocol import SUPPORTED_BITS
from .results import canonical_json, differing_params, params_sha256, read_json_bytes, record_files, record_stem, run_variant
from .search import gated_fitness

REL_TOL = 1e-9


def _close(a, b) -> bool:
    return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=1e-12)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    """A finite int or float, not a bool (an int too large for a float is not finite)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _bits_list(bits) -> list | None:
    """The record's bit-widths as a list, or None when they are not valid bit-widths."""
    values = bits if isinstance(bits, list) else [bits]
    ok = values and all(_is_int(b) and b in SUPPORTED_BITS for b in values)
    return values if ok else None


def _timing_problems(rec: dict) -> list[str]:
    """The latency fields of the timer (quide.measure.latency): a known T_method, a 95% CI that holds T_ms,
    a reason wherever the CUDA-graph timer fell back, and the paper's host-protocol figure beside
    every batch timing. Records made before the timer (no T_method) have none of these; records
    with a run identity (``run_params``) must have them."""
    if "T_method" not in rec:
        return ["run_params given but no T_method: made without quide.measure.latency's timer"] if "run_params" in rec else []
    problems = []
    ci = rec.get("T_ci_ms")
    if not (isinstance(ci, list) and len(ci) == 2 and all(_is_number(v) for v in ci)):
        problems.append(f"T_ci_ms = {ci!r} is not [low, high] in ms")
    elif not 0 < ci[0] <= rec["T_ms"] <= ci[1]:
        problems.append(f"T_ci_ms {ci} does not hold T_ms {rec['T_ms']} (or is not positive)")
    if rec["T_method"] == "cuda_events" and not rec.get("T_method_reason"):
        problems.append("T_method cuda_events (a fallback) without T_method_reason")
    if "latency_batch" in rec and not (_is_number(rec.get("T_host_ms")) and rec["T_host_ms"] > 0):
        problems.append(f"T_host_ms = {rec.get('T_host_ms')!r}: the paper's host-protocol figure is missing")
    return problems


def _search_problems(rec: dict) -> list[str]:
    """EXP-3's values (their types are the schema's), by which the checks across files pair a record
    with its exhaustive pass and its FP32 reference and recompute its rank."""
    problems = []
    if rec["search"] != "reference" and not isinstance(rec["bits"], list):
        problems.append(f"bits = {rec['bits']!r}: a configuration of the {rec['search']} search is a list of "
                        "per-layer bit-widths")
    rank = rec.get("rank_of_n")
    if rank is not None and len(rank) != 2:
        problems.append(f"rank_of_n = {rank!r} is not [rank, n]")
    return problems


def check_record(rec) -> list[str]:
    """What is wrong with one record ([] when nothing): first the keys and types its kind's schema
    declares (:mod:`quide.analysis.schema`), then the values and the numbers derived from them."""
    problems = schema.problems(rec)
    if problems:
        return problems
    if rec["delta"] is not None and not 0 <= rec["delta"] <= 1:
        problems.append(f"delta = {rec['delta']!r} is neither None nor a number in [0, 1]")
    K = rec["num_classes"]
    if not K >= 2:
        problems.append(f"num_classes = {K!r} is not an int >= 2")
    bits = _bits_list(rec["bits"])
    if bits is None:
        problems.append(f"bits = {rec['bits']!r}: each must be an int in 2..16 or 32")
    t_dep = rec.get("T_deployed_ms")
    if t_dep is not None and not t_dep > 0:
        problems.append(f"T_deployed_ms = {t_dep!r} is neither None nor a positive number of ms")
    if rec["experiment"] == "mixed_precision":
        problems += _search_problems(rec)
    if problems:
        return problems
    P, T, C = rec["P"], rec["T_ms"], rec["C_paper"]
    if not 0 <= P <= 1:
        problems.append(f"P = {P} outside [0, 1]")
    for key in ("p_fp", "p_thresh"):
        if not 0 <= rec[key] <= 1:
            problems.append(f"{key} = {rec[key]} outside [0, 1]")
    if not T > 0:
        problems.append(f"T_ms = {T} not positive")
    if not C > 0 or not rec["C_true"] > 0:
        problems.append(f"C_paper = {C}, C_true = {rec['C_true']}: compression must be positive")
    if problems:
        return problems
    problems += _timing_problems(rec)
    if not _close(C, 32 / (sum(bits) / len(bits))):
        problems.append(f"C_paper {C} != 32/mean(bits) = {32 / (sum(bits) / len(bits))} for bits {rec['bits']}")
    if "run_params_sha256" in rec or "run_params" in rec:
        if rec.get("run_params_sha256") != params_sha256(rec.get("run_params")):
            problems.append("run_params_sha256 is not the sha256 of run_params")
    thresh = rec["p_thresh"]
    if rec["delta"] is not None:
        expected = float(qi.p_thresh(rec["num_classes"], rec["p_fp"], rec["delta"]))
        if not _close(thresh, expected):
            problems.append(f"p_thresh {thresh} != {expected} from K, P_FP, delta")
    derived = {"I": qi.intelligence_index(C, P, T), "I_gated": qi.gated_index(C, P, T, thresh),
               "ACP": qi.acp(C, P), "ALS": qi.als(P, T)}
    if rec.get("T_deployed_ms") is not None:   # the same index under the deployed latency
        t_dep = rec["T_deployed_ms"]
        derived.update(I_deployed=qi.intelligence_index(C, P, t_dep),
                       I_gated_deployed=qi.gated_index(C, P, t_dep, thresh))
    elif "T_deployed_ms" in rec and (rec.get("I_deployed") is not None or rec.get("T_deployed_reason") is None):
        problems.append("T_deployed_ms is None but the record gives I_deployed or no T_deployed_reason")
    for key, value in derived.items():
        if key in rec and not _close(rec[key], value):
            problems.append(f"{key} {rec[key]} != {float(value)} recomputed")
    ci = rec.get("T_deployed_ci_ms")
    if rec.get("T_deployed_ms") is not None and ci is not None and not (
            isinstance(ci, list) and len(ci) == 2 and all(_is_number(v) for v in ci) and ci[0] <= rec["T_deployed_ms"] <= ci[1]):
        problems.append(f"T_deployed_ci_ms {ci!r} does not hold T_deployed_ms {rec['T_deployed_ms']}")
    return problems


def check_samples(rec, folder: Path) -> list[str]:
    """What is wrong with an LLM record's per-question samples file (in ``folder``, beside the record)."""
    if not isinstance(rec, dict) or rec.get("experiment") != "llm_case_study":
        return []
    name = rec.get("samples_file")
    if name is None:
        return ["no samples_file: the per-question samples are missing"] if "T_method" in rec else []
    if not isinstance(name, str) or not name or Path(name).name != name or name.startswith("."):
        return [f"samples_file {name!r} is not the name of a file beside the record"]
    path = folder / name
    if not path.is_file():
        return [f"samples file {name} is missing"]
    try:
        if file_sha256(path) != rec.get("samples_sha256"):
            return [f"samples file {name}: its sha256 is not the record's samples_sha256"]
        rows = read_samples(path)
        ids = [r["doc_id"] for r in rows]
        wrong = sum(r["correct"] is not (r["pred"] == r["gold"]) for r in rows)
        cloze = _cloze_problems(rec, rows, name) if rec.get("scoring") == "cloze" else []
    except (OSError, EOFError, ValueError, KeyError, TypeError, zlib.error) as err:
        return [f"samples file {name}: unreadable ({type(err).__name__}: {err})"]
    if not rows:
        return [f"samples file {name} holds no samples"]
    problems = []
    if len(set(ids)) != len(ids):
        problems.append(f"samples file {name}: a doc_id appears twice")
    if wrong:
        problems.append(f"samples file {name}: {wrong} samples whose correct is not pred == gold")
    if rec.get("n_questions") != len(rows):
        problems.append(f"n_questions {rec.get('n_questions')!r} != {len(rows)} samples in {name}")
    p = sum(r["correct"] for r in rows) / len(rows)
    if not (_is_number(rec.get("P")) and _close(rec["P"], p)):
        problems.append(f"P {rec.get('P')!r} != {p} recomputed from {name}")
    return problems + cloze


def _cloze_problems(rec: dict, rows: list[dict], name: str) -> list[str]:
    """A cloze record's length-normalised answers (lm-eval's acc_norm) against its samples."""
    problems = []
    normed = normalised_predictions([r["loglik"] for r in rows], [r["choice_chars"] for r in rows])
    if (wrong := sum(int(n) != r["pred_norm"] for n, r in zip(normed, rows))):
        problems.append(f"samples file {name}: {wrong} samples whose pred_norm is not the per-character argmax of loglik")
    if (wrong := sum(r["correct_norm"] is not (r["pred_norm"] == r["gold"]) for r in rows)):
        problems.append(f"samples file {name}: {wrong} samples whose correct_norm is not pred_norm == gold")
    p_norm = sum(r["correct_norm"] for r in rows) / len(rows)
    if not (_is_number(rec.get("P_norm")) and _close(rec["P_norm"], p_norm)):
        problems.append(f"P_norm {rec.get('P_norm')!r} != {p_norm} recomputed from {name}")
    return problems


def _index_ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5] as "0-2, 5": the records a problem of their shared file concerns."""
    runs = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


class _PredictionsFile:
    """One predictions file as verify sees it: its sha256, then (only where that is the records')
    its arrays, each found once; ``wrong`` says why there are none."""

    def __init__(self, path: Path):
        self.path, self.arrays, self.wrong, self.sha256 = path, None, None, None
        if not path.is_file():
            self.wrong = f"predictions file {path.name} is missing"
            return
        try:
            self.sha256 = qp.file_sha256(path)
        except OSError as err:
            self.wrong = f"predictions file {path.name}: unreadable ({err})"

    def read(self) -> None:
        if self.arrays is None and self.wrong is None:
            try:
                self.arrays = qp.read(self.path)
            except qp.PredictionsError as err:
                cause = err.__cause__ or err
                self.wrong = f"predictions file {self.path.name}: unreadable ({type(cause).__name__}: {cause})"


def check_predictions(records: list, folder: Path) -> list[str]:
    """What is wrong with the per-sample predictions the records of one file name (in ``folder``,
    beside them), as "[record index]: what"; each predictions file is hashed and read once, and a
    problem of the file itself is listed once with the records that name it."""
    problems, files, shared = [], {}, {}
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or not any(rec.get(k) is not None for k in qp.FIELDS):
            continue
        missing = [k for k in qp.FIELDS if rec.get(k) is None]
        if missing:
            problems.append(f"[{i}]: names predictions but has no {', '.join(missing)}")
            continue
        name, key = rec["predictions_file"], rec["predictions_key"]
        if not isinstance(name, str) or not name or Path(name).name != name or name.startswith("."):
            problems.append(f"[{i}]: predictions_file {name!r} is not the name of a file beside the record")
            continue
        if name not in files:
            files[name] = _PredictionsFile(folder / name)
        found = files[name]
        wrong = found.wrong
        if wrong is None and found.sha256 != rec["predictions_sha256"]:
            wrong = f"predictions file {name}: its sha256 is not the record's predictions_sha256"
        if wrong is None:   # the file the record names: read it (once)
            found.read()
            wrong = found.wrong
        if wrong is not None:
            shared.setdefault(wrong, []).append(i)
            continue
        arrays = found.arrays
        if key == qp.LABELS or key not in arrays:
            problems.append(f"[{i}]: predictions file {name} has no array predictions_key {key!r}")
            continue
        labels, predicted = arrays[qp.LABELS], arrays[key]
        if labels.ndim != 1 or predicted.shape != labels.shape or not labels.size:
            problems.append(f"[{i}]: predictions file {name}: {key!r} holds {predicted.size} predictions for "
                            f"{labels.size} labels")
            continue
        if rec.get("n_test") is not None and rec["n_test"] != labels.size:
            problems.append(f"[{i}]: n_test {rec['n_test']!r} != {labels.size} predictions in {name}")
        K = rec.get("num_classes")
        for what, values in (("labels", labels), (key, predicted)):
            if not np.issubdtype(values.dtype, np.integer) or (_is_int(K) and not (
                    values.min() >= 0 and values.max() < K)):
                problems.append(f"[{i}]: predictions file {name}: {what!r} holds values that are not classes "
                                f"0..{K - 1 if _is_int(K) else 'K-1'}")
        p = qp.accuracy(labels, predicted)
        if not (_is_number(rec.get("P")) and rec["P"] == p):
            problems.append(f"[{i}]: P {rec.get('P')!r} != {p} recomputed from {name}[{key!r}]")
    problems += [f"[{_index_ranges(indices)}]: {wrong}" for wrong, indices in shared.items()]
    return problems


def p_recomputable(rec) -> bool:
    """Whether a record names what its P is recomputed from: predictions, or an LLM's samples."""
    return isinstance(rec, dict) and (any(rec.get(k) is not None for k in qp.FIELDS)
                                      or rec.get("samples_file") is not None)


def check_searches(files: dict[Path, list]) -> list[str]:
    """EXP-3: exhaustive passes complete and unique; ranks of search results recomputed."""
    problems, passes = [], {}
    for path, records in files.items():
        if records and records[0].get("experiment") == "mixed_precision" and records[0].get("search") == "exhaustive":
            configs = [tuple(_bits_list(r["bits"])) for r in records]
            if len(set(configs)) != len(configs):
                problems.append(f"{path.name}: a configuration appears twice")
            key = (records[0]["model"], records[0]["dataset"], records[0].get("model_seed"), records[0].get("profile"))
            passes[key] = records
    for path, records in files.items():
        for rec in records:
            if rec.get("experiment") != "mixed_precision" or not rec.get("rank_of_n"):
                continue
            exh = passes.get((rec["model"], rec["dataset"], rec.get("model_seed"), rec.get("profile")))
            if exh is None:
                problems.append(f"{path.name}: rank given but no exhaustive pass to check it against")
                continue
            name = rec.get("fitness_name") or ""
            if rec["search"] == "haq":   # HAQ's own fitness is accuracy; its rank is under the run's I'
                name = "true" if "trueC" in path.name else "paper"
            fitness = gated_fitness("true" if "true" in name else "paper")
            scores = [fitness(r) for r in exh]
            mine = fitness(rec)
            rank = 1 + sum(1 for s in scores if s > mine + 1e-12)
            if list(rec["rank_of_n"]) != [rank, len(exh)]:
                problems.append(f"{path.name}: rank_of_n {rec['rank_of_n']} != {[rank, len(exh)]} recomputed")
    return problems


def check_p_fp(files: dict[Path, list], root: Path) -> list[str]:
    """P_FP of every record equals the P of its run's 32-bit record: in the same file (a sweep),
    or, for EXP-3, in the FP32 reference file of the same model, data set, model seed and profile."""
    problems, references = [], {}
    for path, records in files.items():
        for rec in records:
            if rec.get("experiment") == "mixed_precision" and rec.get("search") == "reference":
                key = (rec["model"], rec["dataset"], rec.get("model_seed"), rec.get("profile"))
                references.setdefault(key, set()).add(rec["P"])
    for path, records in files.items():
        fp32 = [r["P"] for r in records if r["bits"] == 32]
        for i, rec in enumerate(records):
            if rec.get("experiment") == "mixed_precision":
                refs = references.get((rec["model"], rec["dataset"], rec.get("model_seed"), rec.get("profile")), set())
            else:
                refs = set(fp32[:1])
            if refs and not any(_close(rec["p_fp"], ref) for ref in refs):
                problems.append(f"{path.relative_to(root)} [{i}]: p_fp {rec['p_fp']} != P {sorted(refs)} of the run's 32-bit record")
    return problems


def check_duplicates(files: dict[Path, list], root: Path) -> list[str]:
    """No two files hold the same records, or records of the same run identity (run_params_sha256)."""
    problems, by_content, by_identity = [], {}, {}
    for path, records in files.items():
        name = path.relative_to(root)
        content = canonical_json(records)
        if content in by_content:
            problems.append(f"{name}: the same records as {by_content[content]} (a duplicated file)")
        by_content.setdefault(content, name)
        identity = {r.get("run_params_sha256") for r in records} - {None}
        for digest in identity:
            key = (records[0].get("experiment"), digest)
            if key in by_identity and by_identity[key] != name:
                problems.append(f"{name}: the same run identity (run_params_sha256 {digest[:12]}...) as "
                                f"{by_identity[key]}")
            by_identity.setdefault(key, name)
        if identity and not any(record_stem(path).endswith("-" + d[:8]) for d in identity):
            problems.append(f"{name}: file name does not end with its records' run_params_sha256 "
                            f"({sorted(identity)[0][:8]})")
    return problems


# What Table 1 (quide.aggregate) pools over seeds, plus the profile, which the book keeps apart, and
# the ablation's PTQ choice, each of which is a condition of its own (quide.analysis.ablation)
VARIANT_CONDITION = ("experiment", "model", "dataset", "data_source", "placement", "T_kind", "profile", "ptq_choice")


def check_variants(files: dict[Path, list], root: Path) -> list[str]:
    """Pairs of files holding sweep records (a placement, no search) of one condition and profile
    made with different run parameters apart from the seed: the aggregations refuse to pool them.
    One pair per extra parameter set, each set named by its first file."""
    problems, sets = [], {}   # condition -> {variant: (run_params, first file)}
    for path, records in files.items():
        for rec in records:
            if "placement" not in rec or "search" in rec:
                continue
            condition = tuple(canonical_json(rec.get(k)) for k in VARIANT_CONDITION)
            params = rec.get("run_params")
            sets.setdefault(condition, {}).setdefault(run_variant(params), (params, path.relative_to(root)))
    for variants in sets.values():
        (params, first), *others = variants.values()
        for other_params, other in others:
            differ = differing_params([params, other_params])
            shown = "; ".join(f"{k} {' vs '.join(v)}" for k, v in differ.items())
            problems.append(f"{other}: records of the condition of {first} made with other run parameters "
                            f"({shown}); Table 1 would refuse to pool them: keep a variant run in another "
                            "results root")
    return problems


def read_record_file(path: Path) -> tuple[list | None, str | None]:
    """(records, None), or (None, what is wrong with the file)."""
    try:
        text = read_json_bytes(path).decode("utf-8")
    except OSError as err:
        return None, f"unreadable ({err})"
    except UnicodeDecodeError as err:
        return None, f"not UTF-8 text ({err})"
    try:
        records = json.loads(text)
    except ValueError as err:   # bad JSON, or an int of more digits than Python converts
        return None, f"unreadable ({err})"
    except RecursionError:
        return None, f"unreadable (JSON nested deeper than Python's recursion limit, {sys.getrecursionlimit()})"
    if not isinstance(records, list):
        return None, f"holds {'null' if records is None else 'a ' + type(records).__name__}, not a list of records"
    if not records:
        return None, "holds no records ([]: emptied?)"
    return records, None


class Verification(NamedTuple):
    """What :func:`verify_all` found."""
    records: int                       # records checked
    problems: list[str]                # "file: what"
    not_recomputable: dict[str, int]   # record file -> its records whose P cannot be recomputed


def verify(root: Path | str | None = None) -> tuple[int, list[str]]:
    """(records checked, problems as "file: what"): :func:`verify_all` without the count of
    records whose P is not recomputable."""
    found = verify_all(root)
    return found.records, found.problems


def verify_all(root: Path | str | None = None) -> Verification:
    """Every check over every record file under ``root`` (hidden files and folders, such as a
    runner's ``.partial``, are not records); ``root`` None is the results root ($QUIDE_RESULTS or
    data/results), an empty one is refused (ValueError). Records that name neither predictions
    nor samples are counted per file in ``not_recomputable``, not listed as problems."""
    if root is not None and not str(root).strip():
        raise ValueError(f"the results folder is empty ({str(root)!r}); name a folder, or leave it out "
                         f"for {results_root()}")
    root = Path(results_root() if root is None else root)
    if not root.is_dir():
        raise FileNotFoundError(f"no results folder at {root}")
    clean, problems, n, not_recomputable = {}, [], 0, {}
    for path in record_files(root):
        name = path.relative_to(root)
        records = None
        try:
            records, wrong = read_record_file(path)
            found = [f"{name}: {wrong}"] if wrong else [
                f"{name} [{i}]: {p}" for i, rec in enumerate(records)
                for p in check_record(rec) + check_samples(rec, path.parent)]
            if not wrong:
                found += [f"{name} {p}" for p in check_predictions(records, path.parent)]
                without = sum(not p_recomputable(rec) for rec in records)
                if without:
                    not_recomputable[str(name)] = without
        except Exception as err:   # an input no check foresaw: listed with its file, never a crash
            found = [f"{name}: could not be checked ({type(err).__name__}: {err})"]
        n += len(records or [])
        problems += found
        if not found:   # the checks across records read only records that passed their own
            clean[path] = records
    for check in (lambda: check_duplicates(clean, root), lambda: check_p_fp(clean, root),
                  lambda: check_searches(clean), lambda: check_variants(clean, root)):
        try:
            problems += check()
        except Exception as err:   # records that passed their own checks, but not these
            problems.append(f"{root}: the checks across files stopped ({type(err).__name__}: {err})")
    return Verification(n, problems, not_recomputable)
