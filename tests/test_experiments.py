"""The experiment registry (quide.experiments): what the runner and the CLI read, without torch."""
import subprocess
import sys
from pathlib import Path

import pytest

from quide import experiments
from quide.experiments import Experiment
from quide.reproduce import ConfigError, plan

ROOT = Path(__file__).resolve().parents[1]


def test_the_packages_experiments_are_its_notebooks_and_no_test_fixture():
    assert sorted(e for e in experiments.notebooks() if not e.startswith("tests/")) == sorted(
        f"notebooks/{p.name}" for p in (ROOT / "notebooks").glob("*.ipynb"))
    source = (ROOT / "quide" / "experiments.py").read_text() + (ROOT / "quide" / "reproduce.py").read_text()
    assert "fixtures" not in source and "sleepy" not in source


def test_the_registry_loads_without_torch():
    code = ("import sys\nclass Block:\n    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('torch', 'torchvision'): raise ImportError('blocked: ' + name)\n"
            "sys.meta_path.insert(0, Block())\nfrom quide import experiments\n"
            "print(sorted(e.name for e in map(experiments.by_notebook, experiments.notebooks())))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ptq_sweep" in out.stdout and "llm_case_study" in out.stdout


@pytest.mark.parametrize("kwargs, message", [
    ({"data": "imagenet"}, "data must be one of"),
    ({"parameter_class": "quide.measure.sweep.SweepParams"}, "must be 'module:Class'"),
    ({"notebook": "/abs/x.ipynb"}, "relative path to an .ipynb"),
])
def test_a_bad_entry_is_refused(kwargs, message):
    entry = {"name": "x", "notebook": "notebooks/x.ipynb", "parameter_class": None, "data": "none", **kwargs}
    with pytest.raises(ValueError, match=message):
        Experiment(**entry)


def test_a_second_entry_for_a_registered_notebook_is_refused():
    with pytest.raises(ValueError, match="registered already"):
        experiments.register(Experiment("other", "notebooks/ptq_sweep.ipynb", None, "none"))


def test_an_unregistered_notebook_is_refused_by_the_runner(tmp_path):
    copy = ROOT / "notebooks" / "ptq_sweep.ipynb"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[[experiment]]\nname = "x"\nnotebook = "{Path("tests/fixtures/not_registered.ipynb")}"\n')
    (ROOT / "tests" / "fixtures" / "not_registered.ipynb").write_text(copy.read_text())
    try:
        with pytest.raises(ConfigError, match="not a known experiment notebook"):
            plan(cfg, root=ROOT)
    finally:
        (ROOT / "tests" / "fixtures" / "not_registered.ipynb").unlink()


def test_each_experiment_names_what_identifies_its_data():
    kinds = {e.name: e.data for e in map(experiments.by_notebook, experiments.notebooks())}
    assert kinds["ptq_sweep"] == kinds["mixed_precision"] == "dataset" and kinds["llm_case_study"] == "mmlu"
