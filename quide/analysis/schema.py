"""The declared schema of a result record: every key a record may hold, its type, its unit and
whether it is required, per experiment kind.

A record file is a JSON list of records (dicts). The keys common to every experiment are declared
by :class:`Record`; :class:`PtqSweepRecord`, :class:`MixedPrecisionRecord` (EXP-3's searches),
:class:`AblationRecord` (the ablation of the 4-bit gap), :class:`LlmRecord` and :class:`GpuCheckRecord`
add their own. A field without a default is
required; one whose default is ``ABSENT`` may be left out. A record of a declared kind holds
no other key; a record of another experiment is checked for the common keys only.

Units (``unit`` in each field's metadata): accuracies and gates (P, P_FP, Pthresh, delta) are
fractions in [0, 1], never percent; latencies are milliseconds (per batch for image models, per
generated token for the LLM); compressions C are dimensionless (32 / mean bit-width for
``C_paper``). The schema holds presence and types; the values' ranges and the derived numbers
(I, I', ACP, ALS, Pthresh from delta, C_paper from bits) are recomputed by ``quide verify``.

:func:`problems` checks one record against its kind; :func:`json_schema` writes the same
declaration as JSON Schema (committed as ``data/results/record.schema.json``).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Literal, Union

from .protocol import T_METHODS
from .search import METHODS

ABSENT = None   # the default of an optional field: the key may be left out of a record
SEARCHES = ("reference", *METHODS)   # EXP-3's records: the FP32 reference and each search method's
SCHEMA_FILE = "record.schema.json"   # beside the records, in the results root


def _key(unit: str, doc: str, *, required: bool = False):
    """A field of the schema: its unit ("fraction", "ms", "dimensionless", ...) and meaning."""
    meta = {"unit": unit, "doc": doc}
    return field(metadata=meta) if required else field(default=ABSENT, metadata=meta)


def required(unit: str, doc: str):
    return _key(unit, doc, required=True)


def optional(unit: str, doc: str):
    return _key(unit, doc)


@dataclass(kw_only=True)
class Record:
    """The keys of every record, whatever its experiment."""
    experiment: str = required("name", "the experiment: the folder under the results root")
    model: str = required("name", "the model")
    dataset: str = required("name", "the data set")
    data_source: str = required("text", "where the data came from (e.g. 'CIFAR-10 (JPEG stand-in)')")
    seed: int = required("count", "the training (or run) seed")
    bits: Union[int, list[int]] = required("bits", "one bit-width for every layer, or one per layer; 32 is FP")
    P: float = required("fraction", "accuracy on the test set")
    T_ms: float = required("ms", "latency: the median, per batch (image models) or per token (LLM)")
    T_kind: Literal["simulated", "deployed"] = required(
        "name", "what T times: the fake-quant model (simulated) or real low-bit kernels (deployed)")
    C_paper: float = required("dimensionless", "compression as the paper counts it: 32 / mean(bits)")
    C_true: float = required("dimensionless", "compression of the stored weights, scales included")
    I: float = required("1/ms", "the intelligence index from P, T_ms and C_paper")
    I_gated: float = required("1/ms", "I', the index gated at p_thresh (0 below it)")
    ACP: float = required("dimensionless", "accuracy-compression product C_paper * P")
    ALS: float = required("1/ms", "accuracy-latency score from P and T_ms")
    p_thresh: float = required("fraction", "Pthresh, the gate of I'")
    p_fp: float = required("fraction", "P_FP, the accuracy of the run's FP model")
    delta: Union[float, None] = required(
        "fraction", "the hand-set drop below P_FP of Pthresh = max(1/K, P_FP - delta); None where "
        "Pthresh was fixed or set by a rule")
    num_classes: int = required("count", "K, the number of classes (1/K is chance)")
    provenance: dict = required("mapping", "git commit, versions, device, data hash, wall time, ...")
    # how Pthresh was set where no delta did
    p_thresh_rule: str = optional("text", "the automatic rule and its parameters, e.g. 'noise(k=2.0)'")
    # the run's identity
    run_params: dict = optional("mapping", "the run's resolved parameters")
    run_params_sha256: Union[str, None] = optional("hex", "sha256 of run_params as canonical JSON")
    quant_kind: str = optional("name", "how the model was quantized")
    # the latency timer's fields (quide.measure.latency)
    T_ci_ms: list[float] = optional("ms", "95% confidence interval of the median T_ms, [low, high]")
    T_method: Literal[T_METHODS] = optional("name", "the timer that measured T_ms")
    T_method_reason: Union[str, None] = optional("text", "why the timer fell back, where it did")
    T_rounds: int = optional("count", "timing rounds")
    T_captures: int = optional("count", "CUDA-graph captures")
    T_attempts: int = optional("count", "timing attempts")
    T_attempt_medians_ms: list[float] = optional("ms", "each attempt's median")
    T_block_starts_utc: list[str] = optional("ISO 8601 time", "when each timing block began")
    T_passes_per_round: int = optional("count", "forward passes per timing round")
    T_signature: str = optional("hex", "the timed graph's signature")
    T_alone_on_host: bool = optional("flag", "no other timing ran on the host meanwhile")
    # real low-bit kernels, where any exist (T_deployed_ms None with a reason where none does)
    T_deployed_ms: Union[float, None] = optional("ms", "latency of the deployed low-bit model")
    T_deployed_ci_ms: list[float] = optional("ms", "95% confidence interval of T_deployed_ms")
    T_deployed_method: str = optional("name", "the timer of T_deployed_ms")
    T_deployed_kind: Union[str, None] = optional("text", "which kernels ran")
    T_deployed_reason: Union[str, None] = optional("text", "why there is no T_deployed_ms")
    I_deployed: Union[float, None] = optional("1/ms", "I under T_deployed_ms")
    I_gated_deployed: Union[float, None] = optional("1/ms", "I' under T_deployed_ms")


@dataclass(kw_only=True)
class ImageRecord(Record):
    """The keys of a post-training quantization of an image classifier (quide.measure.sweep)."""
    T_host_ms: float = optional("ms", "the paper's host-protocol latency, median per batch")
    T_host_p10_ms: float = optional("ms", "its 10th percentile")
    T_host_p90_ms: float = optional("ms", "its 90th percentile")
    T_host_scope: str = optional("name", "what the host timing timed: each graph or each configuration")
    latency_passes: int = optional("count", "timed passes of the host protocol")
    latency_warmup: int = optional("count", "warm-up passes of the host protocol")
    latency_batch: int = optional("count", "images per timed batch")
    placement: Union[str, None] = optional("name", "where the quantizers sit (graph, eager, ...)")
    quantized_placement: Union[str, None] = optional("name", "the placement the quantized model got")
    observer: Union[str, None] = optional("name", "the calibration observer")
    per_channel: bool = optional("flag", "per-channel weight scales")
    calib_size: int = optional("count", "calibration images")
    n_test: int = optional("count", "test images P is measured on")
    layer_bits: dict = optional("bits", "{layer: bit-width} as quantized")
    train: Union[dict, None] = optional("mapping", "the training summary: epoch, accuracies, wall time, recipe")
    profile: str = optional("name", "the run profile (paper, smoke, ...)")
    # the per-sample predictions P is computed from (quide.analysis.predictions); records made
    # before they were kept have none
    predictions_file: str = optional("file name", "the predictions file beside the record (.predictions.npz)")
    predictions_key: str = optional("name", "the array of this record's predicted classes in that file")
    predictions_sha256: str = optional("hex", "sha256 of the predictions file")


@dataclass(kw_only=True)
class PtqSweepRecord(ImageRecord):
    """EXP-1/2: one uniform bit-width of a PTQ sweep."""
    experiment: Literal["ptq_sweep"] = required("name", "the experiment")


@dataclass(kw_only=True)
class AblationRecord(ImageRecord):
    """The ablation of the 4-bit gap: one bit-width of one PTQ choice (``quide.analysis.ablation``)."""
    experiment: Literal["ptq_ablation"] = required("name", "the experiment")
    ptq_choice: str = required("name", "the PTQ choice (quide.analysis.ablation.CHOICES)")
    ptq_config: dict = optional("mapping", "the PTQConfig fields the choice quantized with, bits left out")
    T_note: str = optional("text", "how T was measured and which records share it")


@dataclass(kw_only=True)
class GpuCheckRecord(ImageRecord):
    """A sweep made to check the GPU timer, with the percentiles of an earlier timer."""
    experiment: Literal["gpu_check"] = required("name", "the experiment")
    T_p10_ms: float = optional("ms", "10th percentile of T")
    T_p90_ms: float = optional("ms", "90th percentile of T")


@dataclass(kw_only=True)
class MixedPrecisionRecord(ImageRecord):
    """EXP-3: one configuration found by a search, a configuration of an exhaustive pass, or the
    FP32 reference."""
    experiment: Literal["mixed_precision"] = required("name", "the experiment")
    search: Literal[SEARCHES] = required("name", "the search that gave the record (reference: FP32)")
    model_seed: int = optional("count", "the seed of the PTQ sweep's checkpoint searched")
    layers: list[str] = optional("names", "the quantizable layers, the order of a configuration")
    search_seed: Union[int, None] = optional("count", "the search's seed (None: deterministic)")
    fitness: float = optional("1/ms", "the search's fitness of the configuration")
    fitness_name: Union[str, None] = optional("name", "the fitness function")
    search_wall_s: float = optional("s", "the search's wall time")
    evaluations: int = optional("count", "fitness evaluations the search made")
    stopped_by_budget: bool = optional("flag", "the search ran out of its evaluation budget")
    history: list[float] = optional("1/ms", "the best fitness after each step")
    path: list = optional("bits", "the configurations the search went through")
    rank_of_n: Union[list[int], None] = optional("count", "[rank, n] among the exhaustive pass's configurations")


@dataclass(kw_only=True)
class LlmRecord(Record):
    """The LLM case study: MMLU accuracy and decoding latency at one weight bit-width."""
    experiment: Literal["llm_case_study"] = required("name", "the experiment")
    n_shot: int = optional("count", "few-shot examples per question")
    scoring: Literal["letter", "cloze"] = optional("name", "letter (the letters A-D, lm-eval's mmlu) or cloze (each answer's text, mmlu_continuation); absent: letter")
    P_norm: float = optional("fraction", "cloze: accuracy by log-likelihood per character (lm-eval's acc_norm)")
    P_norm_ci95: list[float] = optional("fraction", "cloze: 95% interval of P_norm, [low, high]")
    P_macro: float = optional("fraction", "mean accuracy over subjects")
    P_ci95: list[float] = optional("fraction", "95% interval of P, [low, high]")
    n_questions: int = optional("count", "questions P is measured on")
    n_subjects: int = optional("count", "MMLU subjects")
    above_chance: bool = optional("flag", "P_ci95 lies above chance (1/4)")
    context_tokens: int = optional("count", "context length of the timed decode step")
    T_unit: str = optional("text", "what T_ms is per (one generated token)")
    group_size: int = optional("count", "weights per quantization group")
    include_lm_head: bool = optional("flag", "the LM head is quantized too")
    quantized_params: int = optional("count", "weights quantized")
    other_params: int = optional("count", "weights kept as loaded")
    per_subject: dict = optional("fraction", "{subject: accuracy}")
    samples_file: Union[str, None] = optional("file name", "the per-question samples beside the record")
    samples_sha256: Union[str, None] = optional("hex", "sha256 of the samples file")


KINDS = {"ptq_sweep": PtqSweepRecord, "mixed_precision": MixedPrecisionRecord,
         "llm_case_study": LlmRecord, "gpu_check": GpuCheckRecord, "ptq_ablation": AblationRecord}


def kind_of(rec: dict) -> type[Record]:
    """The schema class of a record: its experiment's, or :class:`Record` for another experiment."""
    experiment = rec.get("experiment")
    return KINDS.get(experiment, Record) if isinstance(experiment, str) else Record


