"""The experiments a grid may run: one registry that the runner (``quide reproduce``), the CLI
(``quide train``), the notebooks (their parameter class, ``quide.notebook_params.parameters_of``)
and the tests read.

Each entry names the experiment (its results folder), its notebook (relative to the repository),
the parameter class the notebook's first cells build (``module:Class``, imported only when used, so
this module needs no torch), and what identifies its data (``"dataset"``: an image data set named by
the ``dataset`` parameter, hashed by content; ``"mmlu"``: the MMLU file; ``"none"``).

A notebook that is not registered does not run: a renamed copy would run with parameters that no
class checks. Code outside the package (a test's stand-in notebook, an extension) adds its own with
:func:`register`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

DATA_KINDS = ("dataset", "mmlu", "none")


@dataclass(frozen=True)
class Experiment:
    name: str                     # the results folder, and the name a config gives it
    notebook: str                 # relative to the repository root, posix separators
    parameter_class: str | None   # "module:Class" the notebook builds its parameters with; None: names only
    data: str                     # what identifies its data: one of DATA_KINDS

    def __post_init__(self):
        if self.data not in DATA_KINDS:
            raise ValueError(f"Experiment {self.name!r}: data must be one of {DATA_KINDS}; got {self.data!r}")
        if self.parameter_class is not None and self.parameter_class.count(":") != 1:
            raise ValueError(f"Experiment {self.name!r}: parameter_class must be 'module:Class'; "
                             f"got {self.parameter_class!r}")
        if not self.notebook.endswith(".ipynb") or self.notebook.startswith("/"):
            raise ValueError(f"Experiment {self.name!r}: notebook must be a relative path to an .ipynb; "
                             f"got {self.notebook!r}")

    def parameters(self):
        """The parameter class (imported now), or None."""
        if self.parameter_class is None:
            return None
        module, name = self.parameter_class.split(":")
        return getattr(importlib.import_module(module), name)


_REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    """Add ``experiment`` (keyed by its notebook); registering the same entry again is a no-op, another
    entry for a registered notebook is refused."""
    known = _REGISTRY.get(experiment.notebook)
    if known is not None and known != experiment:
        raise ValueError(f"{experiment.notebook} is registered already as {known}")
    _REGISTRY[experiment.notebook] = experiment
    return experiment


def by_notebook(relative: str) -> Experiment | None:
    """The entry of a notebook path relative to the repository (None: not registered)."""
    return _REGISTRY.get(relative)


def by_name(name: str) -> Experiment:
    """The entry named ``name`` (what a config's ``name`` and a notebook call it); ValueError naming
    the registered ones where none is."""
    found = [e for e in _REGISTRY.values() if e.name == name]
    if len(found) != 1:
        raise ValueError(f"{len(found) or 'no'} experiments named {name!r} registered; "
                         f"registered: {sorted(e.name for e in _REGISTRY.values())}")
    return found[0]


def of_path(path) -> Experiment | None:
    """The entry whose notebook ``path`` (absolute or relative, a str or Path) is: matched on the
    registered relative path's end, so a checkout anywhere finds it."""
    text = str(path).replace("\\", "/")
    return next((e for e in _REGISTRY.values() if text == e.notebook or text.endswith("/" + e.notebook)), None)


def notebooks() -> list[str]:
    return list(_REGISTRY)


for _entry in (
        Experiment("ptq_sweep", "notebooks/ptq_sweep.ipynb", "quide.measure.sweep:SweepParams", "dataset"),
        Experiment("mixed_precision", "notebooks/mixed_precision.ipynb",
                   "quide.measure.mixed_precision:SearchParams", "dataset"),
        Experiment("llm_case_study", "notebooks/llm_case_study.ipynb", "quide.measure.llm:LLMParams", "mmlu"),
        Experiment("ptq_ablation", "notebooks/ptq_ablation.ipynb", "quide.measure.ablation:AblationParams",
                   "dataset")):
    register(_entry)
