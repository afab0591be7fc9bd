"""The headline verdicts (quide.analysis.verdict) and the scorecard rows behind them: Claim 3 as the
paper states it, the d4 rule, the P/T split of index rows, the host-timed T, independent findings,
and the paper's self-contradictions."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quide.analysis import conditions, paper, results
from quide.analysis import results as qr
from quide.analysis import scorecard as sc
from quide.analysis import stability as qst
from quide.analysis import verdict as qv
from quide.analysis.index import ranking

FEW = qst.StabilityConfig(draws=50)
COMMITTED = Path(__file__).resolve().parents[1] / "data" / "results"   # the records the book reads
CIFAR_T = {32: 0.1, 16: 0.07, 8: 0.12, 4: 0.12, 2: 0.12}


def _sweep(p4_drop, model="simplecnn", delta=0.30, T=CIFAR_T):
    """CIFAR-10-like records: FP32 at 78%, 8-bit 0.05 pts below, 4-bit ``p4_drop`` below, 2-bit at chance."""
    recs = [qr.make_record(
        experiment="ptq_sweep", model=model, dataset="cifar10", data_source="CIFAR-10 (JPEG stand-in)", seed=seed,
        bits=bits, P=p, T_ms=T[bits], T_kind="simulated", C_paper=32 / bits, C_true=32 / bits, num_classes=10,
        p_fp=0.78, delta=delta, provenance={}, placement="graph", n_test=10_000, T_host_ms=3 * T[bits])
        for seed in (0, 42, 123)
        for bits, p in ((32, 0.78), (16, 0.78), (8, 0.7795), (4, 0.78 - p4_drop), (2, 0.10))]
    df = pd.DataFrame(recs)
    df["bits_label"] = df["bits"].map(qr.bits_label)
    return df


def _row(card, quantity, condition="SimpleCNN / CIFAR-10"):
    hit = card[(card["condition"] == condition) & (card["quantity"] == quantity)]
    assert len(hit) == 1, (quantity, hit)
    return hit.iloc[0]


@pytest.fixture(scope="module")
def committed():
    sweep = results.load_records(COMMITTED, "ptq_sweep")
    sweep = sweep[sweep["profile"] == "paper"]
    mps = results.load_records(COMMITTED, "mixed_precision")
    mps = mps[mps["profile"] == "paper"]
    card = sc.scorecard(sweep, mps, FEW)
    return sweep, mps, card


# --- item 1: Claim 3 as the paper states it ------------------------------------------------------

def _old_rule(order_raw, order_gated):
    """The rule the scorecard applied before: I and I' disagree, and agree once the bit-widths at
    I' = 0 (here 2) are left out."""
    keep = lambda order: [b for b in order if b != 2]   # noqa: E731
    return order_raw != order_gated and keep(order_raw) == keep(order_gated)


def test_the_papers_cifar10_orders_fail_the_old_rule_and_the_new_rows_follow_the_records():
    rep = paper.reported("simplecnn", "cifar10")
    assert not _old_rule(rep["order_I"], rep["order_I_gated"])   # the paper's own claim failed the old row
    like_paper = sc.scorecard(_sweep(p4_drop=0.20), config=FEW)   # I prefers 4, I' 8, 4-bit above the gate
    assert not like_paper["quantity"].str.contains("only near collapse").any()
    r = _row(like_paper, "I' overturns I's best bit-width")
    assert r["verdict"] == "reproduced" and r["paper"].startswith("yes: 4 under I, 8 under I'")
    ours_like = _row(sc.scorecard(_sweep(p4_drop=0.10), config=FEW), "I' overturns I's best bit-width")
    assert ours_like["verdict"] == "differs (data)" and ours_like["ours"] == "best under I 4, under I' 4"
    assert "one graph" in ours_like["causes"]
    resnet = sc.scorecard(_sweep(p4_drop=0.13, model="resnet18_cifar", delta=0.45), config=FEW)
    assert _row(resnet, "I' overturns I between 4 and 8 bits", "ResNet-18 / CIFAR-10")["verdict"] == "differs (data)"


def test_mnist_is_checked_for_identical_orders(committed):
    _, _, card = committed
    r = _row(card, "Claim 3: I and I' rank the bit-widths identically", "SimpleCNN / MNIST")
    assert r["paper"] == "yes: [4, 8, 16, 32, 2] under both" and r["verdict"] == "differs (data)"   # I ranks 2 above 32