class Key(typing.NamedTuple):
    """One declared key: its type, whether a record must hold it, its unit and meaning."""
    type: object
    required: bool
    unit: str
    doc: str


@functools.cache
def declared(cls: type[Record]) -> dict[str, Key]:
    """{key: Key} of a schema class, in declaration order."""
    hints = typing.get_type_hints(cls)
    return {f.name: Key(hints[f.name], f.default is dataclasses.MISSING, f.metadata["unit"], f.metadata["doc"])
            for f in dataclasses.fields(cls)}


def required_keys(cls: type[Record] = Record) -> tuple[str, ...]:
    return tuple(name for name, key in declared(cls).items() if key.required)


# --- checking a record ----------------------------------------------------------------------------

def _is_union(tp) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def conforms(value, tp) -> bool:
    """Whether a JSON value is of type ``tp`` (a float is a finite number, an int or float but not
    a bool; an int is not a bool)."""
    origin = typing.get_origin(tp)
    if tp is type(None):
        return value is None
    if _is_union(tp):
        return any(conforms(value, t) for t in typing.get_args(tp))
    if origin is Literal:
        return isinstance(value, str) and value in typing.get_args(tp)
    if origin is list:
        (item,) = typing.get_args(tp)
        return isinstance(value, list) and all(conforms(v, item) for v in value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        try:
            return math.isfinite(value)
        except OverflowError:   # an int too large for a float
            return False
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp) and not (tp is not bool and isinstance(value, bool))


