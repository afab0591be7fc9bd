"""`quide verify`: the committed records check out; a tampered copy is caught, naming file and key."""
import json
import math
import shutil
from pathlib import Path

import pytest

from quide import cli
from quide.analysis.verify import verify

COMMITTED = Path(__file__).resolve().parents[1] / "data" / "results"


def test_committed_records_verify(capsys):
    assert cli.main(["verify", "--root", str(COMMITTED)]) == 0
    assert "0 problems" in capsys.readouterr().out


def test_tampered_records_are_caught(tmp_path):
    root = tmp_path / "results"
    shutil.copytree(COMMITTED, root)
    sweep = next((root / "ptq_sweep").glob("simplecnn-mnist-seed0-graph-paper-*.json"))
    recs = json.loads(sweep.read_text())
    recs[2]["I_gated"] *= 1.01                       # a derived number edited by hand
    sweep.write_text(json.dumps(recs))
    search = next((root / "mixed_precision").glob("simplecnn-cifar10-seed0-ga-s42-paper-*.json"))
    recs = json.loads(search.read_text())
    rank = recs[0]["rank_of_n"][0] + 1
    recs[0]["rank_of_n"] = [rank, 256]               # another rank than the exhaustive pass gives
    search.write_text(json.dumps(recs))
    n, problems = verify(root)
    assert n > 600 and len(problems) == 2
    assert any(f"{sweep.name} [2]: I_gated" in p for p in problems)
    assert any(f"{search.name}: rank_of_n [{rank}, 256]" in p for p in problems)


def test_missing_folder_is_refused(tmp_path, capsys):
    assert cli.main(["verify", "--root", str(tmp_path / "nowhere")]) == 2
    assert "no results folder" in capsys.readouterr().err


def test_deployed_index_is_checked():
    from quide.analysis.results import make_record
    from quide.analysis.verify import check_record
    rec = make_record(experiment="x", model="m", dataset="d", data_source="d", seed=0, bits=8, P=0.9, T_ms=2.0,
                      T_kind="simulated", C_paper=4.0, C_true=4.0, num_classes=10, p_fp=0.9, delta=0.1,
                      provenance={}, T_deployed_ms=1.0, T_deployed_reason=None)
    assert check_record(rec) == [] and rec["I_deployed"] > rec["I"]   # a faster T, a larger I
    assert check_record({**rec, "I_gated_deployed": rec["I_gated_deployed"] * 1.01})[0].startswith("I_gated_deployed")
    none = make_record(**{**{k: rec[k] for k in ("experiment", "model", "dataset", "data_source", "seed", "bits", "P",
                                                  "T_ms", "T_kind", "C_paper", "C_true", "num_classes", "p_fp",
                                                  "delta", "provenance")}, "T_deployed_ms": None,
                          "T_deployed_reason": "no kernel"})
    assert none["I_deployed"] is None and check_record(none) == []
    assert check_record({**none, "T_deployed_reason": None})   # None needs a reason


# --- malformed and inconsistent records (issue 14, case 7) ----------------------------------------

def _sweep(seed=0, p_fp_of_8_bits=0.99, T_of_8_bits=1.08):
    """A self-consistent sweep (32, 8, 4 bits); the 8-bit record may claim another P_FP or T."""
    from quide.analysis.results import make_record
    common = dict(experiment="ptq_sweep", model="simplecnn", dataset="mnist", data_source="MNIST", seed=seed,
                  T_kind="simulated", num_classes=10, delta=0.19, provenance={})
    def timed(T):   # the timer's fields (quide.measure.latency), as a GPU run writes them
        return dict(T_ms=T, T_ci_ms=[T * 0.99, T * 1.01], T_method="cuda_graph", T_method_reason=None)
    return [make_record(**common, bits=b, P=0.99 if b == 32 else 0.9, C_paper=32 / b, C_true=32 / b,
                        **timed(T_of_8_bits if b == 8 else 1.0 + b / 100),
                        p_fp=p_fp_of_8_bits if b == 8 else 0.99) for b in (32, 8, 4)]


def _write(root, name, content):
    path = root / "ptq_sweep" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    return path


def _edit(i, **changes):
    def edit(recs):
        recs[i].update(changes)
        return recs
    return edit


