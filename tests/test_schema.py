"""The declared record schema (quide.analysis.schema): its committed JSON Schema, every committed
record against it, the code that makes, writes and reads records using it, and one gate per run."""
import json
from pathlib import Path

import pytest

from quide.analysis import pthresh, schema
from quide.analysis import results as qr
from quide.analysis.verify import check_record, verify

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "data" / "results"
ROOTS = [RESULTS, *sorted(p for p in (ROOT / "data" / "reruns").iterdir() if p.is_dir())]


def _record(**changes):
    fields = dict(experiment="ptq_sweep", model="simplecnn", dataset="mnist", data_source="MNIST", seed=0,
                  bits=8, P=0.99, T_ms=0.5, T_kind="simulated", C_paper=4.0, C_true=3.9, num_classes=10,
                  p_fp=0.992, delta=0.19, provenance={}, placement="graph", n_test=10000)
    return qr.make_record(**{**fields, **changes})


def test_the_committed_json_schema_is_the_one_the_code_generates():
    committed = (RESULTS / schema.SCHEMA_FILE).read_text()
    assert committed == schema.json_schema_text(), (
        "data/results/record.schema.json is stale: run python -m quide.analysis.schema")


def test_every_declared_key_has_a_unit_a_meaning_and_a_json_type():
    for cls in (schema.Record, *schema.KINDS.values()):
        for name, key in schema.declared(cls).items():
            assert key.unit and key.doc, (cls.__name__, name)
    kinds = schema.json_schema()["$defs"]
    assert kinds["PtqSweepRecord"]["properties"]["P"] == {"type": "number", "description": "accuracy on the test set (fraction)"}
    assert kinds["MixedPrecisionRecord"]["required"][-1] == "search"
    assert "rank_of_n" in kinds["MixedPrecisionRecord"]["properties"] and "n_shot" in kinds["LlmRecord"]["properties"]


@pytest.mark.parametrize("root", ROOTS, ids=[str(r.relative_to(ROOT)) for r in ROOTS])
def test_every_committed_record_validates_against_the_schema(root):
    """Results and every rerun: each record holds its kind's keys, of their types, and no other."""
    n, wrong = 0, []
    for path in qr.record_files(root):
        records = json.loads(qr.read_json_bytes(path))
        assert isinstance(records, list) and records, path
        for i, rec in enumerate(records):
            n += 1
            wrong += [f"{path.relative_to(root)} [{i}]: {p}" for p in schema.problems(rec)]
    assert n > 0 and not wrong, wrong[:20]


def test_committed_records_validate_against_the_committed_json_schema():
    """The JSON file says what the dataclasses say: the first record of each committed file (and one
    of each search) validates with a JSON Schema validator; a record of the wrong type does not."""
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json.loads((RESULTS / schema.SCHEMA_FILE).read_text()))
    seen = set()
    for root in ROOTS:
        for path in qr.record_files(root):
            records = json.loads(qr.read_json_bytes(path))
            kinds = {(r["experiment"], r.get("search")) for r in records} - seen
            sample = [next(r for r in records if (r["experiment"], r.get("search")) == k) for k in kinds] or records[:1]
            seen |= kinds
            validator.validate(sample)
    assert {"ptq_sweep", "mixed_precision", "llm_case_study"} <= {k for k, _ in seen}
    bad = [{**_record(), "seed": "0"}]
    assert not validator.is_valid(bad) and not validator.is_valid([{**_record(), "colour": "red"}])


def test_make_record_refuses_what_the_schema_does_not_declare():
    with pytest.raises(ValueError, match=r"make_record: keys \['colour'\] are not in the ptq_sweep record schema"):
        _record(colour="red")
    with pytest.raises(ValueError, match=r"make_record: n_test = '10000' is not an int"):
        _record(n_test="10000")
    with pytest.raises(ValueError, match=r"make_record: placement = 3 is neither None nor a string"):
        _record(placement=3)


def test_write_records_refuses_a_record_missing_a_key_of_its_kind(tmp_path):
    rec = _record(experiment="mixed_precision", bits=[8, 4])   # a configuration, its search not named yet
    with pytest.raises(ValueError, match=r"record \[0\] of run: missing keys \['search'\]"):
        qr.write_records([rec], "mixed_precision", "run", root=tmp_path)
    qr.write_records([{**rec, "search": "exhaustive"}], "mixed_precision", "run", root=tmp_path)


def test_load_records_names_the_file_the_record_and_the_field(tmp_path):
    qr.write_records([_record(), _record(bits=4, C_paper=8.0)], "ptq_sweep", "run", root=tmp_path)
    path = tmp_path / "ptq_sweep" / "run.json"
    recs = json.loads(path.read_text())
    recs[1]["T_ms"] = "0.5"
    path.write_text(json.dumps(recs))
    with pytest.raises(ValueError, match=r"ptq_sweep/run.json \[1\]: T_ms = '0.5' is not a finite number"):
        qr.load_records(tmp_path)


