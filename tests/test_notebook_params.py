"""Each notebook's parameters are written once: its parameter cell's defaults are its parameter
class's defaults, and names that are not parameters are refused."""
import dataclasses
from pathlib import Path

import pytest

from quide.measure import ablation, llm, mixed_precision, sweep
from quide.notebook_params import parameter_names, parameters_of
from quide import experiments
from quide.reproduce import notebook_defaults

ROOT = Path(__file__).resolve().parents[1]
CLASSES = {"ptq_sweep.ipynb": sweep.SweepParams, "mixed_precision.ipynb": mixed_precision.SearchParams,
           "llm_case_study.ipynb": llm.LLMParams, "ptq_ablation.ipynb": ablation.AblationParams}


def test_every_notebook_is_covered():
    registered = {Path(e).name for e in experiments.notebooks() if e.startswith("notebooks/")}
    assert set(CLASSES) == registered == {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert all(experiments.of_path(ROOT / "notebooks" / name).parameters() is cls for name, cls in CLASSES.items())


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_parameter_cell_defaults_are_the_class_defaults(name):
    cls, defaults = CLASSES[name], notebook_defaults(ROOT / "notebooks" / name)
    assert sorted(defaults) == sorted(f.name for f in dataclasses.fields(cls))
    assert cls(**defaults) == cls()   # equal once validated (lists become tuples)


def test_parameter_names_refuses_a_name_that_is_not_a_parameter():
    before = {"In", "Out"}
    namespace = {"In": [], "Out": {}, "_i3": "", **{f.name: None for f in dataclasses.fields(llm.LLMParams)}}
    assert parameter_names(llm.LLMParams, namespace, before) == [f.name for f in dataclasses.fields(llm.LLMParams)]
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['sed'\]"):
        parameter_names(llm.LLMParams, {**namespace, "sed": 42}, before)
    with pytest.raises(ValueError, match=r"does not set \['model'\]"):
        parameter_names(llm.LLMParams, {k: v for k, v in namespace.items() if k != "model"}, before)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_each_notebook_builds_its_parameters_from_the_registrys_class_named_by_its_experiment(name):
    """A notebook names its experiment, not its class: the registry holds which class that is."""
    stem = Path(name).stem
    source = (ROOT / "notebooks" / f"{stem}.py").read_text()
    assert f'params = parameters_of("{stem}", globals(), names_before_parameters)' in source
    assert CLASSES[name].__name__ not in source
    cls, defaults = CLASSES[name], notebook_defaults(ROOT / "notebooks" / name)
    assert parameters_of(stem, {"In": [], **defaults}, {"In"}) == cls(**defaults)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['sed'\]"):
        parameters_of(stem, {**defaults, "sed": 42}, set())


def test_an_experiment_the_registry_lacks_is_named():
    with pytest.raises(ValueError, match="no experiments named 'ptq_swep' registered; registered: "):
        experiments.by_name("ptq_swep")
