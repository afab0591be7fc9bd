"""The ablation of the 4-bit gap: the catalogue of PTQ choices, the analysis (quide.analysis.ablation)
on hand-made records and on whatever records are committed (the d4 rule reproduces each cell's
Knee), its records under the schema and ``quide verify``, the parameters, and the whole path on CPU
(the runner and the registered notebook, smoke profile, a temporary results root)."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quide.analysis import ablation as qa
from quide.analysis import conditions, paper, schema
from quide.analysis import results as qr
from quide.analysis.verify import verify

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "data" / "results"
NOTEBOOK = ROOT / "notebooks" / "ptq_ablation.ipynb"
SEEDS = (0, 42, 123)
T = {32: 1.15, 16: 0.95, 8: 1.28, 4: 1.28, 2: 1.28}   # ms: one graph at 8, 4 and 2 bits


def synthetic(drops: dict, model: str = "resnet18_cifar", p_fp: float = 0.915, t_jitter: float = 0.01,
              d8: float = 0.001) -> list[dict]:
    """Records of every seed and bit-width for each choice in ``drops`` ({choice: 4-bit drop as a
    fraction}), P(2) at chance; T differs a little between seeds, as separate timings do."""
    delta = conditions.delta_for(model, "cifar10")
    recs = []
    for name, drop in drops.items():
        for k, seed in enumerate(SEEDS):
            jitter = 1 + t_jitter * k
            for bits in (32, 16, 8, 4, 2):
                P = {32: p_fp, 16: p_fp, 8: p_fp - d8, 4: p_fp - drop + 0.002 * (k - 1), 2: 0.1}[bits]
                t = T[bits] * jitter
                recs.append(qr.make_record(
                    experiment=qa.EXPERIMENT, model=model, dataset="cifar10", data_source="CIFAR-10 (JPEG stand-in)",
                    seed=seed, bits=bits, P=P, T_ms=t, T_ci_ms=[0.99 * t, 1.01 * t], T_method="cuda_graph",
                    T_signature=f"graph{min(bits, 8)}", T_kind="simulated", C_paper=32 / bits,
                    C_true=32 / bits, num_classes=10, p_fp=p_fp, delta=delta, provenance={"data_sha256": "d" * 64},
                    placement="graph", profile="paper", ptq_choice=name, n_test=10_000))
    return recs


# --- the catalogue --------------------------------------------------------------------------------

def test_the_catalogue_starts_at_the_sweeps_reading_and_cites_section_3_3():
    assert qa.CHOICES[0].name == qa.BASELINE and not qa.CHOICES[0].overrides
    assert len(qa.BY_NAME) == len(qa.CHOICES)
    for c in qa.CHOICES:
        assert any(f"({k})" in c.reading for k in qa.SECTION_3_3), c.name   # names the sentence it reads
    singles = {k for c in qa.CHOICES if not c.combination for k in c.overrides}
    assert {"per_channel", "observer", "fold_batchnorm", "fp_first_last", "quantize_logits", "activation_bits",
            "activation_scheme", "calib_size", "rounding", "placement"} <= singles
    assert "bn_unfolded" not in [c.name for c in qa.choices_for("simplecnn")]   # SimpleCNN has no BatchNorm
    assert "bn_unfolded" in [c.name for c in qa.choices_for("resnet18_cifar")]
    with pytest.raises(ValueError, match="unknown PTQ choice"):
        qa.choice("per_chanel")
    with pytest.raises(ValueError, match="combination"):
        qa.Choice("x", "x", {"per_channel": True, "observer": "mse"}, "(e)")


def test_the_papers_drops_come_from_its_reported_accuracies():
    assert qa.paper_drop("simplecnn") == pytest.approx(21.63)
    assert qa.paper_drop("resnet18_cifar") == pytest.approx(41.24)
    rep = paper.reported("resnet18_cifar", "cifar10")
    assert qa.paper_drop("resnet18_cifar") == 100 * (rep["P_FP"] - rep["P"][4])
    assert qa.paper_drop("simplecnn", "mnist") is None   # the paper states no P(4) there


# --- the analysis on hand-made records ------------------------------------------------------------

def test_summary_gives_each_cells_drops_bound_and_knee():
    # ResNet-18: delta 45 pts, d8 0.1 pts, so the bound is 22.55 pts
    table = qa.summary(synthetic({"baseline": 0.13, "truncate": 0.30, "act_symmetric": 0.45}))
    assert list(table["choice"]) == ["baseline", "act_symmetric", "truncate"]   # the catalogue's order
    by = table.set_index("choice")
    assert by.loc["baseline", "d4"] == pytest.approx(13.0) and by.loc["baseline", "d8"] == pytest.approx(0.1)
    assert by.loc["baseline", "bound"] == pytest.approx((45 + 0.1) / 2)
    assert by.loc["baseline", "d4_std"] == pytest.approx(0.2)
    assert list(by["knee_rule"]) == [4, 8, 8] and list(by["knee"]) == [4, 8, 8]
    assert list(by["reaches_paper"]) == [False, True, False]   # 45 and 30 pts against the paper's 41.24
    assert qa.reaching(table, "resnet18_cifar") == ["symmetric activations"]


@pytest.mark.parametrize("model", qa.MODELS)
def test_the_d4_rule_reproduces_each_synthetic_cells_knee(model):
    """Drops on both sides of the bound and close to it (d8 2 pts moves the bound 1 pt from delta/2),
    T differing between seeds by up to 5%."""
    delta = 100 * conditions.delta_for(model, "cifar10")
    bound = (delta + 2) / 2
    steps = [-10, -1, -0.3, 0.3, 1, 10]
    drops = {name: (bound + step) / 100 for name, step in zip([c.name for c in qa.CHOICES], steps)}
    table = qa.summary(synthetic(drops, model=model, t_jitter=0.025, d8=0.02))
    assert np.allclose(table["bound"], bound)
    assert qa.rule_disagreements(table).empty
    assert list(table["knee_rule"]) == [4, 4, 4, 8, 8, 8]
    assert (table["knee_rule"] == table["knee"]).all()


def test_a_cell_where_the_rule_and_the_knee_differ_is_named():
    table = qa.summary(synthetic({"baseline": 0.13, "truncate": 0.30}))
    table.loc[table["choice"] == "truncate", "knee_4v8"] = 4
    assert list(qa.rule_disagreements(table)["choice"]) == ["truncate"]


def test_no_records_give_an_empty_summary(tmp_path):
    assert qa.load(tmp_path).empty and qa.summary(pd.DataFrame()).empty and qa.cell_tables(pd.DataFrame()) == {}


def test_the_figure_draws_one_panel_per_model():
    from quide.analysis import figures
    table = qa.summary(synthetic({"baseline": 0.10, "truncate": 0.25}, model="simplecnn")
                       + synthetic({"baseline": 0.13, "truncate": 0.45}))
    fig = figures.ablation_drops(table)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
    assert all(ax.get_xlabel().startswith("4-bit drop") for ax in fig.axes)


# --- the committed records ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def committed():
    records = qa.load(COMMITTED)
    if records.empty:
        pytest.skip("no ablation records committed yet (data/results/ptq_ablation/)")
    return records[records["profile"] == "paper"]


def test_the_d4_rule_reproduces_each_committed_cells_knee(committed):
    table = qa.summary(committed)
    assert len(table) >= 1
    off = qa.rule_disagreements(table)
    assert off.empty, off[["model", "choice", "d4", "bound", "knee_rule", "knee", "knee_4v8"]]
    assert set(table["n_seeds"]) == {3}   # the paper's seeds
    assert set(committed["bits"]) == {32, 16, 8, 4, 2}


def test_committed_cells_share_one_t_at_8_4_and_2_bits(committed):
    for _, g in committed.groupby(["model", "seed", "ptq_choice"]):
        low = g[g["bits"].isin([8, 4, 2])]
        assert low["T_ms"].nunique() == 1 and low["T_signature"].nunique() == 1


# --- records, schema and verify -------------------------------------------------------------------

def _write(root, recs, name):
    params = {"experiment": qa.EXPERIMENT, "ptq_choice": name, "seed": recs[0]["seed"]}
    return qr.write_records(recs, qa.EXPERIMENT, qr.named_run(f"x-seed{recs[0]['seed']}-{name}", params), root=root,
                            run_params=params)


def test_ablation_records_of_several_choices_verify_clean(tmp_path):
    recs = synthetic({"baseline": 0.13, "truncate": 0.30})
    for name in ("baseline", "truncate"):
        for seed in SEEDS:
            _write(tmp_path, [r for r in recs if r["ptq_choice"] == name and r["seed"] == seed], name)
    n, problems = verify(tmp_path)
    assert n == len(recs) and problems == []   # a choice is a condition of its own, not a variant run
    assert len(qa.summary(qa.load(tmp_path))) == 2


def test_an_ablation_record_names_its_choice():
    rec = synthetic({"baseline": 0.13})[0]
    assert schema.kind_of(rec) is schema.AblationRecord and schema.problems(rec) == []
    del rec["ptq_choice"]
    assert schema.problems(rec) == ["missing keys ['ptq_choice']"]
    with pytest.raises(ValueError, match="not in the ptq_ablation record schema"):
        qr.make_record(**{k: v for k, v in synthetic({"baseline": 0.1})[0].items()
                          if k in ("experiment", "model", "dataset", "data_source", "seed", "bits", "P", "T_ms",
                                   "T_kind", "C_paper", "C_true", "num_classes", "p_fp", "delta", "provenance",
                                   "ptq_choice")}, search="ga")


# --- the parameters (torch) -----------------------------------------------------------------------

def test_params_expand_all_and_refuse_what_cannot_run():
    from quide.measure.ablation import AblationParams
    p = AblationParams(model="simplecnn", seed=0)
    assert p.seed == (0,) and p.choices == tuple(c.name for c in qa.choices_for("simplecnn"))
    assert AblationParams(choices="truncate").choices == ("truncate",)
    for kwargs, message in [({"choices": ["bn_unfolded"], "model": "simplecnn"}, "change nothing for simplecnn"),
                            ({"choices": ["nope"]}, "parameter 'choices'"),
                            ({"choices": ["truncate", "truncate"]}, "parameter 'choices'"),
                            ({"bits": [32, 16, 8, 2]}, "must hold 32, 8 and 4"),
                            ({"seed": [0, 0]}, "parameter 'seed'"), ({"seed": -1}, "parameter 'seed'"),
                            ({"delta": True}, "not a bool"), ({"dataset": "mnist"}, "resnet18_cifar runs on"),
                            ({"profile": "fast"}, "parameter 'profile'"), ({"experiment": "a/b"}, "experiment")]:
        with pytest.raises(ValueError, match=message):
            AblationParams(**kwargs)


def test_each_choice_sets_exactly_its_fields_of_the_sweeps_ptq_config():
    import dataclasses
    from quide.measure.ablation import AblationParams
    from quide.measure.quant import PTQConfig
    default = dataclasses.asdict(PTQConfig(bits=4))
    p = AblationParams()
    for c in qa.CHOICES:
        config = dataclasses.asdict(p.ptq_config(c.name, 4))
        assert {k for k in default if config[k] != default[k]} == set(c.overrides), c.name
    smoke = AblationParams(profile="smoke", device="cpu")
    assert smoke.ptq_config("calib5000", 4).calib_size == 64 and smoke.ptq_config("calib32", 4).calib_size == 32
    assert p.sweep_params().calib_size == 5000   # the runner checks the largest draw fits the data


def test_a_run_identity_differs_by_choice_and_seed_only():
    from quide.measure.ablation import AblationParams
    p = AblationParams(model="simplecnn", device="cpu")
    a, b, c = p.resolved(0, "baseline"), p.resolved(42, "baseline"), p.resolved(0, "truncate")
    assert qr.run_variant(a) == qr.run_variant(b) and qr.run_variant(a) != qr.run_variant(c)
    assert a["ptq_config"]["rounding"] == "nearest" and c["ptq_config"]["rounding"] == "truncate"
    assert p.run_id(0, "truncate").startswith("simplecnn-cifar10-seed0-truncate-paper-")


@pytest.mark.slow
@pytest.mark.parametrize("model", qa.MODELS)
def test_every_choice_runs_one_graph_at_8_4_and_2_bits(model):
    """What the records' T_note says: under each choice the models at 8, 4 and 2 bits execute the
    same graph (quide.measure.latency.graph_signature), so one timing serves all three."""
    import torch
    from quide.measure.ablation import AblationParams
    from quide.measure.latency import graph_signature
    from quide.measure.models import build_model
    from quide.measure.quant import quantize
    torch.manual_seed(0)
    net = build_model(model, 10, (32, 32, 3)).eval()
    x = torch.randn(8, 3, 32, 32)
    p = AblationParams(model=model, profile="smoke", device="cpu")
    for name in p.choices:
        signatures = set()
        for bits in (8, 4, 2):
            q = quantize(net, p.ptq_config(name, bits), x)
            signatures.add(graph_signature(lambda: q(x)))
            with torch.inference_mode():
                assert torch.isfinite(q(x)).all(), (name, bits)
        assert len(signatures) == 1, name


# --- the whole path on CPU ------------------------------------------------------------------------

def test_the_committed_config_plans_one_run_per_model_and_seed(cifar10, tmp_path, monkeypatch):
    from quide.measure import ablation as qma
    from quide.measure.data import load_dataset
    from quide.reproduce import plan
    monkeypatch.setenv("QUIDE_CHECKPOINTS", str(tmp_path))
    runs = plan(ROOT / "reproduce" / "ablation.toml", root=ROOT, check_devices=False)
    assert sorted((r.parameters["model"], r.parameters["seed"]) for r in runs) == sorted(
        (m, s) for m in qa.MODELS for s in SEEDS)
    assert {r.experiment for r in runs} == {qa.EXPERIMENT} and all(r.notebook == NOTEBOOK for r in runs)
    assert all(r.parameters["profile"] == "paper" and not r.checkpoint_found for r in runs)
    # each run loads its seed's sweep checkpoint, which `--train-first` trains before the runs start
    from quide.measure.sweep import checkpoint_of
    planned = {(r.parameters["model"], r.parameters["seed"]): r
               for r in plan(ROOT / "reproduce" / "ablation.toml", root=ROOT, check_devices=False,
                             overrides={"device": "cpu"})}
    run = planned[("simplecnn", 42)]
    p = qma.AblationParams(model="simplecnn", seed=42, device="cpu")
    assert run.checkpoint == str(checkpoint_of(p.sweep_params(), load_dataset("cifar10")))
    assert {k: run.training[k] for k in ("model", "dataset", "seed")} == {"model": "simplecnn", "dataset": "cifar10", "seed": 42}
    assert len({r.checkpoint for r in planned.values()}) == len(planned)   # one checkpoint per model and seed


@pytest.mark.slow
def test_the_runner_runs_the_smoke_profile_into_a_results_root(cifar10, tmp_path, monkeypatch):
    """``quide reproduce`` runs the registered notebook on CPU (smoke profile: a subset, one epoch) for
    two seeds and three choices, ``quide collect`` puts its records into a results root: they verify
    clean and the d4 rule gives every cell's Knee."""
    from quide.reproduce import collect, reproduce
    monkeypatch.setenv("QUIDE_CHECKPOINTS", str(tmp_path / "ckpt"))
    choices = ["baseline", "first_last_fp", "act_symmetric"]
    config = tmp_path / "smoke.toml"
    parameters = ('model = "simplecnn", dataset = "cifar10", profile = "smoke", device = "cpu", seed = [0, 42], '
                  f'choices = {json.dumps(choices)}, bits = [32, 8, 4]')   # no FP16: slow on a CPU
    config.write_text(f'[[experiment]]\nname = "ptq_ablation"\nparameters = {{ {parameters} }}\n')
    outcomes = reproduce(config, tmp_path / "out", workers=1, root=ROOT, log=None)
    assert [o["status"] for o in outcomes] == ["done"], outcomes
    collect(tmp_path / "out", tmp_path / "results")
    files = sorted((tmp_path / "results" / qa.EXPERIMENT).glob("*.json"))
    assert {f.stem.rsplit("-", 1)[0] for f in files} == {f"simplecnn-cifar10-seed{s}-{c}-smoke"
                                                        for s in (0, 42) for c in choices}
    n, problems = verify(tmp_path / "results")
    assert n == 2 * len(choices) * 3 and problems == []
    # every record's P is recomputed by verify from the predictions stored beside it
    assert all(r.get("predictions_file") for f in files for r in json.loads(f.read_text()))
    records = qa.load(tmp_path / "results")
    assert set(records["T_kind"]) == {"simulated"} and records["T_note"].str.contains("T(8) = T(4)", regex=False).all()
    first_last = records[(records["ptq_choice"] == "first_last_fp") & (records["bits"] == 4)]
    assert (first_last["C_paper"] == 8).all() and (first_last["C_true"] < 8).all()
    table = qa.summary(records)
    assert len(table) == len(choices) and qa.rule_disagreements(table).empty
    executed = next((tmp_path / "out" / "runs").glob("*/*.ipynb")).read_text()
    assert "the d4 rule gives every cell's Knee" in executed
    for _, g in records.groupby(["seed", "ptq_choice"]):
        assert g.loc[g["bits"] == 32, "P"].iloc[0] == g["p_fp"].iloc[0]
        low = g[g["bits"].isin([8, 4])]
        assert low["T_ms"].nunique() == 1   # one graph at 8 and 4 bits, timed once
