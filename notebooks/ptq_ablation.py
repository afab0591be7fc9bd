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
# # The ablation of the 4-bit gap
#
# Loads the PTQ sweep's FP32 checkpoint of each seed (or trains it by the same recipe, seed and data:
# the same checkpoint file), then quantizes it under every PTQ choice of
# `quide.analysis.ablation.CHOICES` at each bit-width below 16 and measures $P$ on the whole test split.
# FP32 and FP16 are measured once per seed: no choice changes them. One record file per seed and
# choice is written under `<results root>/<experiment>/` (`$QUIDE_RESULTS`, else `data/results`; a
# smoke run's go to a temporary folder unless `QUIDE_RESULTS` is set). All logic lives in `quide`.
#
# The Knee between 4 and 8 bits is decided by the 4-bit drop alone (the d4 rule): fake quantization
# runs one graph at 8, 4 and 2 bits, so $T(8) = T(4)$. $T$ is timed once per distinct graph and seed
# with a short timer (`quide.measure.ablation.TIMER`), and is the latency of the **simulated**
# (fake-quantized) model.
#
# `papermill notebooks/ptq_ablation.ipynb out.ipynb -p model simplecnn -y "seed: [0, 42, 123]"`

# %%
import pandas as pd

from quide.analysis import ablation, figures
from quide.measure import ablation as measure
from quide.measure import data as qd
from quide.notebook_params import parameters_of

names_before_parameters = {*globals(), "names_before_parameters"}   # any later name must be a parameter

# %% tags=["parameters"]
model = "resnet18_cifar"   # simplecnn | resnet18_cifar
dataset = "cifar10"        # the paper's harder condition that runs here (the JPEG stand-in)
seed = [0, 42, 123]        # the paper's seeds; the PTQ sweep's checkpoints
choices = "all"            # "all" or a list of names of quide.analysis.ablation.CHOICES
bits = [32, 16, 8, 4, 2]   # must hold 32, 8 and 4
delta = None               # None: the paper's delta for the condition
device = "auto"            # auto | cpu | cuda | cuda:N
profile = "paper"          # paper | smoke (a tiny CPU run of the same code path)
experiment = "ptq_ablation"   # records go to <results root>/<experiment>/

# %%
params = parameters_of("ptq_ablation", globals(), names_before_parameters)   # the registry's class; refuses unknown -p names
print(f"{params.model} on {params.dataset}, seeds {list(params.seed)}, bits {list(params.bits)}, "
      f"delta {params.sweep_params().resolved_delta}, profile {params.profile}; "
      f"{len(params.choices)} choices: {', '.join(params.choices)}")

# %%
images = qd.load_dataset(params.dataset)   # once for every seed; the smoke profile takes a subset per seed

# %% [markdown]
# ## The runs

# %%
runs, paths = [], []
for s in params.seed:
    run = measure.run_seed(params, s, images)
    paths += measure.write(params, run)
    runs.append(run)
    print(f"seed {s}: model {'loaded' if run.loaded else 'trained'}, {run.graphs} distinct graphs timed, "
          f"{run.wall_s:.1f} s")
print(f"{len(paths)} record files in {paths[0].parent}")

# %% [markdown]
# ## The 4-bit drop per choice
#
# Drops in points from FP32, seed means; `bound` is the d4 rule's $(\delta + d_8)/2$: the Knee is 8 bits
# exactly where $d_4$ reaches it. `knee` is the bit-width of peak seed-mean $I'$ over every bit-width,
# `paper_d4` the paper's reported 4-bit drop (its values, not ours).

# %%
records = pd.DataFrame([r for run in runs for recs in run.records.values() for r in recs])
table = ablation.summary(records)
shown = ["label", "n_seeds", "d4", "d4_std", "d8", "bound", "knee_rule", "knee", "paper_d4", "reaches_paper"]
table[shown].style.format(precision=2, na_rep="—").hide(axis="index")

# %%
_ = figures.ablation_drops(table)

# %%
disagree = ablation.rule_disagreements(table)
print("the d4 rule gives every cell's Knee" if disagree.empty else f"the d4 rule disagrees on:\n{disagree}")
prov = records["provenance"].iloc[0]
print(f"commit {str(prov['git_commit'])[:10]}{' (dirty)' if prov['git_dirty'] else ''} | "
      f"{prov['device']} | torch {prov['torch']} | {prov['created_utc']}")