@pytest.mark.parametrize("content, message", [
    (_edit(1, P="0.9"), "[1]: P = '0.9' is not a finite number"),
    (_edit(1, T_ms=None), "[1]: T_ms = None is not a finite number"),
    (_edit(1, T_ms=math.inf), "[1]: T_ms = inf is not a finite number"),
    (_edit(1, C_paper=math.inf), "[1]: C_paper = inf is not a finite number"),
    (_edit(1, C_paper=-4.0), "[1]: C_paper = -4.0, C_true = 4.0: compression must be positive"),
    (_edit(1, num_classes=0), "[1]: num_classes = 0 is not an int >= 2"),
    (_edit(1, C_paper=8.0), "[1]: C_paper 8.0 != 32/mean(bits) = 4.0 for bits 8"),
    (_edit(1, bits=33), "[1]: bits = 33: each must be an int in 2..16 or 32"),
    (lambda recs: _sweep(p_fp_of_8_bits=0.95), "[1]: p_fp 0.95 != P [0.99] of the run's 32-bit record"),
    (lambda recs: recs[:1] + [[1, 2]] + recs[2:], "[1]: a list, not a record"),
    (lambda recs: recs[0], "holds a dict, not a list of records"),
    (lambda recs: None, "holds null, not a list of records"),
    (lambda recs: [], "holds no records ([]: emptied?)"),
    (lambda recs: b"[{\"P\": \"\xff\xfe\"}]", "not UTF-8 text"),
])
def test_a_malformed_record_file_is_a_listed_problem_never_a_crash(tmp_path, content, message):
    """Case 7: each malformed or inconsistent input is listed with its file; verify never raises."""
    _write(tmp_path, "good-seed1.json", _sweep(seed=1))
    _write(tmp_path, "bad.json", content(_sweep()))
    n, problems = verify(tmp_path)
    assert any(p.startswith("ptq_sweep/bad.json") and message in p for p in problems), problems
    assert not any("good-seed1" in p for p in problems)


