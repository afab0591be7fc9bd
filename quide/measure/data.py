"""Image data: MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100 as uint8 arrays, ImageNet as an ImageFolder.

:func:`load_dataset` resolves a data set, in this order:

1. ``<data root>/<name>.npz`` (``QUIDE_DATA``, see ``quide.config``) with arrays x_train (N,H,W[,C])
   uint8, y_train, x_test, y_test: the layout ``shared/data/README.md`` describes. It is checked
   before use: shapes, dtypes, label range, every class present, non-empty splits, images that are
   not all one value; the sha256 of the file where the project knows it (MNIST), else the content.
   The label comes from the content hash: known MNIST, Fashion-MNIST and the CIFAR-10 JPEG stand-in
   are named by the project's own table (the npz's note never reaches their label, so one data set
   has one label wherever its file came from), the content of another known data set is refused,
   and anything else is labelled "<name> (unverified: <note as plain text>)".
2. Fashion-MNIST only: the IDX files of Debian's ``dataset-fashion-mnist`` package.
3. torchvision's download, where a network exists; the result is cached as npz.

A missing data set raises :class:`DataNotFoundError` naming where it looked and how to provide it;
a corrupt one raises :class:`CorruptDataError` and is never used.

Training on a GPU keeps the whole split on the device as uint8 (:class:`DeviceData`); augmentation
(random crop with 4-pixel zero padding + horizontal flip, per image) runs there too, and
normalisation uses mean/std computed from the training split.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..analysis.protocol import SPECS, DatasetSpec
from ..config import atomic_path, data_root

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
STAND_IN_LABEL = "CIFAR-10 (JPEG stand-in)"


# derived data set -> (the data set it is made from, JPEG quality); derived on load, the result kept
# under <data root>/derived/ for the next load (jpeg_control), never as a data set's npz
JPEG_CONTROLS = {"mnist_jpeg": ("mnist", 75)}
IMAGE_FOLDER_DATASETS = ("imagenet",)
DATASETS = tuple(SPECS) + IMAGE_FOLDER_DATASETS

# sha256 of whole npz files the project knows (shared/data/SHA256SUMS).
KNOWN_FILE_SHA256 = {
    "mnist.npz": "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64",
}
# content_hash() of the data sets the project knows (after the checks below: NHWC uint8 images,
# int64 labels). A label is given from these hashes, never from a note inside the npz: a file whose
# content matches none is labelled "unverified". MNIST and Fashion-MNIST: the same arrays whatever
# the file (shared/data/mnist.npz, Debian's dataset-fashion-mnist IDX files, torchvision's download).
KNOWN_CONTENT_SHA256 = {
    "mnist": "4ea99403d1d76e6116331d2568747fb5f261bf4370f34102bfb37d675fee1052",
    "fashion_mnist": "fcf981b560c5689bd7a86d238386835dcf98bc168442a7ec11cabdc20a9ebc46",
    "cifar10-jpeg-stand-in": "5dd2ae5a2178f0ee28c431869c8591f677ce06e6a7e22334131073798f71c53d",
}
# content hash -> (the data set it is, its label)
KNOWN_CONTENT = {
    KNOWN_CONTENT_SHA256["mnist"]: ("mnist", "MNIST"),
    KNOWN_CONTENT_SHA256["fashion_mnist"]: ("fashion_mnist", "Fashion-MNIST"),
    KNOWN_CONTENT_SHA256["cifar10-jpeg-stand-in"]: ("cifar10", STAND_IN_LABEL),
}


class DataNotFoundError(FileNotFoundError):
    """The data set is in none of the places looked at."""


class CorruptDataError(ValueError):
    """A data file exists but fails its checks; it is not used."""


@dataclass
class ImageData:
    """One image classification data set as uint8 arrays in NHWC layout."""
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    source: str      # human label of where the pixels came from, e.g. "CIFAR-10 (JPEG stand-in)"
    path: str        # the file it was read from
    sha256: str      # content_hash() of the four arrays

    @property
    def is_stand_in(self) -> bool:
        return self.source == STAND_IN_LABEL


def content_hash(x_train, y_train, x_test, y_test) -> str:
    """sha256 over the four arrays (name, dtype, shape, bytes): independent of npz zip metadata."""
    h = hashlib.sha256()
    for key, arr in (("x_train", x_train), ("y_train", y_train), ("x_test", x_test), ("y_test", y_test)):
        a = np.ascontiguousarray(arr)
        h.update(f"{key}|{a.dtype}|{a.shape}|".encode())
        if a.size:   # an empty array has no bytes (and memoryview cannot cast it)
            h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _canonical(spec: DatasetSpec, x: np.ndarray, y: np.ndarray, where: str, split: str):
    """NHWC uint8 images and int64 labels, checked against the spec."""
    if x.ndim == 3 and spec.image_shape[2] == 1:
        x = x[..., None]
    if x.dtype != np.uint8:
        raise CorruptDataError(f"{where}: x_{split} has dtype {x.dtype}, expected uint8")
    if x.ndim != 4 or tuple(x.shape[1:]) != spec.image_shape:
        raise CorruptDataError(f"{where}: x_{split} has shape {x.shape}, expected (N, *{spec.image_shape})")
    if y.ndim != 1 or len(y) != len(x):
        raise CorruptDataError(f"{where}: y_{split} has shape {y.shape} for {len(x)} images")
    if not np.issubdtype(y.dtype, np.integer):
        raise CorruptDataError(f"{where}: y_{split} has dtype {y.dtype}, expected integers")
    y = y.astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() >= spec.num_classes):
        raise CorruptDataError(f"{where}: y_{split} has labels outside 0..{spec.num_classes - 1}")
    return x, y


def _read_npz(spec: DatasetSpec, path: Path) -> ImageData:
    where = str(path)
    known_file = KNOWN_FILE_SHA256.get(path.name)
    # A known file with other bytes may still hold the known content (np.savez of a torchvision
    # download stamps other zip times): it is judged by its content hash below.
    file_differs = known_file is not None and file_sha256(path) != known_file
    differs = (f"sha256 differs from the known {spec.label} file ({known_file[:12]}...)" if file_differs else "")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = {"x_train", "y_train", "x_test", "y_test"} - set(z.files)
            if missing:
                raise CorruptDataError(f"{where}: {differs + ' and ' if differs else ''}missing arrays {sorted(missing)}")
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
            source_note = str(z["source"]) if "source" in z.files else ""
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        if isinstance(err, CorruptDataError):
            raise
        raise CorruptDataError(f"{where}: {differs + ' and it is ' if differs else ''}not a readable npz file "
                               f"({err})") from err
    x_train, y_train = _canonical(spec, arrays["x_train"], arrays["y_train"], where, "train")
    x_test, y_test = _canonical(spec, arrays["x_test"], arrays["y_test"], where, "test")
    for split, x in (("train", x_train), ("test", x_test)):
        if len(x) == 0:
            raise CorruptDataError(f"{where}: the {split} split is empty (x_{split} has shape {x.shape})")
    absent = np.setdiff1d(np.arange(spec.num_classes), np.unique(y_train))
    if len(absent):
        raise CorruptDataError(f"{where}: classes {absent.tolist()[:10]} never occur in y_train")
    flat = x_train.reshape(-1, x_train.shape[-1])
    constant = np.flatnonzero(flat.min(0) == flat.max(0))
    if len(constant):
        raise CorruptDataError(f"{where}: x_train channel {constant.tolist()} has one value in every pixel "
                               "(constant images: std 0, training would give NaN)")
    digest = content_hash(x_train, y_train, x_test, y_test)
    source = _label(spec, digest, source_note, where, differs)
    return ImageData(spec.name, x_train, y_train, x_test, y_test, spec.num_classes, source, where, digest)


NOTE_CHARS = 80   # the most of an npz's note that an unverified label quotes


def plain_note(note: str) -> str:
    """An npz's free-text note as one short line of plain text: markup tags and angle brackets
    removed, control characters and runs of white space made one space, at most NOTE_CHARS."""
    text = re.sub(r"<[^>]*>?", " ", str(note)).replace(">", " ")
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= NOTE_CHARS else text[:NOTE_CHARS - 3].rstrip() + "..."


def _label(spec: DatasetSpec, digest: str, note: str, where: str, file_differs: str) -> str:
    """How records name the data: known content by the project's own label (never the note),
    else "unverified" with the note as plain text."""
    known = KNOWN_CONTENT.get(digest)
    if known is not None and known[0] != spec.name:
        raise CorruptDataError(f"{where}: its content is the known {known[1]} data, not {spec.label} "
                               f"(content sha256 {digest[:12]}...)")
    if known is not None:
        return known[1]
    note = plain_note(note)
    if file_differs:
        raise CorruptDataError(f"{where}: {file_differs} and its content matches no known {spec.label} "
                               f"(content sha256 {digest[:12]}...); replace it with the original")
    expected = KNOWN_CONTENT_SHA256["cifar10-jpeg-stand-in"]
    if spec.name == "cifar10" and "stand-in" in note.lower():
        raise CorruptDataError(f"{where}: content differs from the known CIFAR-10 JPEG stand-in "
                               f"({digest[:12]}... vs {expected[:12]}...); rebuild it with "
                               "shared/data/prepare_cifar10_jpeg.py")
    return f"{spec.label} (unverified{': ' + note if note else ''})"


def save_npz(path: Path, x_train, y_train, x_test, y_test, source: str = "") -> None:
    """Write the npz layout atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                 **({"source": np.array(source)} if source else {}))


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST family's format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise CorruptDataError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise CorruptDataError(f"{path}: {data.size} bytes for shape {dims}")
    return data.reshape(dims)


