"""Data: resolution order, checks that refuse bad files, seeded subsets, on-device augmentation."""
import gzip
import shutil

import numpy as np
import pytest
import torch

from quide.measure import data as qd
from helpers import synthetic_arrays


def test_mnist_from_the_data_root(mnist):
    assert mnist.x_train.shape == (60000, 28, 28, 1) and mnist.x_test.shape == (10000, 28, 28, 1)
    assert mnist.x_train.dtype == np.uint8 and mnist.y_train.dtype == np.int64
    assert mnist.source == "MNIST" and not mnist.is_stand_in
    assert np.bincount(mnist.y_test).sum() == 10000
    mean, std = qd.channel_stats(mnist.x_train)
    assert mean[0] == pytest.approx(0.1307, abs=1e-4) and std[0] == pytest.approx(0.3081, abs=1e-4)


def test_cifar10_stand_in_is_labelled(cifar10):
    assert cifar10.source == "CIFAR-10 (JPEG stand-in)" and cifar10.is_stand_in
    assert cifar10.sha256 == qd.KNOWN_CONTENT_SHA256["cifar10-jpeg-stand-in"]
    assert (np.bincount(cifar10.y_train) == 5000).all()


def test_mnist_with_wrong_hash_is_refused(mnist, tmp_path):
    bad = tmp_path / "mnist.npz"
    x_train = mnist.x_train[:, :, :, 0].copy()
    x_train[0, 0, 0] ^= 1   # one pixel
    qd.save_npz(bad, x_train, mnist.y_train, mnist.x_test[:, :, :, 0], mnist.y_test)
    with pytest.raises(qd.CorruptDataError, match="sha256 differs .* content matches no known MNIST"):
        qd.load_dataset("mnist", root=tmp_path, download=False)


def test_stand_in_with_wrong_content_is_refused(tmp_path):
    arrays = synthetic_arrays(n_train=40, n_test=20, shape=(32, 32, 3), num_classes=10)
    qd.save_npz(tmp_path / "cifar10.npz", **arrays, source="CIFAR-10 JPEG q75 stand-in (lossy)")
    with pytest.raises(qd.CorruptDataError, match="stand-in"):
        qd.load_dataset("cifar10", root=tmp_path, download=False)


def test_truncated_npz_is_refused(synthetic_root):
    path = synthetic_root / "cifar100.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(qd.CorruptDataError, match="cifar100.npz"):
        qd.load_dataset("cifar100", root=synthetic_root, download=False)


@pytest.mark.parametrize("mutate, message", [
    (lambda a: a.update(x_train=a["x_train"][:, :16]), "shape"),
    (lambda a: a.update(x_train=a["x_train"].astype(np.float32)), "dtype"),
    (lambda a: a.update(y_train=a["y_train"][:-1]), "y_train"),
    (lambda a: a.update(y_test=a["y_test"] + 100), "labels outside"),
    (lambda a: a.update(y_train=np.zeros_like(a["y_train"])), "never occur"),
])
def test_malformed_arrays_are_refused(tmp_path, mutate, message):
    arrays = synthetic_arrays(n_train=300, n_test=100, shape=(32, 32, 3), num_classes=100)
    mutate(arrays)
    qd.save_npz(tmp_path / "cifar100.npz", **arrays)
    with pytest.raises(qd.CorruptDataError, match=message):
        qd.load_dataset("cifar100", root=tmp_path, download=False)


def test_missing_dataset_says_what_where_and_how(tmp_path):
    with pytest.raises(qd.DataNotFoundError) as err:
        qd.load_dataset("cifar100", root=tmp_path, download=False)
    text = str(err.value)
    assert "CIFAR-100" in text and str(tmp_path / "cifar100.npz") in text and "QUIDE_DATA" in text


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        qd.load_dataset("svhn")
    with pytest.raises(ValueError, match="ImageFolder"):
        qd.load_dataset("imagenet")


