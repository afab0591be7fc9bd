"""What the paper reports, as data: every value here is the paper's, not ours.

Transcribed from ``shared/paper/REPORTED.md`` (numbers stated in the running text of arXiv
2605.10959; its tables lost their cells in the copy we have). Accuracies are fractions. A value
absent here is one the paper does not state.
"""
from __future__ import annotations

# (model, dataset) -> facts. "P" maps bit-width -> accuracy; "I", "I_gated" map bit-width -> index.
REPORTED = {
    ("simplecnn", "mnist"): {
        "P_FP": 0.9921, "delta": 0.19,
        "order_I": [4, 8, 16, 32, 2], "order_I_gated": [4, 8, 16, 32, 2], "knee": 4,
    },
    ("simplecnn", "cifar10"): {
        "P_FP": 0.7981, "delta": 0.30, "P": {4: 0.5818},
        "I_gated": {4: 0.633, 32: 0.529}, "T_range_ms": (0.48, 1.16),
        "order_I": [4, 8, 16, 2, 32], "order_I_gated": [8, 16, 4, 32, 2], "knee": 8,
        "ga_best": {"bits": [8, 8, 8, 4], "P": 0.7502, "C": 4.57, "I_gated": 0.983},
    },
    ("simplecnn", "cifar100"): {
        "P_FP": 0.4798, "P_FP_std": 0.0075, "delta": 0.43, "p_thresh": 0.05,
        "P": {4: 0.1959}, "P_std": {4: 0.0229},
        "I": {4: 1.516, 16: 1.510}, "I_gated": {8: 1.841, 4: 1.128}, "I_gated_std": {8: 0.173}, "knee": 8,
    },
    ("resnet18_cifar", "cifar10"): {
        "P_FP": 0.9493, "P_FP_std": 0.0019, "delta": 0.45, "P": {8: 0.9484, 4: 0.5369},
        "I": {4: 0.933, 8: 0.824}, "I_gated": {4: 0.064, 8: 0.390, 2: 0.0},
        "T_ms": {16: 8.87, 8: 23.34, 4: 23.34, 2: 23.34}, "knee": 8,
    },
    ("resnet18_imagenet", "imagenet"): {
        "P_FP": 0.6976, "delta": 0.60, "knee": 8,
        "P": {8: 0.6936, 4: 0.0018, 2: 0.001},   # 2-bit: "nearly 0.1%" in the text
        "mps_best": {"bits": [8, 8, 8, 8, 8, 16], "P": 0.6936, "I_gated": 0.350, "haq_objective": 0.225},
    },
    ("llama3_8b_instruct", "mmlu"): {
        "P_FP": 0.666, "p_thresh": 0.60, "delta": 0.07, "P": {2: 0.350},
        "I": {2: 70.0}, "I_gated": {4: 2.58, 3: 0.0, 2: 0.0}, "knee": 4,
    },
}
# Claims that hold across conditions in the paper's text.
CLAIMS = {
    "std_P_below_0.8pp_at_8bit_and_up": 0.008,
    "fp16_lossless_delta_P_below": 0.0001,
}


def reported(model: str, dataset: str) -> dict:
    """The paper's facts for a condition ({} where the paper has no such condition)."""
    return REPORTED.get((model, dataset), {})
