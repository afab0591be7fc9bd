"""The reproduction scorecard on synthetic records whose verdicts are known."""
import pandas as pd

from quide import results as qr
from quide import scorecard as sc

# MNIST-like: FP32 at the paper's 99.21%, 2-bit collapsed; T makes 4 > 8 > 16 > 32 > 2 under both.
P = {32: [0.9921, 0.9925, 0.9917], 16: [0.9921, 0.9925, 0.9917], 8: [0.9920, 0.9921, 0.9918],
     4: [0.9880, 0.9870, 0.9875], 2: [0.11, 0.12, 0.10]}
T = {32: 0.8, 16: 0.6, 8: 0.5, 4: 0.5, 2: 0.5}


def sweep_records(p_shift=0.0):
    recs = []
    for bits, ps in P.items():
        for seed, p in zip((0, 42, 123), ps):
            recs.append(qr.make_record(
                experiment="ptq_sweep", model="simplecnn", dataset="mnist", data_source="MNIST", seed=seed,
                bits=bits, P=min(1.0, p + p_shift), T_ms=T[bits], T_kind="simulated", C_paper=32 / bits,
                C_true=32 / bits, num_classes=10, p_fp=ps[0] if bits == 32 else P[32][0], delta=0.19,
                provenance={}, placement="graph"))
    df = pd.DataFrame(recs)
    df["bits_label"] = df["bits"].map(qr.bits_label)
    return df


def row(card, quantity, condition="SimpleCNN / MNIST"):
    hit = card[(card["condition"] == condition) & (card["quantity"] == quantity)]
    assert len(hit) == 1, (quantity, hit)
    return hit.iloc[0]


def test_matching_records_are_reproduced():
    card = sc.scorecard(sweep_records())
    assert row(card, "P, FP32")["verdict"] == "reproduced"
    assert row(card, "Pareto Knee (argmax mean I')")["verdict"] == "reproduced"
    assert row(card, "ranking under I' (Table 4)")["verdict"] == "reproduced"
    assert row(card, "16-bit is lossless (|ΔP| < 0.01 pts)")["verdict"] == "reproduced"
    assert row(card, "2-bit collapses (P near chance)")["verdict"] == "reproduced"
    assert row(card, "I and I' disagree only near collapse")["verdict"] == "reproduced"


def test_shifted_accuracy_differs_and_says_by_how_much():
    r = row(sc.scorecard(sweep_records(p_shift=-0.02)), "P, FP32")
    assert r["verdict"] == "differs" and r["difference"] == "-2.00 pts" and "outside" in r["note"]


def test_conditions_not_run_keep_the_papers_values():
    card = sc.scorecard(sweep_records())
    elsewhere = {"SimpleCNN / CIFAR-100", "ResNet-18 / ImageNet-1K", "Llama-3-8B-Instruct / MMLU"}
    not_run = card[card["condition"].isin(elsewhere)]
    assert set(not_run["condition"]) == elsewhere and (not_run["verdict"] == "not run here").all()
    assert not_run["note"].str.startswith("reported, not reproduced here").all()
    assert (not_run["ours"] == "—").all()
    assert set(sc.verdict_counts(card).index) == {"reproduced", "within noise", "differs", "not run here"}


def test_ga_row_without_records_says_so():
    card = sc.scorecard(sweep_records(), None)
    assert row(card, "GA best configuration", "SimpleCNN / CIFAR-10")["note"] == "EXP-3 records missing"
