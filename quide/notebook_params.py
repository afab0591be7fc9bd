"""A notebook's parameters, written once: the cell tagged ``parameters`` sets them, and its
parameter class (``SweepParams``, ``SearchParams``, ``LLMParams``), which the experiment registry
(``quide.experiments``) names, names them.

The notebook records ``set(globals())`` in the cell before its parameters; after papermill's
injected cell, :func:`parameters_of` looks its class up in the registry, and
:func:`parameter_names` refuses any new name that is not a field of the class (``-p sed 42`` fails
naming ``sed``), so the notebook builds its parameters in one line::

    params = parameters_of("ptq_sweep", globals(), names_before_parameters)

Each class calls :func:`refuse_bools` first when it validates itself: to Python True is the int 1,
so ``delta = true`` in a config or ``-p delta True`` would otherwise run as delta 1.0.
"""
from __future__ import annotations

import dataclasses
import re

NUMERIC_TYPE = re.compile(r"\b(int|float)\b")   # in a field's annotation: "int", "float | None", ...


def parameter_names(params_class, namespace: dict, names_before: set) -> list[str]:
    """The fields of ``params_class``, after checking that every name ``namespace`` gained since
    ``names_before`` (underscored names aside: IPython's history) is one of them and that each is set."""
    fields = [f.name for f in dataclasses.fields(params_class)]
    new = sorted(n for n in namespace if n not in names_before and not n.startswith("_"))
    unknown = [n for n in new if n not in fields]
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}: this notebook takes {fields} "
                         f"({params_class.__name__})")
    missing = [f for f in fields if f not in namespace]
    if missing:
        raise ValueError(f"the parameters cell does not set {missing} ({params_class.__name__})")
    return fields


def refuse_bools(params) -> None:
    """ValueError naming the first numeric parameter of the dataclass ``params`` (a field annotated
    int or float, None or another type allowed beside) that holds True or False."""
    for field in dataclasses.fields(params):
        value = getattr(params, field.name)
        if isinstance(value, bool) and NUMERIC_TYPE.search(str(field.type)):
            raise ValueError(f"parameter {field.name!r}: must be a number, not a bool; got {value!r}")


def parameters_of(experiment: str, namespace: dict, names_before: set):
    """The parameters of the registered ``experiment``: its class (``quide.experiments``) built
    from the names ``namespace`` (a notebook's globals) set, after :func:`parameter_names`' checks."""
    from .experiments import by_name
    params_class = by_name(experiment).parameters()
    keys = parameter_names(params_class, namespace, names_before)
    return params_class(**{k: namespace[k] for k in keys})