def _from_debian_fashion(folder: Path):
    names = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
    arrays = {}
    for key, stem in names.items():
        candidates = [folder / f"{stem}.gz", folder / stem]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            return None
        arrays[key] = _read_idx(found)
    return arrays


_TORCHVISION = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100"}


def _from_torchvision(name: str, folder: Path):
    import torchvision.datasets as tvd
    cls = getattr(tvd, _TORCHVISION[name])
    splits = [cls(str(folder), train=train, download=True) for train in (True, False)]
    def arrays(ds):
        x = ds.data.numpy() if isinstance(ds.data, torch.Tensor) else np.asarray(ds.data)
        return x, np.asarray(ds.targets)
    (x_train, y_train), (x_test, y_test) = (arrays(s) for s in splits)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def load_dataset(name: str, root: Path | str | None = None, download: bool = True) -> ImageData:
    """Load ``name`` (one of ``SPECS``) as uint8 arrays; see the module docstring for the order."""
    if name not in SPECS:
        hint = " (ImageNet is read as an ImageFolder: use imagenet_folder())" if name == "imagenet" else ""
        raise ValueError(f"unknown dataset {name!r}{hint}; choose one of {sorted(SPECS)}")
    spec = SPECS[name]
    if name in JPEG_CONTROLS:
        return jpeg_control(name, root, download)
    root = Path(root) if root is not None else data_root()
    npz = root / f"{name}.npz"
    looked = [str(npz)]
    if npz.is_file():
        return _read_npz(spec, npz)

    arrays, source = None, ""
    if name == "fashion_mnist":
        looked.append(str(DEBIAN_FASHION_MNIST))
        if DEBIAN_FASHION_MNIST.is_dir():
            arrays, source = _from_debian_fashion(DEBIAN_FASHION_MNIST), "Debian dataset-fashion-mnist"
    if arrays is None and download:
        looked.append(f"torchvision download into {root / 'torchvision'}")
        try:
            arrays, source = _from_torchvision(name, root / "torchvision"), "torchvision download"
        except Exception as err:  # no network, mirror down, ...: say so below
            looked[-1] += f" (failed: {type(err).__name__}: {str(err)[:120]})"
    if arrays is None:
        how = {
            "mnist": "copy shared/data/mnist.npz there",
            "cifar10": "run shared/data/prepare_cifar10_jpeg.py SRC.tar.xz <data root>/cifar10.npz "
                       "(the JPEG stand-in) or let torchvision download the original",
            "fashion_mnist": "apt-get install dataset-fashion-mnist, or let torchvision download it",
            "cifar100": "let torchvision download it on a machine with a network, or write the npz layout",
        }[name]
        raise DataNotFoundError(f"{spec.label} not found. Looked in: {'; '.join(looked)}. "
                                f"To provide it: {how}. Set QUIDE_DATA to choose the data root.")
    save_npz(npz, **arrays, source=source)
    try:
        return _read_npz(spec, npz)
    except CorruptDataError:
        npz.unlink(missing_ok=True)   # a refused download is not kept as the cache
        raise