# --- the headline verdicts follow the records ---------------------------------------------------

def test_the_summary_changes_when_a_record_it_depends_on_changes():
    def knee_cell(p4_drop):
        claims = {c.key: c for c in qv.headline(_sweep(p4_drop), config=FEW)}
        return claims["knee"].cells[("simplecnn", "cifar10")], claims
    mild, claims = knee_cell(0.10)       # d4 = 10 < (30 + 0.05)/2: Knee 4, the paper's is 8
    assert mild.verdict == qv.FAILS and "ours 4" in mild.why and "% of 50 draws" in mild.why
    assert "a 4-bit drop above 15.0 pts on CIFAR-10 (ours 10.00)" in claims["knee"].needed
    assert claims["orders"].cells[("simplecnn", "cifar10")].verdict == qv.FAILS
    steep, claims = knee_cell(0.20)      # d4 = 20 > 15.03: Knee 8, as the paper's
    assert steep.verdict == qv.HOLDS and "ours 8" in steep.why
    assert claims["orders"].cells[("simplecnn", "cifar10")].verdict == qv.HOLDS
    assert claims["llm"].verdict == qv.UNTESTABLE and claims["knee"].cells[("simplecnn", "cifar100")].verdict == \
        qv.UNTESTABLE
    summary = qv.summary(list(claims.values()))
    assert set(summary["verdict"]) <= set(qv.VERDICTS) and len(summary) == len(claims)
    html = qv.summary_html(list(claims.values()))
    assert 'href="scorecard.html#claim-knee"' in html and "table-layout:fixed" in html and "Knee moves" in html


def test_the_knee_claim_fails_where_our_knee_does_not_move(committed):
    sweep, mps, card = committed
    claims = {c.key: c for c in qv.headline(sweep, mps, config=FEW, card=card)}
    knee = claims["knee"]
    assert knee.verdict == qv.FAILS and "4 bits on every condition run" in knee.why
    assert "above 15.0 pts on CIFAR-10" in knee.needed and "above 22.5 pts on ResNet-18 CIFAR-10" in knee.needed
    assert claims["ga"].cells[("simplecnn", "cifar10")].verdict != qv.HOLDS   # our GA returns uniform 4-4-4-4
    assert "uniform 8-8-8-8" in claims["ga"].why and "75.8%" in claims["ga"].why
    assert claims["drop_4bit"].verdict == qv.FAILS and "41 pts" in claims["drop_4bit"].needed
    grid = qv.grid(list(claims.values()))
    assert list(grid.columns) == list(qv.GRID.values()) and grid.loc[knee.claim, "MNIST"] == qv.HOLDS
    assert {"latency", "acp_als", "ga", "knee"} <= set(claims)   # the claims the old page had no row for


# --- item 3: the d4 rule and the P/T split --------------------------------------------------------

def test_the_d4_rule_reproduces_every_knee_of_the_records_and_of_the_papers_numbers(committed):
    sweep, _, _ = committed
    t1 = __import__("quide.analysis.aggregate", fromlist=["table1"]).table1(sweep[sweep["placement"] == "graph"])
    seen = 0
    for (model, dataset), t in t1.groupby(["model", "dataset"]):
        t = t.assign(bits=t["bits"].astype(int))
        knee = int(t.loc[t["knee"], "bits"].iloc[0])
        assert qv.d4_rule_of_table(t).knee == knee, (model, dataset)
        seen += 1
    assert seen >= 4
    stated = {k: qv.paper_d4_rule(*k) for k in conditions.CONDITIONS if paper.reported(*k).get("knee")}
    ruled = {k: r for k, r in stated.items() if r is not None}
    assert set(ruled) == {("simplecnn", "cifar10"), ("simplecnn", "cifar100"), ("resnet18_cifar", "cifar10"),
                          ("resnet18_imagenet", "imagenet")}   # the conditions whose P(4) the paper states
    for k, rule in ruled.items():
        assert rule.knee == paper.reported(*k)["knee"], k
    resnet = ruled[("resnet18_cifar", "cifar10")]
    assert (round(resnet.d4, 1), round(resnet.bound, 1)) == (41.2, 22.5)
    assert round(ruled[("simplecnn", "cifar10")].d4, 1) == 21.6 and round(ruled[("simplecnn", "cifar100")].d4, 1) == 28.4


