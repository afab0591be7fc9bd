"""Where a number came from: the provenance every record carries (code, software, hardware, data
and time). It asks the torch runtime for its versions and the card, so it lives in the measurement
layer; the git state comes from :func:`quide.analysis.results.git_state`."""
from __future__ import annotations

import datetime as _dt
import platform

import numpy as np
import torch
import torchvision

from ..analysis.results import git_state


def gpu_identity() -> dict:
    """The card this process computes on: its UUID and PCI address (None without CUDA). Each run of
    `quide reproduce` sees one GPU, and GPUs of one model time the same graph up to about 1% apart
    (benchmarks/results/timer_probe_h200_4gpus.txt), so a timing is traced to its card, not only to
    the GPU's model name."""
    if not torch.cuda.is_available():
        return {"gpu_uuid": None, "gpu_pci_bus_id": None}
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    uuid = getattr(props, "uuid", None)
    bus = [getattr(props, f"pci_{part}_id", None) for part in ("domain", "bus", "device")]
    return {"gpu_uuid": f"GPU-{uuid}" if uuid is not None else None,
            "gpu_pci_bus_id": "{:08x}:{:02x}:{:02x}.0".format(*bus) if None not in bus else None}


def provenance(*, device: str | None = None, driver: str | None = None, data_sha256: str | None = None,
               calib_hash: str | None = None, wall_s: float | None = None, **extra) -> dict:
    """Where a number came from: code, software, hardware, data and time."""
    from .. import __version__
    prov = {
        **git_state(),
        "quide": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "cuda": torch.version.cuda,
        "device": device,
        "driver": driver,
        **gpu_identity(),
        "data_sha256": data_sha256,
        "calib_indices_sha256": calib_hash,
        "wall_s": wall_s,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    prov.update(extra)
    return prov