def jpeg_reencode(images: np.ndarray, quality: int) -> np.ndarray:
    """Each uint8 NHWC image saved as a baseline JPEG of ``quality`` by Pillow and decoded again
    (the CIFAR-10 stand-in's q75 re-encoding, shared/data/README.md). Same shape and dtype."""
    import io

    from PIL import Image
    if not (isinstance(quality, int) and 1 <= quality <= 95):
        raise ValueError(f"JPEG quality must be an int in 1..95; got {quality!r}")
    from concurrent.futures import ThreadPoolExecutor
    gray = images.shape[-1] == 1
    out = np.empty_like(images)

    def reencode(i):
        buffer = io.BytesIO()
        Image.fromarray(images[i, ..., 0] if gray else images[i]).save(buffer, format="JPEG", quality=quality)
        decoded = np.asarray(Image.open(buffer))
        out[i] = decoded[..., None] if gray else decoded

    # Pillow releases the GIL while it codes, so threads scale with cores; each image is its own
    # task writing its own slot, so the result does not depend on the number of threads
    with ThreadPoolExecutor(max_workers=min(32, os.cpu_count() or 1)) as pool:
        list(pool.map(reencode, range(len(images)), chunksize=256))
    return out


def _codec() -> str:
    """The JPEG coder that decides the re-encoded bytes: Pillow's version and its libjpeg's."""
    import PIL
    from PIL import features
    return f"Pillow {PIL.__version__}, libjpeg-turbo {features.version('libjpeg_turbo') or 'absent'}"


