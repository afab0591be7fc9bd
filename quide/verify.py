"""``quide verify``: recompute every derived number of the committed records from their raw P, T
and C, and check it against what the record says.

Per record: Pthresh from (K, P_FP, delta) unless the record fixed it (delta None), then I, I', ACP
and ALS (and I, I' under T_deployed_ms where a record has one, a reason where it has none); P within [0, 1], T > 0, a known T_kind. Per EXP-3 run: each exhaustive pass holds every
configuration once, and each search record's rank among them is recomputed under its fitness.
The book's tables are checked in CI by nbval against their committed outputs.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from . import index as qi
from .config import results_root
from .results import REQUIRED_KEYS, T_KINDS
from .search import gated_fitness

REL_TOL = 1e-9


def _close(a, b) -> bool:
    return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=1e-12)


def check_record(rec: dict) -> list[str]:
    """What is wrong with one record ([] when nothing)."""
    missing = [k for k in REQUIRED_KEYS if k not in rec]
    if missing:
        return [f"missing keys {missing}"]
    problems = []
    P, T, C = rec["P"], rec["T_ms"], rec["C_paper"]
    if not 0 <= P <= 1:
        problems.append(f"P = {P} outside [0, 1]")
    if not T > 0:
        problems.append(f"T_ms = {T} not positive")
    if rec["T_kind"] not in T_KINDS:
        problems.append(f"T_kind {rec['T_kind']!r} unknown")
    if problems:
        return problems
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
    return problems


def check_searches(files: dict[Path, list]) -> list[str]:
    """EXP-3: exhaustive passes complete and unique; ranks of search results recomputed."""
    problems, passes = [], {}
    for path, records in files.items():
        if records and records[0].get("experiment") == "mixed_precision" and records[0].get("search") == "exhaustive":
            configs = [tuple(r["bits"]) for r in records]
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
            name = rec.get("fitness_name", "")
            if rec["search"] == "haq":   # HAQ's own fitness is accuracy; its rank is under the run's I'
                name = "true" if "trueC" in path.name else "paper"
            fitness = gated_fitness("true" if "true" in name else "paper")
            scores = [fitness(r) for r in exh]
            mine = fitness(rec)
            rank = 1 + sum(1 for s in scores if s > mine + 1e-12)
            if list(rec["rank_of_n"]) != [rank, len(exh)]:
                problems.append(f"{path.name}: rank_of_n {rec['rank_of_n']} != {[rank, len(exh)]} recomputed")
    return problems


def verify(root: Path | str | None = None) -> tuple[int, list[str]]:
    """(records checked, problems as "file: what") over every record file under ``root``."""
    root = Path(root or results_root())
    if not root.is_dir():
        raise FileNotFoundError(f"no results folder at {root}")
    files, problems, n = {}, [], 0
    for path in sorted(root.rglob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            records = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            problems.append(f"{path.relative_to(root)}: unreadable ({err})")
            continue
        files[path] = records
        for i, rec in enumerate(records):
            n += 1
            problems += [f"{path.relative_to(root)} [{i}]: {p}" for p in check_record(rec)]
    problems += check_searches(files)
    return n, problems
