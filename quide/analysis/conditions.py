"""The conditions (model, data set) this project knows: one entry each, holding every fact about it.

A :class:`ConditionSpec` gives a condition's delta (paper Section 3.2: Pthresh = max(1/K, P_FP - delta)),
the training recipe (the name of a :class:`quide.analysis.protocol.Recipe`), its label in the book, whether it
can run here (and if not, why), and what the paper reports for it. ``MODEL_BUILDERS`` names the
``quide.measure.models`` function that builds each model. The sweep's choices, the scorecard's labels and
rows, ``quide.analysis.paper.reported`` and ``protocol.paper_recipe`` all read from here.

The paper's numbers (``reported``) are transcribed from the running text of arXiv 2605.10959 (its
tables lost their cells in the copy we have); this module and :mod:`quide.analysis.paper` are where the book
takes them from. Accuracies are fractions; a value absent is one the paper does not state. "P" maps
bit-width -> accuracy; "I", "I_gated" map bit-width -> index; "P_FP_std", "P_std" are std over the
paper's three seeds (fractions); "drop_4bit_points" is the 4-bit accuracy drop from full precision
the text states, in whole percentage points; "denominator_ratio" is Claim 2's max/min over
bit-widths of log2(T+1); "fp_bits" is the precision of P_FP where it is not FP32 (Llama: FP16).
"seed_0_only" names the keys whose values the paper gives for seed 0 alone (its EXP-3 paragraph,
Sec. 4.2), not as Table 1 means over seeds; the scorecard compares them with our seed 0.
This module imports nothing heavy, so the book's scorecard stays light.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field

# model -> the quide.measure.models function that builds it: f(num_classes, image_shape (H, W, C), pretrained).
# Models that quide.measure.models does not build (the LLM, loaded by quide.measure.llm) are not listed.
MODEL_BUILDERS = {
    "simplecnn": "build_simplecnn",
    "resnet18_cifar": "build_resnet18_cifar",
    "resnet18_imagenet": "build_resnet18_imagenet",
}


@dataclass(frozen=True)
class ConditionSpec:
    """Everything stated about one (model, data set) condition."""
    model: str
    dataset: str
    label: str                     # the book's name for it
    delta: float | None            # Pthresh's delta; None: the paper gives none (pass one explicitly)
    recipe: str | None             # a recipe in quide.analysis.protocol.RECIPES; None: not trained here (pretrained or LLM)
    not_here: str | None = None    # why it cannot run here (data, weights or model); None: it can
    reported: dict = field(default_factory=dict)   # the paper's numbers for it (see the module doc)
    control_of: str | None = None  # a control experiment for this data set (not a claim of the paper's)

    def __post_init__(self):
        if not (self.model and self.dataset and self.label):
            raise ValueError(f"ConditionSpec needs a model, a dataset and a label; got {self!r}")
        if self.delta is not None and not (isinstance(self.delta, numbers.Real) and 0 <= self.delta <= 1):
            raise ValueError(f"ConditionSpec {self.model}/{self.dataset}: delta must be None or in [0, 1]; "
                             f"got {self.delta!r}")

    @property
    def key(self) -> tuple:
        return (self.model, self.dataset)


_SPECS = [
    ConditionSpec("simplecnn", "mnist", "SimpleCNN / MNIST", delta=0.19, recipe="SIMPLECNN", reported={
        "P_FP": 0.9921,
        "order_I": [4, 8, 16, 32, 2], "order_I_gated": [4, 8, 16, 32, 2], "knee": 4,
    }),
    # Not in the paper: the data cause's control (MNIST through CIFAR stand-in's JPEG q75), MNIST's delta.
    ConditionSpec("simplecnn", "mnist_jpeg", "SimpleCNN / MNIST (JPEG q75 control, not in the paper)",
                  delta=0.19, recipe="SIMPLECNN", control_of="mnist"),
    # Not in the paper: run with MNIST's delta.
    ConditionSpec("simplecnn", "fashion_mnist", "SimpleCNN / Fashion-MNIST (not in the paper)", delta=0.19,
                  recipe="SIMPLECNN"),
    ConditionSpec("simplecnn", "cifar10", "SimpleCNN / CIFAR-10", delta=0.30, recipe="SIMPLECNN_AUGMENTED",
                  reported={
        "P_FP": 0.7981, "P": {4: 0.5818}, "drop_4bit_points": 21,
        "I_gated": {4: 0.633, 32: 0.529}, "T_range_ms": (0.48, 1.16), "denominator_ratio": 1.96,
        "seed_0_only": ("P", "I_gated", "drop_4bit_points"),   # Sec. 4.2's EXP-3 paragraph: seed 0
        "order_I": [4, 8, 16, 2, 32], "order_I_gated": [8, 16, 4, 32, 2], "knee": 8,
        "ga_best": {"bits": [8, 8, 8, 4], "P": 0.7502, "C": 4.57, "I_gated": 0.983},
    }),
    ConditionSpec("simplecnn", "cifar100", "SimpleCNN / CIFAR-100", delta=0.43, recipe="SIMPLECNN_AUGMENTED",
                  not_here="CIFAR-100 cannot be had here (code path tested on synthetic data)", reported={
        "P_FP": 0.4798, "P_FP_std": 0.0075, "p_thresh": 0.05,
        "P": {4: 0.1959}, "P_std": {4: 0.0229}, "drop_4bit_points": 28,
        "I": {4: 1.516, 16: 1.510}, "I_gated": {8: 1.841, 4: 1.128}, "I_gated_std": {8: 0.173}, "knee": 8,
    }),
    ConditionSpec("resnet18_cifar", "cifar10", "ResNet-18 / CIFAR-10", delta=0.45, recipe="RESNET18_CIFAR",
                  reported={
        "P_FP": 0.9493, "P_FP_std": 0.0019, "P": {8: 0.9484, 4: 0.5369}, "drop_4bit_points": 41,
        "I": {4: 0.933, 8: 0.824}, "I_gated": {4: 0.064, 8: 0.390, 2: 0.0},
        "T_ms": {16: 8.87, 8: 23.34, 4: 23.34, 2: 23.34}, "denominator_ratio": 1.39, "knee": 8,
    }),
    # Not in the paper, which gives no delta for it.
    ConditionSpec("resnet18_cifar", "cifar100", "ResNet-18 / CIFAR-100 (not in the paper)", delta=None,
                  recipe="RESNET18_CIFAR", not_here="CIFAR-100 cannot be had here"),
    ConditionSpec("resnet18_imagenet", "imagenet", "ResNet-18 / ImageNet-1K", delta=0.60, recipe=None,
                  not_here="ImageNet-1K and its ResNet-18 weights cannot be had here", reported={
        "P_FP": 0.6976, "knee": 8,
        "P": {8: 0.6936, 4: 0.0018, 2: 0.001},   # 2-bit: "nearly 0.1%" in the text
        "mps_best": {"bits": [8, 8, 8, 8, 8, 16], "P": 0.6936, "I_gated": 0.350, "haq_objective": 0.225},
    }),
    # The paper's LLM case; quide.measure.llm runs the same path on a small model (its own parameters).
    ConditionSpec("llama3_8b_instruct", "mmlu", "Llama-3-8B-Instruct / MMLU", delta=0.07, recipe=None,
                  not_here="Llama-3-8B-Instruct cannot be had here", reported={
        "P_FP": 0.666, "fp_bits": 16, "p_thresh": 0.60, "P": {2: 0.350},
        "I": {2: 70.0}, "I_gated": {4: 2.58, 3: 0.0, 2: 0.0}, "knee": 4,
    }),
]
CONDITIONS = {spec.key: spec for spec in _SPECS}


def condition(model: str, dataset: str) -> ConditionSpec:
    """The entry for (model, dataset); ValueError naming both if there is none."""
    try:
        return CONDITIONS[(model, dataset)]
    except KeyError:
        raise ValueError(f"no condition {model!r} on {dataset!r}; known: "
                         f"{[f'{m}/{d}' for m, d in CONDITIONS]}") from None


def datasets_for(model: str) -> tuple:
    """The data sets ``model`` has a condition on, in registry order."""
    return tuple(d for m, d in CONDITIONS if m == model)


def delta_for(model: str, dataset: str) -> float:
    """The condition's delta; ValueError where it has none (pass delta explicitly)."""
    delta = CONDITIONS[(model, dataset)].delta if (model, dataset) in CONDITIONS else None
    if delta is None:
        raise ValueError(f"the paper gives no delta for {model} on {dataset}; pass delta explicitly")
    return delta


def label(model: str, dataset: str) -> str:
    """The book's name for a condition ("model / dataset" for one not listed)."""
    spec = CONDITIONS.get((model, dataset))
    return spec.label if spec else f"{model} / {dataset}"