def test_an_index_ratio_is_split_into_a_p_and_a_t_factor(committed):
    _, _, card = committed
    i4 = _row(card, "I', 4-bit", "ResNet-18 / CIFAR-10")
    assert i4["verdict"] == "differs (data)" and "P factor 8.69x × log2(T+1) factor 3.87x" in i4["note"]
    i8 = _row(card, "I', 8-bit", "ResNet-18 / CIFAR-10")
    assert i8["verdict"] == "differs (hardware-bound)" and i8["causes"] == "GPU"
    knee = _row(card, "Pareto Knee (argmax mean I')", "ResNet-18 / CIFAR-10")
    assert "d4 = 13.00 pts < (δ + d8)/2 = 22.50 pts" in knee["note"] and "one graph" in knee["causes"]
    assert "P and T both enter" not in " ".join(sc.CAUSES.values())
    ga_i = _row(card, "GA best: I'")
    assert ga_i["verdict"] == "differs (data)" and ga_i["causes"] == "config" and "ours is 4-4-4-4" in ga_i["note"]


# --- item 4: host-timed T and scale-free ratios ---------------------------------------------------

def test_latency_rows_show_the_host_timed_t_and_scale_free_ratios(committed):
    _, _, card = committed
    t8 = _row(card, "T (ms), 8-bit", "ResNet-18 / CIFAR-10")
    assert "graph replay" in t8["ours"] and "host" in t8["ours"] and "host-timed" in t8["note"]
    ratio = _row(card, "T(8)/T(16), scale-free", "ResNet-18 / CIFAR-10")
    assert ratio["paper"] == "2.63" and ratio["ours"] == "1.35 graph replay; 1.27 host"
    assert "host" in _row(card, "T max/min over bit-widths, scale-free")["ours"]


# --- item 5: independent findings ------------------------------------------------------------------

def test_correlated_rows_count_as_one_finding_and_vacuous_rows_are_marked(committed):
    _, _, card = committed
    found = sc.independent_findings(card).set_index("finding")
    assert found.loc["ResNet-18 / CIFAR-10: P at 4 bits", "rows"] == 3          # P, ΔP and the stated drop
    assert found.loc["ResNet-18 / CIFAR-10: T at 8, 4 and 2 bits", "rows"] == 3  # one graph's timing
    assert found.loc["ResNet-18 / CIFAR-10: std of P over seeds, FP32", "near_vacuous"]
    assert not card[card["quantity"].str.startswith(("I, ", "I', "))]["finding"].astype(bool).any()
    assert len(found) < (card["verdict"] != "not run here").sum()
    merged = sc.collapse_hardware(card)
    hw = merged[(merged["verdict"] == "differs (hardware-bound)") & (merged["group"] == "latency")]
    assert hw["condition"].is_unique and hw["quantity"].str.startswith("hardware-bound (").all()
    page = sc.detail_html(card)
    assert page.count("<details") == card["group"].nunique() and 'id="claim-knee"' in page


# --- item 6: the paper's self-contradictions -------------------------------------------------------

def test_the_new_contradictions_are_listed_and_computed():
    table = paper.inconsistency_table()
    text = " | ".join(table["check (from the reported values)"]) + " | ".join(table["the paper says"])
    assert "above the GA's 0.983 for any P(8) > 75.8%" in text
    assert "79.81 - 58.18 = 21.63 pts; stated 21 pp" in text
    assert "recomputed I'(4) = 0.0651 to 0.0655 over the rounding of P; stated 0.064" in text
    assert "mean inference latency per forward pass" in text and "six settings" in text


def test_grid_figure_has_a_cell_per_claim_and_condition():
    claims = qv.headline(_sweep(0.10), config=FEW)
    fig = qv.grid_figure(claims)
    ax = fig.axes[0]
    assert len(ax.get_yticklabels()) == len(claims) and len(ax.get_xticklabels()) == len(qv.GRID)
    assert set(qv.COLOURS) == set(qv.VERDICTS) and np.isfinite(len(qv.SYMBOLS))
    assert ranking([4, 8], [1.0, 2.0]) == [8, 4]
