"""What the paper reports, as data: every value here is the paper's, not ours.

A condition's numbers live in its entry in ``quide.conditions`` (``ConditionSpec.reported``);
claims that hold across conditions live here. Transcribed from ``shared/paper/REPORTED.md``.
"""
from __future__ import annotations

from .conditions import CONDITIONS

# Claims that hold across conditions in the paper's text.
CLAIMS = {
    "std_P_below_0.8pp_at_8bit_and_up": 0.008,
    "fp16_lossless_delta_P_below": 0.0001,
}


def reported(model: str, dataset: str) -> dict:
    """The paper's facts for a condition ({} where the paper has no such condition)."""
    spec = CONDITIONS.get((model, dataset))
    return spec.reported if spec else {}