def test_synthetic_cifar100_layout_loads(synthetic_root):
    d = qd.load_dataset("cifar100", root=synthetic_root, download=False)
    assert d.num_classes == 100 and d.x_train.shape == (300, 32, 32, 3)
    assert d.source == "CIFAR-100 (unverified)"   # content the project holds no hash for


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_from_debian_idx_files(tmp_path, monkeypatch):
    debian = tmp_path / "debian"
    debian.mkdir()
    arrays = synthetic_arrays(n_train=50, n_test=20, shape=(28, 28, 1), num_classes=10)
    _write_idx(debian / "train-images-idx3-ubyte.gz", arrays["x_train"][..., 0])
    _write_idx(debian / "train-labels-idx1-ubyte.gz", arrays["y_train"])
    _write_idx(debian / "t10k-images-idx3-ubyte.gz", arrays["x_test"][..., 0])
    _write_idx(debian / "t10k-labels-idx1-ubyte.gz", arrays["y_test"])
    monkeypatch.setattr(qd, "DEBIAN_FASHION_MNIST", debian)
    root = tmp_path / "root"
    d = qd.load_dataset("fashion_mnist", root=root, download=False)
    assert np.array_equal(d.x_train, arrays["x_train"]) and np.array_equal(d.y_test, arrays["y_test"])
    assert (root / "fashion_mnist.npz").is_file()               # cached as npz
    shutil.rmtree(debian)
    again = qd.load_dataset("fashion_mnist", root=root, download=False)   # now from the cache
    assert again.sha256 == d.sha256


def test_imagenet_folder_missing(tmp_path):
    with pytest.raises(qd.DataNotFoundError, match="ImageFolder"):
        qd.imagenet_folder(tmp_path)


def test_data_root_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("QUIDE_DATA", str(tmp_path))
    from quide.config import data_root
    assert data_root() == tmp_path


def test_validation_split_is_disjoint_and_seeded():
    tr, va = qd.validation_split(1000, 100, seed=3)
    assert len(va) == 100 and len(tr) == 900 and not set(tr) & set(va)
    assert np.array_equal(va, qd.validation_split(1000, 100, seed=3)[1])
    with pytest.raises(ValueError, match="calib_size"):
        qd.calibration_indices(10, 11, seed=0)