def jpeg_control(name: str, root: Path | str | None = None, download: bool = True) -> ImageData:
    """A ``JPEG_CONTROLS`` data set: its source loaded (and verified) as usual, every image of both
    splits JPEG re-encoded, labels unchanged. Derived by code, so its label comes from its spec and
    its sha256 (of the derived arrays) is recorded with each result.

    Re-encoding MNIST's 70,000 images takes seconds of every CPU (about 15 s on 2 cores), and the
    planner, each training and each run of the control load it, so the derived images are kept
    in ``<root>/derived/``, named by the source's content hash, the quality and the coder
    (:func:`_codec`); a kept file is used only while its arrays still hash to the content hash
    written with them, else it is derived and written again. A root that cannot be written keeps
    nothing."""
    spec = SPECS[name]
    source_name, quality = JPEG_CONTROLS[name]
    source = load_dataset(source_name, root, download)
    codec = _codec()
    key = hashlib.sha256(f"{source.sha256}|q{quality}|{codec}".encode()).hexdigest()[:16]
    kept = Path(root if root is not None else data_root()) / "derived" / f"{name}-{key}.npz"
    x_train = x_test = None
    try:
        with np.load(kept, allow_pickle=False) as z:
            x_train, x_test, digest = z["x_train"], z["x_test"], str(z["content_sha256"])
        if content_hash(x_train, source.y_train, x_test, source.y_test) != digest:
            x_train = None   # damaged: derive again
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        x_train = None       # not kept yet, or unreadable
    if x_train is None:
        x_train, x_test = jpeg_reencode(source.x_train, quality), jpeg_reencode(source.x_test, quality)
        digest = content_hash(x_train, source.y_train, x_test, source.y_test)
        try:
            with atomic_path(kept, suffix=".npz") as tmp:   # trainings started together may race: rename wins
                np.savez(tmp, x_train=x_train, x_test=x_test, content_sha256=np.array(digest),
                         made_from=np.array(f"{source.path} ({source.sha256}), JPEG q{quality}, {codec}"))
        except OSError:
            pass   # a read-only data root: derive on every load
    return ImageData(name, x_train, source.y_train, x_test, source.y_test, spec.num_classes, spec.label,
                     f"{source.path} (JPEG q{quality} on load)", digest)