def test_the_cli_lists_malformed_files_and_exits_1(tmp_path, capsys):
    _write(tmp_path, "a.json", _edit(0, P="x")(_sweep()))
    _write(tmp_path, "b.json", b"\x80\x81")
    assert cli.main(["verify", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "ptq_sweep/a.json [0]: P = 'x'" in out and "ptq_sweep/b.json: not UTF-8" in out and "2 problems" in out


def test_duplicated_record_files_are_found(tmp_path):
    """Case 7: a copied file (same content) and a second file of one run identity."""
    from quide.analysis import results as qr
    recs = _sweep()
    _write(tmp_path, "run.json", recs)
    _write(tmp_path, "copy.json", recs)
    params = {"seed": 0, "bits": [32, 8, 4]}
    first = qr.write_records(_sweep(), "ptq_sweep", qr.named_run("x", params), root=tmp_path, run_params=params)
    renamed = qr.write_records(_sweep(T_of_8_bits=2.0), "ptq_sweep", qr.named_run("y", params), root=tmp_path,
                               run_params=params)   # a rerun of the same run, under another name
    n, problems = verify(tmp_path)
    assert any("ptq_sweep/run.json: the same records as ptq_sweep/copy.json" in p for p in problems), problems
    assert any(f"ptq_sweep/{renamed.name}: the same run identity" in p and first.name in p for p in problems), problems
    assert len(problems) == 2


def test_identity_must_match_the_file_name_and_the_parameters(tmp_path):
    from quide.analysis import results as qr
    params = {"seed": 0}
    path = qr.write_records(_sweep(), "ptq_sweep", qr.named_run("x", params), root=tmp_path, run_params=params)
    assert verify(tmp_path) == (3, [])
    path.rename(path.with_name("x.json"))
    assert verify(tmp_path)[1] == ["ptq_sweep/x.json: file name does not end with its records' run_params_sha256 "
                                   f"({qr.params_sha256(params)[:8]})"]
    recs = json.loads((tmp_path / "ptq_sweep" / "x.json").read_text())
    recs[0]["run_params"]["seed"] = 1
    (tmp_path / "ptq_sweep" / "x.json").write_text(json.dumps(recs))
    assert "run_params_sha256 is not the sha256 of run_params" in verify(tmp_path)[1][0]


def test_a_gzipped_record_file_is_read_as_its_json_and_a_cut_one_is_a_problem(tmp_path):
    """data/reruns keeps its records as <run id>.json.gz (gzip -9n): verified and loaded as the plain
    file would be, the run identity read from the name without .json.gz; a cut stream is listed."""
    import gzip
    from quide.analysis import results as qr
    params = {"seed": 0}
    plain = qr.write_records(_sweep(), "ptq_sweep", qr.named_run("x", params), root=tmp_path / "plain",
                             run_params=params)
    packed = tmp_path / "packed" / "ptq_sweep" / (plain.name + ".gz")
    packed.parent.mkdir(parents=True)
    packed.write_bytes(gzip.compress(plain.read_bytes(), mtime=0))
    assert qr.record_files(tmp_path / "packed") == [packed] and qr.record_stem(packed) == plain.stem
    assert verify(tmp_path / "packed") == (3, [])
    loaded = qr.load_records(tmp_path / "packed").drop(columns="source_file")
    assert loaded.equals(qr.load_records(tmp_path / "plain").drop(columns="source_file"))
    good = packed.read_bytes()
    # a cut stream, and each byte of the deflate data damaged in turn (zlib's error, a bad CRC, ...)
    for damaged in [good[:-20]] + [good[:i] + bytes([good[i] ^ 0x55]) + good[i + 1:] for i in range(10, len(good) - 8)]:
        packed.write_bytes(damaged)
        n, problems = verify(tmp_path / "packed")
        if n == 3 and not problems:
            continue   # a flip that still decodes to the same records (none does here, but it could)
        assert n == 0 and len(problems) == 1 and problems[0].startswith(f"ptq_sweep/{packed.name}: unreadable")
        with pytest.raises(ValueError, match="unreadable result file"):
            qr.load_records(tmp_path / "packed")


def test_a_runners_partial_folder_is_not_verified(tmp_path):
    """Case 6: records of an unfinished run (in `.partial`) are not read by verify --root OUT."""
    _write(tmp_path / "runs" / "k1" / "results", "a.json", _sweep())
    _write(tmp_path / ".partial" / "k2-host-boot-1" / "results", "a.json", _edit(0, P="x")(_sweep()))
    assert verify(tmp_path) == (3, [])


def test_the_timers_fields_are_checked():
    """Records of the timer (quide.measure.latency) carry a known method, a CI that holds T, a reason for a
    fallback and the paper's host figure; a record with a run identity must have them."""
    from quide.analysis.results import make_record
    from quide.analysis.verify import check_record
    base = dict(experiment="x", model="m", dataset="d", data_source="d", seed=0, bits=8, P=0.9, T_ms=2.0,
                T_kind="simulated", C_paper=4.0, C_true=4.0, num_classes=10, p_fp=0.9, delta=0.1, provenance={})
    timed = dict(T_ci_ms=[1.98, 2.02], T_method="cuda_graph", T_method_reason=None, T_host_ms=2.6, latency_batch=64)
    assert check_record(make_record(**base, **timed)) == []
    bad = {"T_method": "stopwatch", "T_ci_ms": [2.1, 2.3], "T_host_ms": None}
    for key, value in bad.items():   # made good, then spoilt: make_record refuses a value of the wrong type
        problems = check_record({**make_record(**base, **timed), key: value})
        assert len(problems) == 1 and key in problems[0], (key, problems)
    fallback = check_record(make_record(**base, **{**timed, "T_method": "cuda_events"}))
    assert fallback == ["T_method cuda_events (a fallback) without T_method_reason"]
    no_timer = check_record(make_record(**base, run_params={"seed": 0}, run_params_sha256=None))
    assert any("no T_method" in p for p in no_timer)


# --- the LLM case study's per-question samples (issue 18) -------------------------------------

def _llm_run(root, correct=(True, False, True, True), P=None, **changes):
    """One made-up LLM record with its samples file beside it; ``changes`` edit the record, ``P``
    makes it (with its index) from another accuracy than the samples'."""
    from quide.analysis import mmlu_stats
    from quide.analysis.results import make_record, write_records
    rows = [{"doc_id": i, "subject": "anatomy", "loglik": [-1.0, -2.0, -3.0, -4.0], "pred": 0, "gold": 0 if ok else 1,
             "correct": ok} for i, ok in enumerate(correct)]
    folder = root / "llm_case_study"
    digest = mmlu_stats.write_samples(folder / "samples_m-0shot-4bit.jsonl.gz", rows)
    P = sum(correct) / len(correct) if P is None else P
    rec = make_record(experiment="llm_case_study", model="m", dataset="mmlu", data_source="MMLU", seed=0, bits=4,
                      P=P, T_ms=2.0, T_kind="simulated", C_paper=8.0, C_true=7.0, num_classes=4, p_fp=P, delta=0.07,
                      provenance={}, T_ci_ms=[1.9, 2.1], T_method="host", T_method_reason="CPU", n_shot=0,
                      n_questions=len(correct), T_deployed_ms=None, T_deployed_reason="no 4-bit kernel",
                      samples_file="samples_m-0shot-4bit.jsonl.gz", samples_sha256=digest)
    write_records([{**rec, **changes}], "llm_case_study", "m-0shot", root=root)
    return folder / "samples_m-0shot-4bit.jsonl.gz"


def test_llm_samples_check_out(tmp_path):
    _llm_run(tmp_path)
    assert verify(tmp_path) == (1, [])


@pytest.mark.parametrize("changes, message", [
    ({"P": 0.5}, "P 0.5 != 0.75 recomputed from samples_m-0shot-4bit.jsonl.gz"),
    ({"n_questions": 5}, "n_questions 5 != 4 samples in samples_m-0shot-4bit.jsonl.gz"),
    ({"samples_sha256": "0" * 64}, "its sha256 is not the record's samples_sha256"),
    ({"samples_file": "samples_other.jsonl.gz"}, "samples file samples_other.jsonl.gz is missing"),
    ({"samples_file": "../m-0shot.json"}, "is not the name of a file beside the record"),
    ({"samples_file": None, "samples_sha256": None}, "no samples_file"),
])
def test_llm_samples_mismatches_are_problems(tmp_path, changes, message):
    _llm_run(tmp_path, **changes)   # P goes to make_record: the record is consistent but for its samples
    n, problems = verify(tmp_path)
    assert n == 1 and len(problems) == 1 and problems[0].startswith("llm_case_study/m-0shot.json [0]: ")
    assert message in problems[0], problems


def _rewrite(path, data: bytes):
    """Replace a samples file and give the record its new sha256 (so only the content is wrong)."""
    import hashlib
    path.write_bytes(data)
    record = path.parent / "m-0shot.json"
    recs = json.loads(record.read_text())
    recs[0]["samples_sha256"] = hashlib.sha256(data).hexdigest()
    record.write_text(json.dumps(recs))


@pytest.mark.parametrize("data, message", [
    (b"not gzip", "unreadable (BadGzipFile"),
    (__import__("gzip").compress(b"{\"doc_id\": 0}\n", mtime=0), "unreadable (KeyError"),
    (__import__("gzip").compress(b"[1, 2]\n", mtime=0), "unreadable (TypeError"),
    (__import__("gzip").compress(b"{not json\n", mtime=0), "unreadable (JSONDecodeError"),
    (__import__("gzip").compress(b"", mtime=0), "holds no samples"),
    (__import__("gzip").compress(b'{"doc_id": 0, "pred": 1, "gold": 0, "correct": true}\n' * 2, mtime=0),
     "a doc_id appears twice"),
])
def test_a_broken_samples_file_is_a_problem_never_a_crash(tmp_path, data, message):
    _rewrite(_llm_run(tmp_path), data)
    problems = verify(tmp_path)[1]
    assert any(message in p for p in problems), problems


# --- a cloze-scored LLM record: acc_norm from its samples (issue 43) ------------------------------

def _sample(i, gold=0, **changes):
    """A cloze sample whose summed (pred) and per-character (pred_norm) answers differ: the second
    answer is long and only its per-character log-likelihood is the best."""
    return {"doc_id": i, "subject": "anatomy", "loglik": [-2.0, -3.0, -10.0, -10.0], "choice_chars": [1, 10, 1, 1],
            "pred": 0, "gold": gold, "correct": gold == 0, "pred_norm": 1, "correct_norm": gold == 1, **changes}


def _cloze_run(root, rows, **changes):
    """One made-up cloze record with its samples beside it; P and P_norm from the samples unless
    ``changes`` say otherwise."""
    from quide.analysis import mmlu_stats
    from quide.analysis.results import make_record, write_records
    folder = root / "llm_case_study"
    digest = mmlu_stats.write_samples(folder / "samples_m-0shot-cloze-4bit.jsonl.gz", rows)
    P = sum(r["correct"] for r in rows) / len(rows)
    rec = make_record(experiment="llm_case_study", model="m", dataset="mmlu", data_source="MMLU", seed=0, bits=4,
                      P=P, T_ms=2.0, T_kind="simulated", C_paper=8.0, C_true=7.0, num_classes=4, p_fp=P, delta=0.07,
                      provenance={}, T_ci_ms=[1.9, 2.1], T_method="host", T_method_reason="CPU", n_shot=0,
                      n_questions=len(rows), T_deployed_ms=None, T_deployed_reason="no 4-bit kernel", scoring="cloze",
                      P_norm=sum(r["correct_norm"] for r in rows) / len(rows), P_norm_ci95=[0.1, 0.9],
                      samples_file="samples_m-0shot-cloze-4bit.jsonl.gz", samples_sha256=digest)
    write_records([{**rec, **changes}], "llm_case_study", "m-0shot-cloze", root=root)


CLOZE_ROWS = [_sample(i, gold) for i, gold in enumerate([0, 1, 1, 2])]


def test_cloze_samples_check_out(tmp_path):
    _cloze_run(tmp_path, CLOZE_ROWS)
    assert verify(tmp_path) == (1, [])


@pytest.mark.parametrize("rows, changes, message", [
    (CLOZE_ROWS, {"P_norm": 0.25}, "P_norm 0.25 != 0.5 recomputed from samples_m-0shot-cloze-4bit.jsonl.gz"),
    ([_sample(0, pred_norm=0, correct_norm=True), _sample(1, 1)], {},
     "1 samples whose pred_norm is not the per-character argmax of loglik"),
    ([_sample(0, correct_norm=True), _sample(1)], {}, "1 samples whose correct_norm is not pred_norm == gold"),
    ([_sample(0, choice_chars=[1, 0, 1, 1]), _sample(1)], {}, "unreadable (ValueError"),
    ([{k: v for k, v in _sample(0).items() if k != "choice_chars"}], {}, "unreadable (KeyError"),
])
def test_cloze_mismatches_are_problems(tmp_path, rows, changes, message):
    _cloze_run(tmp_path, rows, **changes)
    n, problems = verify(tmp_path)
    assert n == 1 and len(problems) == 1 and message in problems[0], problems


# --- a CNN record's per-sample predictions (issue 42) ------------------------------------------

PREDICTED = "ptq_sweep/run.json"


def _predicted_run(root, seed=0):
    """A sweep whose records' P are the accuracies of their predictions on 100 test images, written
    with the predictions beside them; returns (record file, predictions file)."""
    import numpy as np
    from quide.analysis import predictions as qp
    from quide.analysis import results as qr
    labels = np.arange(100) % 10
    predicted = {32: labels.copy(), 8: np.where(np.arange(100) < 90, labels, 0), 4: (labels + 1) % 10}
    records = [qr.make_record(experiment="ptq_sweep", model="simplecnn", dataset="mnist", data_source="MNIST",
                              seed=seed, T_kind="simulated", num_classes=10, delta=0.19, provenance={}, bits=b,
                              P=qp.accuracy(labels, predicted[b]), p_fp=1.0, C_paper=32 / b, C_true=32 / b,
                              T_ms=1.0, T_ci_ms=[0.99, 1.01], T_method="cuda_graph", T_method_reason=None,
                              n_test=100) for b in predicted]
    path = qr.write_records(records, "ptq_sweep", "run", root=root,
                            predictions=qp.Predictions(labels, [predicted[r["bits"]] for r in records]))
    return path, path.with_name("run.predictions.npz")


def _rename_sha(record_file, predictions_file):
    """Give every record the predictions file's sha256 as it now is (so only the content is wrong)."""
    from quide.analysis import predictions as qp
    recs = json.loads(record_file.read_text())
    for rec in recs:
        rec["predictions_sha256"] = qp.file_sha256(predictions_file)
    record_file.write_text(json.dumps(recs))


def test_p_is_recomputed_from_the_predictions(tmp_path, capsys):
    from quide.analysis.verify import verify_all
    _predicted_run(tmp_path)
    assert verify_all(tmp_path) == (3, [], {})
    assert cli.main(["verify", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "P recomputed from per-sample predictions (or samples): 3 records\n" in out and "3 records under" in out
    assert "not recomputable" not in out


def test_records_without_predictions_are_counted_not_problems(tmp_path, capsys):
    from quide.analysis.verify import verify_all
    _predicted_run(tmp_path)
    _write(tmp_path, "old-seed1.json", _sweep(seed=1))   # made before predictions were kept
    assert verify_all(tmp_path) == (6, [], {"ptq_sweep/old-seed1.json": 3})
    assert cli.main(["verify", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "P not recomputable (no predictions): 3 records in 1 files\n  ptq_sweep/old-seed1.json (3 records)" in out


def _flip_one(path):
    """The same file with the 8-bit record's first prediction changed."""
    from quide.analysis import predictions as qp
    arrays = qp.read(path)
    arrays["bits_8"][0] = (arrays["bits_8"][0] + 1) % 10
    labels = arrays.pop("labels")
    qp.write(path, labels, arrays)


def test_a_flipped_prediction_is_refused(tmp_path):
    record_file, predictions_file = _predicted_run(tmp_path)
    _flip_one(predictions_file)
    n, problems = verify(tmp_path)   # the file is not the one the records name
    assert problems == [f"{PREDICTED} [0-2]: predictions file run.predictions.npz: its sha256 is not the "
                        "record's predictions_sha256"]
    _rename_sha(record_file, predictions_file)   # ... and with its sha256 renamed: P no longer matches
    assert verify(tmp_path)[1] == [f"{PREDICTED} [1]: P 0.91 != 0.9 recomputed from run.predictions.npz['bits_8']"]


def test_a_record_claiming_another_p_than_its_predictions_is_refused(tmp_path):
    record_file, _ = _predicted_run(tmp_path)
    recs = json.loads(record_file.read_text())
    rec = recs[2]
    given = {k: rec[k] for k in ("experiment", "model", "dataset", "data_source", "seed", "bits", "T_ms", "T_kind",
                                 "C_paper", "C_true", "num_classes", "p_fp", "delta", "provenance")}
    from quide.analysis.results import make_record
    recs[2] = {**rec, **make_record(**given, P=0.5)}   # consistent I, I', ACP, ALS: only P is not the predictions'
    record_file.write_text(json.dumps(recs))
    assert verify(tmp_path)[1] == [f"{PREDICTED} [2]: P 0.5 != 0.0 recomputed from run.predictions.npz['bits_4']"]


def test_a_cut_predictions_file_is_refused(tmp_path):
    record_file, predictions_file = _predicted_run(tmp_path)
    predictions_file.write_bytes(predictions_file.read_bytes()[:-30])
    assert verify(tmp_path)[1] == [f"{PREDICTED} [0-2]: predictions file run.predictions.npz: its sha256 is not "
                                   "the record's predictions_sha256"]
    _rename_sha(record_file, predictions_file)
    problems = verify(tmp_path)[1]
    assert len(problems) == 1 and problems[0].startswith(f"{PREDICTED} [0-2]: predictions file run.predictions.npz: "
                                                         "unreadable"), problems


@pytest.mark.parametrize("changes, message", [
    ({"predictions_sha256": "0" * 64}, "[1]: predictions file run.predictions.npz: its sha256 is not the record's "
                                       "predictions_sha256"),
    ({"predictions_key": "bits_16"}, "[1]: predictions file run.predictions.npz has no array predictions_key 'bits_16'"),
    ({"predictions_key": "labels"}, "[1]: predictions file run.predictions.npz has no array predictions_key 'labels'"),
    ({"predictions_file": "other.predictions.npz"}, "[1]: predictions file other.predictions.npz is missing"),
    ({"predictions_file": "../x.npz"}, "[1]: predictions_file '../x.npz' is not the name of a file beside"),
    ({"predictions_sha256": None}, "[1]: names predictions but has no predictions_sha256"),
    ({"n_test": 90}, "[1]: n_test 90 != 100 predictions in run.predictions.npz"),
    ({"num_classes": 5}, "[1]: predictions file run.predictions.npz: 'labels' holds values that are not classes 0..4"),
])
def test_a_record_naming_other_predictions_is_refused(tmp_path, changes, message):
    record_file, _ = _predicted_run(tmp_path)
    recs = json.loads(record_file.read_text())
    recs[1].update(changes)
    record_file.write_text(json.dumps(recs))
    problems = verify(tmp_path)[1]
    assert any(p.startswith(PREDICTED) and message in p for p in problems), problems


def test_a_missing_predictions_file_is_refused_once_for_its_records(tmp_path):
    _, predictions_file = _predicted_run(tmp_path)
    predictions_file.unlink()
    assert verify(tmp_path)[1] == [f"{PREDICTED} [0-2]: predictions file run.predictions.npz is missing"]
