"""The measurement protocol as plain facts: the data sets, the training recipes, SimpleCNN's
widths, the quantizer's choices and the timer's settings.

The measurement layer (``quide.measure``) runs by these and imports them from here; the book
and ``quide.analysis.verify`` read them without torch. Each fact is stated once, here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

# --- data sets (quide.measure.data loads them) ---------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    label: str           # how the book names it
    num_classes: int
    image_shape: tuple   # (H, W, C); any number of images is accepted (tests use small sets)


SPECS = {
    "mnist": DatasetSpec("mnist", "MNIST", 10, (28, 28, 1)),
    "fashion_mnist": DatasetSpec("fashion_mnist", "Fashion-MNIST", 10, (28, 28, 1)),
    "cifar10": DatasetSpec("cifar10", "CIFAR-10", 10, (32, 32, 3)),
    "cifar100": DatasetSpec("cifar100", "CIFAR-100", 100, (32, 32, 3)),
    # A control, not a data set of the paper: MNIST through the same lossy JPEG re-encoding as the
    # CIFAR-10 stand-in, so a sweep on it shows what JPEG q75 alone does to P.
    "mnist_jpeg": DatasetSpec("mnist_jpeg", "MNIST (JPEG q75 control)", 10, (28, 28, 1)),
}

# --- training recipes (quide.measure.train runs them) --------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """One training recipe. Validates itself; ``replace`` makes variants (e.g. fewer epochs)."""
    optimizer: str                 # "adam" (torch.optim.Adam, L2 weight decay) | "sgd" (momentum)
    lr: float                      # peak learning rate
    weight_decay: float
    batch_size: int = 128          # images per step
    epochs: int = 50
    momentum: float = 0.0          # SGD only
    schedule: str = "constant"     # "constant" | "cosine" (annealed to 0 over the epochs, per epoch)
    augment: bool = False          # random crop (4-px zero pad) + horizontal flip
    keep: str = "best"             # "best": the epoch with peak validation accuracy | "last"
    val_size: int = 5000           # training images held out to choose the best epoch
    bf16: bool = False             # autocast to bfloat16 on CUDA
    channels_last: bool = False    # NHWC memory format on CUDA
    deterministic: bool = True     # cuDNN deterministic kernels, so a seed reproduces a run
    cuda_graphs: bool = True       # replay each step as a CUDA graph (CUDA only)

    def __post_init__(self):
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"Recipe.optimizer must be 'adam' or 'sgd'; got {self.optimizer!r}")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"Recipe.schedule must be 'constant' or 'cosine'; got {self.schedule!r}")
        if self.keep not in ("best", "last"):
            raise ValueError(f"Recipe.keep must be 'best' or 'last'; got {self.keep!r}")
        for name in ("batch_size", "epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Recipe.{name} must be an int >= 1; got {value!r}")
        if not self.lr > 0 or self.weight_decay < 0 or self.val_size < 0:
            raise ValueError("Recipe: lr must be > 0, weight_decay and val_size >= 0")
        if self.keep == "best" and self.val_size == 0:
            raise ValueError("Recipe.keep='best' needs val_size > 0 (a held-out split to choose on)")

    def replace(self, **changes) -> "Recipe":
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# Paper: Adam lr 1e-3, weight decay 1e-4, batch 128, 50 epochs, best epoch; CIFAR adds crop+flip.
SIMPLECNN = Recipe("adam", lr=1e-3, weight_decay=1e-4, batch_size=128, epochs=50)
SIMPLECNN_AUGMENTED = SIMPLECNN.replace(augment=True)
# Paper: SGD lr 0.1, weight decay 5e-4, cosine, 100 epochs. Momentum 0.9 and batch 128 are the
# usual values (the paper does not state them); the last epoch is kept, as cosine ends at lr 0.
RESNET18_CIFAR = Recipe("sgd", lr=0.1, weight_decay=5e-4, batch_size=128, epochs=100, momentum=0.9,
                        schedule="cosine", augment=True, keep="last", bf16=True, channels_last=True)
RECIPES = {"SIMPLECNN": SIMPLECNN, "SIMPLECNN_AUGMENTED": SIMPLECNN_AUGMENTED, "RESNET18_CIFAR": RESNET18_CIFAR}


def paper_recipe(model: str, dataset: str) -> Recipe:
    """The paper's recipe for a (model, dataset) condition (named by its entry in quide.analysis.conditions)."""
    from .conditions import condition
    name = condition(model, dataset).recipe
    if name is None:
        raise ValueError(f"no training recipe for {model!r} on {dataset!r} (not trained here: "
                         "pretrained weights or an LLM)")
    return RECIPES[name]


# --- SimpleCNN (quide.measure.models builds it from these) ---------------------------------------

# conv(32, 3x3)+ReLU+maxpool2, conv(64, 3x3)+ReLU+maxpool2, fc128+ReLU, fc(classes) (paper 3.3)
SIMPLECNN_CONV_CHANNELS = (32, 64)
SIMPLECNN_KERNEL = 3
SIMPLECNN_HIDDEN = 128


