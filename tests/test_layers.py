"""The two layers of ``quide``: ``quide.analysis`` reads records and builds the book without torch;
``quide.measure`` (torch) builds on it. No analysis module imports a measurement module or torch,
and no quide modules import each other in a cycle."""
import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "quide"
HEAVY = ("torch", "torchvision")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
ANALYSIS = sorted(m for m in MODULES if m == "quide.analysis" or m.startswith("quide.analysis."))


def imports(name: str) -> list[tuple[str, int]]:
    """Every module ``name`` imports, at the top or inside a function: (absolute name, line). A
    ``from package import x`` counts as importing ``package.x`` where that is a quide module."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append((sub if sub in MODULES else base, node.lineno))
    return out


def test_the_layers_are_folders_and_analysis_holds_the_book_modules():
    assert (PACKAGE / "analysis" / "__init__.py").is_file() and (PACKAGE / "measure" / "__init__.py").is_file()
    for name in ("index", "results", "aggregate", "scorecard", "reruns", "verify", "protocol", "mmlu_stats"):
        assert f"quide.analysis.{name}" in MODULES, name
    for name in ("data", "models", "train", "quant", "latency", "sweep", "llm", "mmlu", "deploy"):
        assert f"quide.measure.{name}" in MODULES, name


def test_no_analysis_module_imports_a_measurement_module_or_torch():
    bad = [f"{MODULES[name].relative_to(ROOT)}:{line} imports {target}"
           for name in ANALYSIS for target, line in imports(name)
           if target.split(".")[0] in HEAVY or target == "quide.measure" or target.startswith("quide.measure.")]
    assert not bad, "the analysis layer must not need torch:\n" + "\n".join(bad)


def test_no_quide_modules_import_each_other():
    graph = {name: {t for t, _ in imports(name) if t in MODULES and t != name} for name in MODULES}
    state, stack = {}, []

    def visit(node):   # depth-first; a node met again while on the stack closes a cycle
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)):
            raise AssertionError("quide modules import each other: " + " -> ".join(cycle))


BLOCK_TORCH = textwrap.dedent("""
    import importlib, pkgutil, sys

    class NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "torchvision"):
                raise ImportError(f"{name} is not installed (blocked by the test)")

    sys.meta_path.insert(0, NoTorch())
    import quide.analysis
    names = [m.name for m in pkgutil.walk_packages(quide.analysis.__path__, "quide.analysis.")]
    for name in names:
        importlib.import_module(name)

    from quide.analysis import aggregate, results, scorecard, verify
    sweep = results.load_records(experiment="ptq_sweep")
    mps = results.load_records(experiment="mixed_precision")
    table = aggregate.table1(sweep)
    card = scorecard.scorecard(sweep, mps)
    assert len(sweep) and len(table) and len(card), (len(sweep), len(table), len(card))
    assert not any(m.split(".")[0] in ("torch", "torchvision") for m in sys.modules)
    print("imported", len(names), "analysis modules;", len(table), "table rows,", len(card), "scorecard rows")
""")


def test_the_analysis_layer_works_where_torch_cannot_be_imported():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QUIDE_RESULTS": str(ROOT / "data" / "results")}
    out = subprocess.run([sys.executable, "-c", BLOCK_TORCH], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "scorecard rows" in out.stdout


def test_simplecnn_layer_sizes_of_the_protocol_are_those_of_the_built_model():
    """The book states SimpleCNN's weights per layer from quide.analysis.protocol, without torch."""
    from quide.analysis import protocol
    from quide.measure import models, quant
    for classes, shape in ((10, (28, 28, 1)), (10, (32, 32, 3)), (100, (32, 32, 3))):
        built = quant.layer_sizes(models.build_model("simplecnn", classes, shape))
        assert protocol.simplecnn_layer_sizes(classes, shape) == built, shape
