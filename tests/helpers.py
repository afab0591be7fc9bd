"""Test helpers (importable from every test module: pytest puts tests/ on sys.path)."""
import numpy as np


def synthetic_arrays(n_train=64, n_test=32, shape=(8, 8, 3), num_classes=4, seed=0):
    """Small learnable image data: each class has its own mean brightness pattern."""
    rng = np.random.default_rng(seed)
    def make(n):
        y = np.arange(n) % num_classes
        rng.shuffle(y)
        base = (y[:, None, None, None] + 1) * (200 // (num_classes + 1))
        x = np.clip(base + rng.integers(-20, 20, size=(n, *shape)), 0, 255).astype(np.uint8)
        return x, y.astype(np.int64)
    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