def simplecnn_side(image_size: int, padding: int = 1) -> int:
    """The side of SimpleCNN's last feature map: each conv keeps or trims the side, each 2x2 pool halves it."""
    side = image_size
    for _ in SIMPLECNN_CONV_CHANNELS:
        side = (side + 2 * padding - (SIMPLECNN_KERNEL - 1)) // 2
    return side


def simplecnn_layer_sizes(num_classes: int, image_shape: tuple, padding: int = 1) -> tuple[dict[str, int], int]:
    """Weight counts of SimpleCNN's quantizable layers (conv1, conv2, fc1, fc2) for images of
    ``image_shape`` (H, W, C), and the count of its other parameters (the biases)."""
    h, _, c = image_shape
    c1, c2 = SIMPLECNN_CONV_CHANNELS
    k2 = SIMPLECNN_KERNEL ** 2
    fc1_in = c2 * simplecnn_side(h, padding) ** 2
    sizes = {"conv1": c * c1 * k2, "conv2": c1 * c2 * k2, "fc1": fc1_in * SIMPLECNN_HIDDEN,
             "fc2": SIMPLECNN_HIDDEN * num_classes}
    return sizes, c1 + c2 + SIMPLECNN_HIDDEN + num_classes


# --- quantization (quide.measure.quant) ----------------------------------------------------------

SUPPORTED_BITS = tuple(range(2, 17)) + (32,)
OBSERVERS = ("minmax", "percentile", "mse")
PLACEMENTS = ("graph", "inputs")
# affine: [0, 2^b - 1] with a zero point (the paper's); symmetric: [-2^(b-1), 2^(b-1) - 1], zero point 0
ACTIVATION_SCHEMES = ("affine", "symmetric")
# nearest: round half to even (the fused kernels'); truncate: toward zero, as a cast to an integer type
ROUNDINGS = ("nearest", "truncate")

# --- latency (quide.measure.latency) -------------------------------------------------------------

BATCH = 64       # images per timed pass (paper)
WARMUP = 100     # untimed passes before timing (paper's protocol)
TIMED = 1000     # timed passes; the median is reported (paper's protocol)
T_METHODS = ("cuda_graph", "cuda_events", "host")


@dataclass(frozen=True)
class TimerConfig:
    """How :func:`quide.measure.latency.time_models` measures. Validates itself; a bad field raises
    ValueError naming it.

    rounds: interleaved rounds; T is their median (>= 6, the fewest for a 95% order-statistic CI).
    passes: forward passes (graph replays) per variant per round; a round's value is their mean, ms.
    warmup: untimed passes per variant before capture and timing.
    cuda_graphs: capture and replay on CUDA (False: CUDA events around eager passes).
    captures: CUDA graphs captured per variant; every round times each, and T pools them. A
    captured graph keeps a speed of its own: three captures of one SimpleCNN graph on an H200
    stayed up to 1.1% apart in two blocks and two processes alike
    (``benchmarks/results/timer_data_probe_h200_*``), and in two reruns on 4-GPU hosts one timing
    in 90 moved 2.3% while the rest of its block held. Only the graph path has captures.
    seed: orders the variants within each round.
    max_ci_pct: on CUDA, a block whose widest 95% CI exceeds this percentage of its T is timed
    again (same graphs, fresh rounds), up to ``attempts`` blocks in all, until two narrow blocks
    agree (:func:`quide.measure.latency.settled_block`; records: ``T_attempts``,
    ``T_attempt_medians_ms``, ``T_block_starts_utc``). Something else on the host (a process
    starting, a clock change) widens every interval of the block it hits: in two reruns one
    ResNet-18 block of 86 came out 3.5-5.9% wide while the median record was 0.19%. A narrow
    block right after a wide one is not trusted alone: in another pair of reruns the one retried
    block was kept for being narrow, and every graph in it was 3.6% faster than the same graphs in
    the same run's other blocks. Under this rule, in a later pair of reruns, the two blocks timed
    again still settled 2-5% from the other run, their later blocks agreeing with each other; one H200 alone held its clock and speed within 1.1% over
    67 blocks (``benchmarks/probes/timer_state_probe.py``), and its timings did not follow the host's CPU
    (``benchmarks/probes/launch_probe.py``). So the retry flags a disturbed block but does not undo the
    disturbance. A third run timed no block again and agreed with the pair's other
    run within 1.7% on all 684 records. The host clock on a CPU is noisier than any such bound, so
    it is timed once.
    """
    rounds: int = 21
    passes: int = 50
    warmup: int = 20
    cuda_graphs: bool = True
    captures: int = 3
    seed: int = 0
    max_ci_pct: float = 1.0   # percent of T
    attempts: int = 4

    def __post_init__(self):
        for name, low in (("rounds", 6), ("passes", 1), ("warmup", 0), ("captures", 1), ("seed", 0), ("attempts", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"TimerConfig.{name} must be an int >= {low}; got {value!r}")
        if not isinstance(self.cuda_graphs, bool):
            raise ValueError(f"TimerConfig.cuda_graphs must be True or False; got {self.cuda_graphs!r}")
        if isinstance(self.max_ci_pct, bool) or not isinstance(self.max_ci_pct, (int, float)) or not self.max_ci_pct > 0:
            raise ValueError(f"TimerConfig.max_ci_pct must be a percentage > 0; got {self.max_ci_pct!r}")