def imagenet_folder(root: Path | str | None = None) -> Path:
    """The ImageNet ImageFolder tree (``train/<wnid>/*.JPEG``, ``val/<wnid>/*.JPEG``)."""
    folder = Path(root) if root is not None else data_root() / "imagenet"
    for split in ("train", "val"):
        if not (folder / split).is_dir():
            raise DataNotFoundError(f"ImageNet not found: expected {folder / split} in ImageFolder "
                                    "layout (one folder per class). Put it under <data root>/imagenet "
                                    "or pass the folder; QUIDE_DATA sets the data root.")
    return folder


# --- seeded subsets -------------------------------------------------------------------------

def calibration_indices(n_train: int, size: int, seed: int) -> np.ndarray:
    """``size`` distinct training indices drawn uniformly with ``seed`` (the paper: 512 per seed)."""
    if size > n_train:
        raise ValueError(f"calib_size {size} exceeds the {n_train} training images")
    return np.random.default_rng(seed).choice(n_train, size=size, replace=False)


def stratified_indices(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subset with ``size // classes`` images of every class in ``labels``
    (all of a class that has fewer); every index when ``size`` covers them all. A prefix would not
    do: test splits are often sorted by class (CIFAR-10's first 1,000 test images are all class 0)."""
    labels = np.asarray(labels)
    if size >= len(labels):
        return np.arange(len(labels))
    classes = np.unique(labels)
    per_class = size // len(classes)
    if per_class < 1:
        raise ValueError(f"a subset of {size} images cannot hold one image of each of {len(classes)} classes")
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(labels == c), size=min(per_class, int(np.sum(labels == c))), replace=False)
              for c in classes]
    return np.sort(np.concatenate(picked))


def validation_split(n_train: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices): ``val_size`` held out by ``seed``, for best-epoch choice."""
    if not 0 <= val_size < n_train:
        raise ValueError(f"val_size must be in [0, {n_train}); got {val_size}")
    perm = np.random.default_rng(seed + 1_000_003).permutation(n_train)
    return np.sort(perm[val_size:]), np.sort(perm[:val_size])


def index_hash(indices: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()[:16]


def channel_stats(x_uint8: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of NHWC uint8 images scaled to [0, 1], in float64."""
    n_ch = x_uint8.shape[-1]
    total = np.zeros(n_ch)
    total_sq = np.zeros(n_ch)
    for start in range(0, len(x_uint8), chunk):
        block = x_uint8[start:start + chunk].reshape(-1, n_ch).astype(np.float64) / 255.0
        total += block.sum(0)
        total_sq += (block ** 2).sum(0)
    count = x_uint8.size / n_ch
    mean = total / count
    return mean, np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0))


# --- on-device batches ----------------------------------------------------------------------

