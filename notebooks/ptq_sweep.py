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
# # PTQ sweep (EXP-1, EXP-2)
#
# Trains the full-precision model by the paper's recipe (or loads the checkpoint made with the same
# recipe, seed and data), quantizes it at each bit-width, and measures accuracy $P$ on the whole test
# split and latency $T$ by the paper's protocol. One result record per bit-width is written under
# `<results root>/<experiment>/` (`$QUIDE_RESULTS`, else `data/results`; a smoke run's go to a
# temporary folder unless `QUIDE_RESULTS` is set). All logic lives in `quide`; this notebook only calls it.
#
# Run it with papermill, e.g.
# `papermill notebooks/ptq_sweep.ipynb out.ipynb -p dataset cifar10 -p seed 42`.
# $T$ here is the latency of the **simulated** (fake-quantized) model, not of a deployed integer kernel.

# %%
from quide.analysis import aggregate, figures
from quide.measure import sweep
from quide.notebook_params import parameters_of

names_before_parameters = {*globals(), "names_before_parameters"}   # any later name must be a parameter

# %% tags=["parameters"]
model = "simplecnn"        # simplecnn | resnet18_cifar | resnet18_imagenet
dataset = "mnist"          # mnist | fashion_mnist | mnist_jpeg (control) | cifar10 | cifar100 | imagenet
seed = 0                   # the paper's seeds: 0, 42, 123
bits = [32, 16, 8, 4, 2]   # 32: FP32 untouched, 16: real FP16, 2 to 15: fake quantization
epochs = None              # None: the recipe's (50 SimpleCNN, 100 ResNet-18)
delta = None               # None: the paper's delta for this condition (Fashion-MNIST: MNIST's 0.19)
p_thresh = None            # "auto:<rule>" sets Pthresh by a rule instead (quide.analysis.pthresh; e.g. "auto:curve")
calib_size = 512           # calibration images drawn from the training split with the seed
warmup = 100               # latency protocol: untimed passes
timed = 1000               # latency protocol: timed passes, median reported
observer = "minmax"        # minmax (paper) | percentile | mse
per_channel = False        # per-channel weight scales (beyond the paper)
placement = "graph"        # graph (torch.ao FX style, logits quantized) | inputs
compare_placements = True  # also sweep the other placement on the same trained model
cuda_graphs = True         # replay training steps as CUDA graphs (CUDA only)
device = "auto"            # auto | cpu | cuda | cuda:N
profile = "paper"          # paper | smoke (a tiny CPU run of the same code path)
experiment = "ptq_sweep"   # records go to <results root>/<experiment>/

# %%
# NBVAL_CHECK_OUTPUT
params = parameters_of("ptq_sweep", globals(), names_before_parameters)   # the registry's class; refuses unknown -p names
print(f"{params.model} on {params.dataset}, seed {params.seed}, bits {list(params.bits)}, "
      f"delta {params.resolved_delta}, placements {params.placements}, profile {params.profile}")

# %%
# NBVAL_CHECK_OUTPUT
condition = sweep.load_condition(params)
print(sweep.describe(condition))

# %% [markdown]
# ## The full-precision model

# %%
trained = sweep.model_for(condition)
print("loaded from checkpoint" if trained.loaded else "trained now", "| device:", params.torch_device)
if "train_wall_s" in trained.meta:
    print(f"training wall time {trained.meta['train_wall_s']:.1f} s")

# %%
# NBVAL_CHECK_OUTPUT
meta = trained.meta
if "epoch" in meta:
    print(f"kept epoch {meta['epoch']} of {meta['recipe']['epochs']}: "
          f"validation {meta['val_accuracy']:.4f}, test {meta['test_accuracy']:.4f}")
else:
    print("weights:", meta["weights"])

# %% [markdown]
# ## The sweep

# %%
runs = sweep.run_sweeps(condition, trained)
for placement, (records, path) in runs.items():
    print(f"{placement}: {len(records)} records -> {path}")   # a smoke run's go to a temporary folder

# %% [markdown]
# Accuracy and compression do not depend on timing (checked by nbval); $T$, $I$, $I'$, ACP and ALS
# below do. Ranks: 1 = best under that metric.

# %%
# NBVAL_CHECK_OUTPUT
records = runs[params.placement][0]
table = aggregate.sweep_table(records)
print(table[["bits", "C_paper", "C_true", "P"]].to_string(index=False, float_format="%.4f"))

# %%
table.style.format(precision=3).hide(axis="index")

# %%
_ = figures.index_vs_gated(table, title=f"{condition.info.source}, seed {params.seed}")

# %%
_ = figures.accuracy_and_latency(table, title=f"{condition.info.source}, seed {params.seed}",
                               t_label="T (ms per batch of 64, simulated)")

# %% [markdown]
# ## Where the quantizers sit
#
# `graph` puts activation quantizers where torch.ao's FX graph mode puts observers (model input and
# every Conv/Linear output after its ReLU, logits included); `inputs` quantizes only the inputs of
# Conv/Linear layers. The paper used a graph-mode framework. `P_paper` is the paper's reported value
# where its text states one (not ours), and `closer_to_paper` names the placement nearer to it.

# %%
# NBVAL_CHECK_OUTPUT
both = [r for recs, _ in runs.values() for r in recs]
print(aggregate.placement_table(both).drop(columns=["model", "dataset", "data_source"])
      .to_string(index=False, float_format="%.4f"))

# %%
prov = records[0]["provenance"]
print(f"commit {str(prov['git_commit'])[:10]}{' (dirty)' if prov['git_dirty'] else ''} | "
      f"{prov['device']} | torch {prov['torch']} | {prov['created_utc']}")