_NAMES = {float: "a finite number", int: "an int", str: "a string", bool: "a bool", dict: "a dict", list: "a list"}
_PLURALS = {float: "finite numbers", int: "ints", str: "strings"}


def describe(tp) -> str:
    """'a finite number', 'an int or a list of ints', 'one of (...)': what a value of ``tp`` is."""
    if _is_union(tp):
        return " or ".join(describe(t) for t in typing.get_args(tp) if t is not type(None))
    if typing.get_origin(tp) is Literal:
        return f"one of {typing.get_args(tp)}"
    if typing.get_origin(tp) is list:
        return f"a list of {_PLURALS[typing.get_args(tp)[0]]}"
    return _NAMES[tp]


def type_problem(key: str, value, tp) -> str | None:
    """The problem of ``value`` under ``tp``, naming the key, or None."""
    if conforms(value, tp):
        return None
    if _is_union(tp) and type(None) in typing.get_args(tp):
        return f"{key} = {value!r} is neither None nor {describe(tp)}"
    return f"{key} = {value!r} is not {describe(tp)}"


def problems(rec, *, complete: bool = True) -> list[str]:
    """What is wrong with one record under its kind's schema ([] when nothing): a missing required
    key (all listed at once, and nothing else then), a value of the wrong type, a key a declared
    kind does not have. ``complete`` False checks only the keys given (a record in the making)."""
    if not isinstance(rec, dict):
        return [f"a {type(rec).__name__}, not a record"]
    cls = kind_of(rec)
    keys = declared(cls)
    if complete:
        missing = [k for k in required_keys(cls) if k not in rec]
        if missing:
            return [f"missing keys {missing}"]
    found = [p for k, v in rec.items() if k in keys and (p := type_problem(k, v, keys[k].type))]
    if cls is not Record:
        undeclared = [k for k in rec if k not in keys]
        if undeclared:
            found.append(f"keys {undeclared} are not in the {rec['experiment']} record schema "
                         f"(quide.analysis.schema.{cls.__name__})")
    return found