def test_verify_lists_schema_problems_by_field():
    rec = _record()
    assert check_record(rec) == []
    assert check_record({**rec, "T_kind": "measured"}) == [
        "T_kind = 'measured' is not one of ('simulated', 'deployed')"]
    assert check_record({**rec, "colour": "red"}) == [
        "keys ['colour'] are not in the ptq_sweep record schema (quide.analysis.schema.PtqSweepRecord)"]
    other = {**rec, "experiment": "x", "colour": "red"}   # an undeclared experiment: its common keys only
    assert check_record(other) == []


def test_the_schema_file_beside_the_records_is_not_a_record(tmp_path):
    qr.write_records([_record()], "ptq_sweep", "run", root=tmp_path)
    (tmp_path / schema.SCHEMA_FILE).write_text(schema.json_schema_text())
    assert verify(tmp_path) == (1, [])
    assert len(qr.load_records(tmp_path)) == 1


# --- one gate per run, decided before its records are made ------------------------------------

@pytest.mark.parametrize("setting, expected", [
    (None, pthresh.Gate(0.9 - 0.19, delta=0.19)),
    (0.6, pthresh.Gate(0.6)),
    ("auto:curve", pthresh.Gate((0.88 + 0.3) / 2, rule="curve()")),
    ("auto:relative", pthresh.Gate(0.99 * 0.9, rule="relative(q=0.99)")),
])
def test_decide_gates_by_delta_a_fixed_value_or_a_rule(setting, expected):
    gate = pthresh.decide(setting, delta=0.19, num_classes=10, p_fp=0.9, accuracy_by_bits={32: 0.9, 8: 0.88, 4: 0.3},
                          n_test=1000)
    assert (gate.delta, gate.rule) == (expected.delta, expected.rule)
    assert gate.p_thresh == pytest.approx(expected.p_thresh)


def test_decide_refuses_no_gate_and_a_bad_one():
    with pytest.raises(ValueError, match="no gate: give delta"):
        pthresh.decide(None, num_classes=10, p_fp=0.9)
    with pytest.raises(ValueError, match=r"p_thresh must be a fraction in \[0, 1\] \(not a percent\); got 60"):
        pthresh.decide(60, num_classes=10, p_fp=0.9)


def test_a_fixed_gate_leaves_no_delta_in_the_record():
    """The paper's LLM case (Pthresh 60%): the record's delta is None, so verify does not re-derive
    Pthresh from a delta that did not set it."""
    rec = _record(p_thresh=0.6, delta=None)
    assert rec["p_thresh"] == 0.6 and rec["delta"] is None and check_record(rec) == []


def test_a_delta_gate_keeps_its_delta_and_must_be_eq4s():
    """A run passes its gate in as ``**gate.record_fields()``: Eq. 4's gate gives both p_thresh and
    delta, and the record keeps the delta (verify re-derives Pthresh from it); a Pthresh that is not
    max(1/K, P_FP - delta) for that delta is refused."""
    gate = pthresh.decide(None, delta=0.19, num_classes=10, p_fp=0.992)
    rec = _record(**gate.record_fields())
    assert rec["delta"] == 0.19 and rec["p_thresh"] == pytest.approx(0.802) and check_record(rec) == []
    with pytest.raises(ValueError, match="not max"):
        _record(p_thresh=0.6, delta=0.19)


def test_no_experiment_rewrites_its_records_after_the_fact():
    assert not hasattr(pthresh, "regate")
    for name in ("sweep", "mixed_precision", "llm"):
        source = (ROOT / "quide" / "measure" / f"{name}.py").read_text()
        assert "regate" not in source and ("pthresh.decide" in source or "p_thresh=params.p_thresh" in source), name


@pytest.mark.slow
def test_a_sweep_gated_by_the_curve_rule_verifies(mnist_trained, tmp_path):
    """The sweep decides the curve rule's gate from every bit-width's P, then makes its records."""
    from quide.measure import sweep as qsweep
    from quide.measure.latency import TimerConfig
    small, splits, trained = mnist_trained
    config = qsweep.SweepConfig(bits=(32, 8, 2), warmup=1, timed=2, timer=TimerConfig(rounds=6, passes=1, warmup=1))
    records = qsweep.ptq_sweep(trained.model, small, splits, model_name="simplecnn", seed=0, delta=0.19,
                               config=config, train_meta=trained.meta, extra={"profile": "smoke"}, p_thresh="auto:curve")
    P = {r["bits"]: r["P"] for r in records}
    drops = {(32, 8): P[32] - P[8], (8, 2): P[8] - P[2]}
    hi, lo = max(drops, key=drops.get)
    assert all(r["p_thresh"] == pytest.approx((P[hi] + P[lo]) / 2) for r in records)
    assert all(r["delta"] is None and r["p_thresh_rule"] == "curve()" for r in records)
    qr.write_records(records, "ptq_sweep", "run", root=tmp_path)
    assert verify(tmp_path) == (3, [])
