"""Per-sample predictions files (quide.analysis.predictions): written compactly and the same bytes
for the same predictions, read back as they were, refused with the file named when they are not
the record's."""
import numpy as np
import pytest

from quide.analysis import predictions as qp
from quide.analysis import results as qr

LABELS = np.array([0, 1, 2, 3, 0, 1, 2, 3])
PREDICTED = {"bits_32": np.array([0, 1, 2, 3, 0, 1, 2, 0]), "bits_2": np.array([0, 0, 0, 0, 0, 0, 0, 0])}


def _record(path, key="bits_32", **changes):
    return {"predictions_file": path.name, "predictions_key": key, "predictions_sha256": qp.file_sha256(path),
            **changes}


def test_a_file_reads_back_as_written_in_one_byte_per_prediction(tmp_path):
    path = tmp_path / qp.file_name("run")
    sha = qp.write(path, LABELS, PREDICTED)
    assert path.name == "run.predictions.npz" and sha == qp.file_sha256(path)
    arrays = qp.read(path)
    assert set(arrays) == {"labels", "bits_32", "bits_2"}
    assert all(a.dtype == np.uint8 for a in arrays.values())
    assert arrays["labels"].tolist() == LABELS.tolist() and arrays["bits_32"].tolist() == PREDICTED["bits_32"].tolist()
    with np.load(path) as plain:   # an ordinary .npz: the labels' row, then one row of predictions per key
        assert plain["keys"].tolist() == ["labels", "bits_32", "bits_2"] and plain["classes"][2].tolist() == [0] * 8


def test_the_same_predictions_give_the_same_bytes(tmp_path):
    first = qp.write(tmp_path / "a.predictions.npz", LABELS, PREDICTED)
    second = qp.write(tmp_path / "b.predictions.npz", LABELS.astype(np.int64), PREDICTED)
    assert first == second


def test_more_than_256_classes_take_two_bytes(tmp_path):
    labels = np.arange(1000)
    qp.write(tmp_path / "x.predictions.npz", labels, {"bits_8": labels[::-1]})
    arrays = qp.read(tmp_path / "x.predictions.npz")
    assert arrays["labels"].dtype == np.uint16 and arrays["bits_8"].tolist() == labels[::-1].tolist()


@pytest.mark.parametrize("predicted, message", [
    ({"bits_8": np.array([0, 1])}, "2 predictions for 8 labels"),
    ({"bits_8": -LABELS}, ">= 0"),
    ({"bits_8": LABELS / 2}, "integers"),
    ({"labels": LABELS}, "other than 'labels'"),
    ({}, "no records' predictions"),
])
def test_bad_predictions_are_refused_before_anything_is_written(tmp_path, predicted, message):
    with pytest.raises(ValueError, match=message):
        qp.write(tmp_path / "x.predictions.npz", LABELS, predicted)
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_a_predictions_file_is_refused(tmp_path):
    np.savez(tmp_path / "plain.npz", labels=LABELS, bits_8=LABELS)   # one array per record: not this format
    with pytest.raises(qp.PredictionsError, match="not a predictions file .no keys, classes"):
        qp.read(tmp_path / "plain.npz")
    for keys, classes in ((["labels", "bits_8"], LABELS[None]), (["bits_8", "labels"], np.stack([LABELS] * 2)),
                          (["labels", "labels"], np.stack([LABELS] * 2))):
        np.savez(tmp_path / "odd.npz", keys=np.array(keys), classes=classes)
        with pytest.raises(qp.PredictionsError, match="one row per distinct key is needed, 'labels' first"):
            qp.read(tmp_path / "odd.npz")


def test_accuracy_is_the_fraction_of_matches():
    assert qp.accuracy(LABELS, PREDICTED["bits_32"]) == 7 / 8
    assert qp.accuracy(LABELS.astype(np.uint8), PREDICTED["bits_32"].astype(np.int64)) == 7 / 8
    with pytest.raises(ValueError, match="one length"):
        qp.accuracy(LABELS, LABELS[:3])


def test_load_gives_one_records_labels_and_predictions(tmp_path):
    path = tmp_path / "ptq_sweep" / "run.predictions.npz"
    qp.write(path, LABELS, PREDICTED)
    rec = {**_record(path, "bits_2"), "source_file": "ptq_sweep/run.json"}
    labels, predicted = qp.load(rec, tmp_path)
    assert labels.dtype == predicted.dtype == np.int64
    assert labels.tolist() == LABELS.tolist() and predicted.tolist() == [0] * 8
    del rec["source_file"]   # a record read from its file: root is its folder
    assert qp.load(rec, tmp_path / "ptq_sweep")[1].tolist() == [0] * 8


def test_load_reads_a_row_of_load_records(tmp_path):
    rec = qr.make_record(experiment="ptq_sweep", model="m", dataset="d", data_source="d", seed=0, bits=32,
                         P=7 / 8, T_ms=1.0, T_kind="simulated", C_paper=1.0, C_true=1.0, num_classes=4,
                         p_fp=7 / 8, delta=0.1, provenance={}, n_test=8)
    qr.write_records([rec], "ptq_sweep", "run", root=tmp_path,
                     predictions=qp.Predictions(LABELS, [PREDICTED["bits_32"]]))
    old = {**rec, "seed": 1}   # a record made before predictions were kept, in the same table
    qr.write_records([old], "ptq_sweep", "old", root=tmp_path)
    rows = {row["source_file"]: row for _, row in qr.load_records(tmp_path).iterrows()}
    assert qp.load(rows["ptq_sweep/run.json"], tmp_path)[1].tolist() == PREDICTED["bits_32"].tolist()
    assert not qp.has_predictions(rows["ptq_sweep/old.json"])   # its cells are NaN
    with pytest.raises(qp.PredictionsError, match="names no predictions file"):
        qp.load(rows["ptq_sweep/old.json"], tmp_path)


def test_load_refuses_predictions_that_are_not_the_records(tmp_path):
    path = tmp_path / "run.predictions.npz"
    qp.write(path, LABELS, PREDICTED)
    rec = _record(path)
    with pytest.raises(qp.PredictionsError, match="names no predictions"):
        qp.load({}, tmp_path)
    with pytest.raises(qp.PredictionsError, match="predictions_sha256"):
        qp.load({**rec, "predictions_sha256": "0" * 64}, tmp_path)
    with pytest.raises(qp.PredictionsError, match="no array predictions_key 'bits_4'"):
        qp.load({**rec, "predictions_key": "bits_4"}, tmp_path)
    with pytest.raises(qp.PredictionsError, match="beside the record"):
        qp.load({**rec, "predictions_file": "../run.predictions.npz"}, tmp_path)
    path.write_bytes(path.read_bytes()[:-40])   # cut short: another sha256
    with pytest.raises(qp.PredictionsError, match=f"{path}: its sha256"):
        qp.load(rec, tmp_path)
    with pytest.raises(qp.PredictionsError, match=f"{path}: unreadable"):
        qp.load(_record(path), tmp_path)   # a record naming the cut file's own sha256
    path.unlink()
    with pytest.raises(qp.PredictionsError, match=f"{path} is missing"):
        qp.load(rec, tmp_path)
