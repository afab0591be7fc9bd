"""The ``quide`` command line: parameters as papermill reads them, refused before any work."""
import pytest

from quide import cli


@pytest.mark.parametrize("text, value", [("True", True), ("None", None), ("42", 42), ("0.19", 0.19),
                                         ("[8, 4]", [8, 4]), ("mnist", "mnist"), ("cuda:0", "cuda:0")])
def test_parse_value_reads_like_papermill(text, value):
    assert cli.parse_value(text) == value


@pytest.mark.parametrize("pairs, message", [
    ([("model", "simplecnn"), ("dataset", "svhn"), ("seed", "0")], "unknown dataset"),
    ([("model", "simplecnn"), ("dataset", "mnist"), ("seed", "zero")], "seed"),
    ([("model", "simplecnn"), ("dataset", "mnist"), ("seed", "0"), ("bits", "[8, 1]")], "bits"),
    ([("model", "simplecnn"), ("dataset", "mnist"), ("sede", "0")], "sede"),
])
def test_train_refuses_bad_parameters(pairs, message, capsys):
    argv = ["train"] + [a for name, value in pairs for a in ("-p", name, value)]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_train_then_find_the_checkpoint(mnist, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QUIDE_CHECKPOINTS", str(tmp_path))
    argv = ["train", "-p", "model", "simplecnn", "-p", "dataset", "mnist", "-p", "seed", "3",
            "-p", "profile", "smoke", "-p", "placement", "inputs"]   # a sweep-only parameter is accepted
    assert cli.main(argv) == 0
    assert "trained in" in capsys.readouterr().out
    assert len(list(tmp_path.glob("simplecnn-mnist-seed3-*.pt"))) == 1
    assert cli.main(argv) == 0
    assert "loaded" in capsys.readouterr().out