# --- the JSON Schema ------------------------------------------------------------------------------

def _json_type(tp) -> dict:
    if tp is type(None):
        return {"type": "null"}
    if _is_union(tp):
        return {"anyOf": [_json_type(t) for t in typing.get_args(tp)]}
    if typing.get_origin(tp) is Literal:
        return {"enum": list(typing.get_args(tp))}
    if typing.get_origin(tp) is list:
        return {"type": "array", "items": _json_type(typing.get_args(tp)[0])}
    return {"type": {float: "number", int: "integer", str: "string", bool: "boolean", dict: "object",
                     list: "array"}[tp]}


def _json_kind(cls: type[Record], closed: bool) -> dict:
    props = {name: {**_json_type(key.type), "description": f"{key.doc} ({key.unit})"}
             for name, key in declared(cls).items()}
    return {"description": " ".join(cls.__doc__.split()), "type": "object", "properties": props,
            "required": list(required_keys(cls)), "additionalProperties": not closed}


def json_schema() -> dict:
    """The schema of a record file (a non-empty list of records) as JSON Schema (2020-12): each
    declared kind by its ``experiment``, any other experiment by the common keys."""
    defs = {"Record": _json_kind(Record, closed=False)}
    branches = []
    for experiment, cls in KINDS.items():
        defs[cls.__name__] = _json_kind(cls, closed=True)
        branches.append({"if": {"properties": {"experiment": {"const": experiment}}, "required": ["experiment"]},
                         "then": {"$ref": f"#/$defs/{cls.__name__}"}})
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": SCHEMA_FILE, "title": "QuIDE result records",
            "description": " ".join(__doc__.split("\n\n")[0].split()) + " Generated by quide.analysis.schema.json_schema.",
            "type": "array", "minItems": 1,
            "items": {"allOf": [{"$ref": "#/$defs/Record"}, *branches]}, "$defs": defs}


def json_schema_text() -> str:
    """:func:`json_schema` as the committed file holds it."""
    return json.dumps(json_schema(), indent=1) + "\n"


if __name__ == "__main__":   # python -m quide.analysis.schema: rewrite the committed JSON Schema
    from ..config import project_root
    path = project_root() / "data" / "results" / SCHEMA_FILE
    path.write_text(json_schema_text())
    print(f"wrote {path}")
