"""The condition registry: one entry per (model, data set), read by the sweep, the recipes, the
model builder, the paper's numbers and the scorecard."""
import pytest

from quide.analysis import conditions, paper, protocol
from quide.measure import models
from quide.analysis.conditions import ConditionSpec


def test_delta_per_condition():
    assert conditions.delta_for("simplecnn", "cifar10") == 0.30
    assert conditions.delta_for("resnet18_cifar", "cifar10") == 0.45
    assert conditions.delta_for("simplecnn", "fashion_mnist") == 0.19   # not in the paper: MNIST's
    with pytest.raises(ValueError, match="no delta for resnet18_cifar on mnist"):
        conditions.delta_for("resnet18_cifar", "mnist")
    with pytest.raises(ValueError, match="no delta for resnet18_cifar on cifar100"):
        conditions.delta_for("resnet18_cifar", "cifar100")


def test_every_named_recipe_and_builder_exists():
    for spec in conditions.CONDITIONS.values():
        if spec.recipe is not None:
            assert isinstance(getattr(protocol, spec.recipe), protocol.Recipe), spec.key
            assert protocol.paper_recipe(*spec.key) is getattr(protocol, spec.recipe)
        if spec.model in conditions.MODEL_BUILDERS:
            assert spec.model in models.MODELS
    for builder in conditions.MODEL_BUILDERS.values():
        assert callable(getattr(models, builder))


def test_recipes_and_data_sets_read_from_the_registry():
    assert protocol.paper_recipe("simplecnn", "cifar100") is protocol.SIMPLECNN_AUGMENTED
    assert protocol.paper_recipe("simplecnn", "fashion_mnist") is protocol.SIMPLECNN
    with pytest.raises(ValueError, match="no training recipe for 'resnet18_imagenet'"):
        protocol.paper_recipe("resnet18_imagenet", "imagenet")
    with pytest.raises(ValueError, match="no condition 'simplecnn' on 'svhn'"):
        protocol.paper_recipe("simplecnn", "svhn")
    assert conditions.datasets_for("resnet18_cifar") == ("cifar10", "cifar100")


def test_labels_and_reported_numbers():
    assert conditions.label("simplecnn", "cifar10") == "SimpleCNN / CIFAR-10"
    assert conditions.label("vgg", "svhn") == "vgg / svhn"
    assert paper.reported("simplecnn", "cifar10")["ga_best"]["bits"] == [8, 8, 8, 4]
    assert paper.reported("simplecnn", "fashion_mnist") == {} and paper.reported("vgg", "svhn") == {}
    assert all("delta" not in spec.reported for spec in conditions.CONDITIONS.values())   # delta: one place


@pytest.mark.parametrize("kwargs, match", [
    ({"delta": 1.5}, "delta must be None or in"), ({"label": ""}, "needs a model, a dataset and a label"),
])
def test_bad_entry_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConditionSpec(**{"model": "m", "dataset": "d", "label": "M / D", "delta": 0.1, "recipe": None, **kwargs})