class DeviceData:
    """One split held on the device as uint8 NCHW; yields normalized float batches.

    ``mean``/``std`` come from the training split (:func:`channel_stats`).
    """
    CHUNK_IMAGES = 16384   # images prepared per chunk of batches: bounds memory, amortizes launches

    def __init__(self, x_uint8: np.ndarray, y: np.ndarray, mean, std, device="cpu"):
        self.device = torch.device(device)
        self.x = torch.from_numpy(np.ascontiguousarray(x_uint8)).to(self.device).permute(0, 3, 1, 2).contiguous()
        self.y = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(self.device)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)

    def __len__(self) -> int:
        return len(self.y)

    def normalize(self, x_uint8: torch.Tensor) -> torch.Tensor:
        return self._standardize(x_uint8.float() / 255.0)

    def _standardize(self, x01: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1] to the training split's zero mean, unit std."""
        return (x01 - self.mean) / self.std

    def images(self, indices=None) -> torch.Tensor:
        """Normalized images (all, or at ``indices``), e.g. the calibration set."""
        x = self.x if indices is None else self.x[torch.as_tensor(indices, device=self.device)]
        return self.normalize(x)

    def batches(self, batch_size: int, shuffle: bool = False, augment: bool = False,
                generator: torch.Generator | None = None, drop_last: bool = False):
        """Yield (x, y) batches. Images are gathered, augmented and normalized a chunk of batches
        at a time (a few kernels per chunk rather than per batch); slices are contiguous."""
        n = len(self)
        order = (torch.randperm(n, device=self.device, generator=generator) if shuffle
                 else torch.arange(n, device=self.device))
        stop = n - n % batch_size if drop_last else n
        chunk = max(1, self.CHUNK_IMAGES // batch_size) * batch_size
        for chunk_start in range(0, stop, chunk):
            idx = order[chunk_start:min(chunk_start + chunk, stop)]
            x = self.x[idx]
            if augment:   # on the uint8 pixels: a quarter of the bytes to move, the same values
                x = random_crop_flip(x, pad=4, generator=generator)
            x = self.normalize(x)
            y = self.y[idx]
            for start in range(0, len(idx), batch_size):
                yield x[start:start + batch_size], y[start:start + batch_size]


def random_crop_flip(x: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-image random crop from a zero-padded copy plus a random horizontal flip (NCHW).

    Same distribution as torchvision's RandomCrop(size, padding=pad) + RandomHorizontalFlip(),
    applied before normalisation, as torchvision does. It only moves pixels (zeros for the
    padding), so it gives the same values on uint8 pixels converted afterwards as on pixels in
    [0, 1]; :meth:`DeviceData.batches` crops the uint8 ones.
    """
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), device=x.device, generator=generator)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]   # n,1,h,1
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]   # n,1,1,w
    flip = torch.rand(n, device=x.device, generator=generator) < 0.5
    cols = torch.where(flip[:, None, None, None], cols.flip(-1), cols)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


@dataclass
class Splits:
    """Train/validation/test splits on one device, normalized with the training split's statistics."""
    train: DeviceData
    val: DeviceData | None
    test: DeviceData


def device_splits(data: ImageData, device="cpu", val_size: int = 0, seed: int = 0) -> Splits:
    """Put ``data`` on ``device``; ``val_size`` training images (drawn by ``seed``) held out."""
    mean, std = channel_stats(data.x_train)
    if not (std > 0).all():
        raise ValueError(f"{data.name}: training images have std {std.tolist()} (constant images); "
                         "normalising them would give NaN")
    train_idx, val_idx = validation_split(len(data.y_train), val_size, seed)
    make = lambda x, y: DeviceData(x, y, mean, std, device)  # noqa: E731
    val = make(data.x_train[val_idx], data.y_train[val_idx]) if val_size else None
    return Splits(make(data.x_train[train_idx], data.y_train[train_idx]), val, make(data.x_test, data.y_test))


# --- ImageNet (ImageFolder) -----------------------------------------------------------------

IMAGENET_MEAN = (0.485, 0.456, 0.406)   # torchvision's ImageNet weights expect these
IMAGENET_STD = (0.229, 0.224, 0.225)


class FolderData:
    """An ImageFolder split with torchvision's eval transform (resize 256, centre crop 224).

    Offers the same interface the sweep uses on :class:`DeviceData`: ``len``, ``images(indices)``
    and ``batches(batch_size)``, with tensors delivered on ``device``.
    """

    def __init__(self, folder: Path, device="cpu", workers: int = 0, resize: int = 256, crop: int = 224):
        import torchvision.transforms as T
        from torchvision.datasets import ImageFolder
        transform = T.Compose([T.Resize(resize), T.CenterCrop(crop), T.ToTensor(),
                               T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
        self.dataset = ImageFolder(str(folder), transform=transform)
        self.device, self.workers = torch.device(device), workers
        self.y = torch.tensor(self.dataset.targets, device=self.device)

    @property
    def num_classes(self) -> int:
        return len(self.dataset.classes)

    def __len__(self) -> int:
        return len(self.dataset)

    def images(self, indices=None) -> torch.Tensor:
        indices = range(len(self)) if indices is None else indices
        return torch.stack([self.dataset[int(i)][0] for i in indices]).to(self.device)

    def batches(self, batch_size: int, **_):
        loader = torch.utils.data.DataLoader(self.dataset, batch_size=batch_size, shuffle=False,
                                             num_workers=self.workers,
                                             pin_memory=self.device.type == "cuda")
        for x, y in loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


def folder_hash(folder: Path) -> str:
    """sha256 over the relative paths and sizes of an ImageFolder tree (cheap, content-sensitive
    enough to tell two trees apart; hashing every JPEG of ImageNet would take minutes)."""
    h = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            h.update(f"{path.relative_to(folder)}|{path.stat().st_size}\n".encode())
    return h.hexdigest()