def test_batches_cover_each_image_once_per_epoch():
    arrays = synthetic_arrays(n_train=103, n_test=10, shape=(8, 8, 3), num_classes=4)
    dd = qd.DeviceData(arrays["x_train"], np.arange(103), [0.5] * 3, [0.25] * 3)
    seen = torch.cat([y for _, y in dd.batches(16, shuffle=True, generator=torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == list(range(103))
    x, _ = next(dd.batches(4))
    expected = (torch.from_numpy(arrays["x_train"][:4]).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    assert torch.allclose(x, expected)


def test_augmented_batches_crop_uint8_with_the_values_of_cropping_floats():
    """batches() crops the uint8 pixels (fewer bytes to move); the batches are bit for bit those of
    cropping the [0, 1] floats, so the trained weights do not change."""
    arrays = synthetic_arrays(n_train=40, n_test=4, shape=(8, 8, 3), num_classes=4)
    dd = qd.DeviceData(arrays["x_train"], np.arange(40), [0.4, 0.5, 0.6], [0.2, 0.25, 0.3])
    got = torch.cat([x for x, _ in dd.batches(16, shuffle=True, augment=True, generator=torch.Generator().manual_seed(3))])
    gen = torch.Generator().manual_seed(3)
    order = torch.randperm(40, generator=gen)
    floats = dd.x[order].float() / 255.0
    expected = (qd.random_crop_flip(floats, pad=4, generator=gen) - dd.mean) / dd.std
    assert got.view(-1).view(torch.int32).tolist() == expected.view(-1).view(torch.int32).tolist()


def test_random_crop_flip_is_a_window_of_the_padded_image():
    x = torch.rand(32, 3, 8, 8)
    out = qd.random_crop_flip(x, pad=4, generator=torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    flips = 0
    for i in range(len(x)):
        windows = [padded[i, :, dy:dy + 8, dx:dx + 8] for dy in range(9) for dx in range(9)]
        plain = any(torch.equal(out[i], w) for w in windows)
        flipped = any(torch.equal(out[i], w.flip(-1)) for w in windows)
        assert plain or flipped
        flips += flipped and not plain
    assert 0 < flips < len(x)   # some flipped, some not


# --- labels from content hashes, and what is refused (issue 14, cases 4 and 9) -----------------------

@pytest.mark.slow
def test_the_stand_in_is_labelled_by_its_content_not_its_note(cifar10, tmp_path):
    """Case 4: the known stand-in content without the npz's note is still "CIFAR-10 (JPEG stand-in)"."""
    qd.save_npz(tmp_path / "cifar10.npz", cifar10.x_train, cifar10.y_train, cifar10.x_test, cifar10.y_test)
    d = qd.load_dataset("cifar10", root=tmp_path, download=False)
    assert d.source == "CIFAR-10 (JPEG stand-in)" and d.is_stand_in


def test_a_note_cannot_name_unknown_content(tmp_path):
    arrays = synthetic_arrays(n_train=40, n_test=20, shape=(32, 32, 3), num_classes=10)
    qd.save_npz(tmp_path / "cifar10.npz", **arrays, source="the original CIFAR-10, trust me")
    assert qd.load_dataset("cifar10", root=tmp_path, download=False).source == \
        "CIFAR-10 (unverified: the original CIFAR-10, trust me)"


def test_mnist_offered_as_fashion_mnist_is_refused(mnist, tmp_path):
    """Case 4: a fashion_mnist.npz that is really MNIST is refused by its content hash."""
    qd.save_npz(tmp_path / "fashion_mnist.npz", mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test,
                source="Fashion-MNIST")
    with pytest.raises(qd.CorruptDataError, match="fashion_mnist.npz: its content is the known MNIST data, "
                                                  "not Fashion-MNIST"):
        qd.load_dataset("fashion_mnist", root=tmp_path, download=False)


@pytest.fixture(scope="module")
def debian_fashion(tmp_path_factory):
    if not qd.DEBIAN_FASHION_MNIST.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    return qd.load_dataset("fashion_mnist", root=tmp_path_factory.mktemp("fashion"), download=False)


def test_debian_fashion_mnist_has_the_known_hash(debian_fashion):
    assert debian_fashion.sha256 == qd.KNOWN_CONTENT_SHA256["fashion_mnist"]
    assert debian_fashion.source == "Fashion-MNIST"   # known content: the project's label, not the file's note


def test_fashion_mnist_with_shuffled_labels_is_labelled_unverified(debian_fashion, tmp_path):
    """Case 4: shuffled labels change the content hash: not presented as Fashion-MNIST."""
    d = debian_fashion
    y = np.random.default_rng(0).permutation(d.y_train)
    qd.save_npz(tmp_path / "fashion_mnist.npz", d.x_train, y, d.x_test, d.y_test, source="Fashion-MNIST")
    assert qd.load_dataset("fashion_mnist", root=tmp_path, download=False).source == \
        "Fashion-MNIST (unverified: Fashion-MNIST)"


@pytest.mark.parametrize("split", ["train", "test"])
def test_an_empty_split_is_refused(tmp_path, split):
    """Case 9: an empty split is refused by name (it crashed content_hash)."""
    arrays = synthetic_arrays(n_train=300, n_test=100, shape=(32, 32, 3), num_classes=100)
    arrays[f"x_{split}"], arrays[f"y_{split}"] = arrays[f"x_{split}"][:0], arrays[f"y_{split}"][:0]
    qd.save_npz(tmp_path / "cifar100.npz", **arrays)
    with pytest.raises(qd.CorruptDataError, match=f"cifar100.npz: .*{split}"):
        qd.load_dataset("cifar100", root=tmp_path, download=False)


def test_constant_images_are_refused(tmp_path):
    """Case 9: images of one value have std 0 and would train to NaN."""
    arrays = synthetic_arrays(n_train=300, n_test=100, shape=(32, 32, 3), num_classes=100)
    arrays["x_train"][:] = 128
    qd.save_npz(tmp_path / "cifar100.npz", **arrays)
    with pytest.raises(qd.CorruptDataError, match="constant images"):
        qd.load_dataset("cifar100", root=tmp_path, download=False)


def _torchvision_copy(mnist, tweak=False):
    """What torchvision's MNIST gives: (N, 28, 28) uint8 images, int64 targets."""
    y_train = mnist.y_train.copy()
    if tweak:
        y_train[:2] = y_train[1::-1] if y_train[0] != y_train[1] else (y_train[:2] + 1) % 10
    return {"x_train": mnist.x_train[..., 0], "y_train": y_train,
            "x_test": mnist.x_test[..., 0], "y_test": mnist.y_test}


def test_a_torchvision_download_of_mnist_is_accepted_by_content(mnist, tmp_path, monkeypatch):
    """Case 9: the download's npz has other bytes than shared/data/mnist.npz but the same content."""
    monkeypatch.setattr(qd, "_from_torchvision", lambda name, folder: _torchvision_copy(mnist))
    d = qd.load_dataset("mnist", root=tmp_path, download=True)
    assert d.sha256 == mnist.sha256 and d.source == "MNIST"   # one label wherever the file came from
    assert qd.load_dataset("mnist", root=tmp_path, download=False).sha256 == mnist.sha256   # cached


def test_a_refused_download_is_not_cached(mnist, tmp_path, monkeypatch):
    monkeypatch.setattr(qd, "_from_torchvision", lambda name, folder: _torchvision_copy(mnist, tweak=True))
    with pytest.raises(qd.CorruptDataError, match="content matches no known MNIST"):
        qd.load_dataset("mnist", root=tmp_path, download=True)
    assert not (tmp_path / "mnist.npz").exists()


def test_jpeg_reencode_is_lossy_deterministic_and_keeps_the_layout():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, size=(3, 28, 28, 1), dtype=np.uint8)
    color = rng.integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)
    for images in (gray, color):
        once = qd.jpeg_reencode(images, 75)
        assert once.shape == images.shape and once.dtype == np.uint8
        assert (once != images).any()                            # lossy: noise does not survive q75
        assert np.array_equal(once, qd.jpeg_reencode(images, 75))   # the same bytes every time
    flat = np.full((1, 16, 16, 1), 128, dtype=np.uint8)
    assert np.array_equal(qd.jpeg_reencode(flat, 75), flat)      # a flat image is exact in JPEG
    with pytest.raises(ValueError, match="quality"):
        qd.jpeg_reencode(gray, 0)


def test_the_jpeg_mnist_control_is_mnist_re_encoded_and_labelled_so(tmp_path, monkeypatch):
    monkeypatch.setattr(qd, "KNOWN_FILE_SHA256", {})   # a small made-up MNIST, read as "unverified"
    arrays = synthetic_arrays(n_train=40, n_test=20, shape=(28, 28, 1), num_classes=10)
    qd.save_npz(tmp_path / "mnist.npz", **arrays)
    control = qd.load_dataset("mnist_jpeg", tmp_path, download=False)
    assert control.source == "MNIST (JPEG q75 control)" and control.name == "mnist_jpeg"
    assert np.array_equal(control.x_test, qd.jpeg_reencode(arrays["x_test"], 75))
    assert np.array_equal(control.y_train, arrays["y_train"])
    assert control.sha256 != qd.load_dataset("mnist", tmp_path, download=False).sha256
    assert not (tmp_path / "mnist_jpeg.npz").exists()   # derived on load, never cached as data


def test_the_jpeg_control_is_kept_for_the_next_load_and_derived_again_when_its_source_or_file_changes(
        tmp_path, monkeypatch):
    monkeypatch.setattr(qd, "KNOWN_FILE_SHA256", {})
    arrays = synthetic_arrays(n_train=40, n_test=20, shape=(28, 28, 1), num_classes=10)
    qd.save_npz(tmp_path / "mnist.npz", **arrays)
    encode, calls = qd.jpeg_reencode, []
    monkeypatch.setattr(qd, "jpeg_reencode", lambda images, q: calls.append(len(images)) or encode(images, q))
    first = qd.load_dataset("mnist_jpeg", tmp_path, download=False)
    assert calls == [40, 20] and len(list((tmp_path / "derived").glob("mnist_jpeg-*.npz"))) == 1
    again = qd.load_dataset("mnist_jpeg", tmp_path, download=False)
    assert calls == [40, 20]                                   # read back, not re-encoded
    assert again.sha256 == first.sha256 and np.array_equal(again.x_train, first.x_train)
    assert np.array_equal(again.x_test, encode(arrays["x_test"], 75)) and again.source == first.source

    kept = next((tmp_path / "derived").glob("mnist_jpeg-*.npz"))
    with np.load(kept) as z:                                   # a damaged kept file: its hash no longer matches
        np.savez(kept, x_train=z["x_train"][::-1], x_test=z["x_test"], content_sha256=z["content_sha256"])
    assert qd.load_dataset("mnist_jpeg", tmp_path, download=False).sha256 == first.sha256
    assert calls == [40, 20, 40, 20]
    kept.write_bytes(b"not an npz")                            # an unreadable one
    assert qd.load_dataset("mnist_jpeg", tmp_path, download=False).sha256 == first.sha256
    assert len(calls) == 6

    arrays["x_train"][0] = 255 - arrays["x_train"][0]          # another source: another kept file
    qd.save_npz(tmp_path / "mnist.npz", **arrays)
    other = qd.load_dataset("mnist_jpeg", tmp_path, download=False)
    assert len(calls) == 8 and other.sha256 != first.sha256
    assert len(list((tmp_path / "derived").glob("mnist_jpeg-*.npz"))) == 2
