"""Do trainings that share one GPU overlap? quide's trainer in several processes at once, with and
without NVIDIA's Multi-Process Service (MPS), against each alone (issue 17: the one-GPU reproduction).

Why: the one-H200 whole reproduction (runs d and e) kept the GPU busy (nvidia-smi utilization) for
640-690 s with two runs on it, so no schedule of whole runs reaches 10 minutes. Busy means "a kernel
was running", not "the SMs were full": ResNet-18's step at batch 128 uses a fraction of an H200
(batch 512 steps 1.42x faster per image, resnet18_step_options_h200.txt). Without MPS the kernels of
two processes take turns on the GPU (time slices); under MPS they can run side by side. If they do,
the trainings of several runs overlap and the weights stay what they are: each process runs the same
kernels on the same inputs, only their neighbours change.

Each job is ``quide.measure.train.train`` on random images of CIFAR shape (45,000 train / 5,000 validation;
kernel times do not depend on pixel values) for the epochs ``EPOCHS`` gives its model (the recipe
otherwise as trained: batch 128, bf16, captured step). Every process builds its data and model, says it is
ready, and waits; all start together, and the probe prints each job's trainer seconds per epoch and
the group's wall from the start to the last end. ``x serial`` is the sum of the jobs' alone-seconds
over the group's wall: above 1, running them together beats running them one after another.
MPS is not started here: the caller starts ``nvidia-cuda-mps-control -d`` between two calls of this
probe (the header says whether its daemon was running) and quits it afterwards::

    python benchmarks/probes/mps_probe.py > /tmp/off.txt
    nvidia-cuda-mps-control -d && python benchmarks/probes/mps_probe.py > /tmp/on.txt; echo quit | nvidia-cuda-mps-control

Measured on one fresh H200 (commit b8abb78, one run of each group): three ResNet-18 trainings
together ran 1.16x faster than one after another without MPS and 1.55x faster with it
(benchmarks/results/mps_probe_{off,on}_h200.txt).
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from quide.mps import daemon_running as mps_daemon_running

GROUPS = {   # name: the jobs started together (model names of quide.measure.models)
    "resnet18 alone": ["resnet18_cifar"],
    "simplecnn alone": ["simplecnn"],
    "resnet18 x2": ["resnet18_cifar"] * 2,
    "resnet18 x3": ["resnet18_cifar"] * 3,
    "resnet18 + simplecnn x2": ["resnet18_cifar", "simplecnn", "simplecnn"],
    "resnet18 x2 + simplecnn x2": ["resnet18_cifar"] * 2 + ["simplecnn"] * 2,
}
EPOCHS = {"resnet18_cifar": 4, "simplecnn": 12}   # per job: a few seconds alone on an H200


def worker(model_name: str, epochs: int) -> None:
    """One job: build, report ready, wait for a line on stdin, train, report seconds as JSON."""
    import torch

    from quide.measure import models
    from quide.measure import train as qt
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from trainer_breakdown import SHAPE, random_splits

    recipe = (qt.RESNET18_CIFAR if model_name == "resnet18_cifar" else qt.SIMPLECNN).replace(epochs=epochs)
    splits = random_splits(torch.device("cuda"))
    model = models.build_model(model_name, 10, SHAPE)
    torch.cuda.synchronize()
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.perf_counter()
    res = qt.train(model, splits, recipe, seed=0)
    end = time.perf_counter()
    print(json.dumps({"model": model_name, "epochs": epochs, "s_per_epoch": res.wall_s / epochs,
                      "start": start, "end": end}), flush=True)


def run_group(models: list[str], epochs: dict) -> dict:
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", m, str(epochs[m])], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for m in models]
    try:
        for p in procs:
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a worker did not start: exit code {p.wait()}")
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        jobs = []
        for p in procs:
            out, _ = p.communicate()
            if p.returncode != 0:
                raise RuntimeError(f"a worker failed: exit code {p.returncode}")
            jobs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:   # none left behind on the card when one fails
            if p.poll() is None:
                p.kill()
    wall = max(j["end"] for j in jobs) - min(j["start"] for j in jobs)   # one host, one monotonic clock
    return {"jobs": jobs, "wall_s": wall}


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", nargs="*", default=list(GROUPS), choices=list(GROUPS), help="groups to run")
    ap.add_argument("--json", type=Path, help="also write every job's figures here")
    args = ap.parse_args()
    import torch

    from quide.measure.latency import describe_device
    if not torch.cuda.is_available():
        ap.error("this probe trains on a GPU; no CUDA device here")
    mps = mps_daemon_running()
    print(f"device: {describe_device('cuda')[0]}; MPS control daemon running: {'yes' if mps else 'no'}; "
          f"epochs per job {EPOCHS}; random images of CIFAR shape", flush=True)
    print(f"{'group':28} {'wall s':>7} {'x serial':>8}  s/epoch per job (alone)")
    alone, results = {}, {}
    for name in args.groups:
        res = run_group(GROUPS[name], EPOCHS)
        results[name] = res
        if len(res["jobs"]) == 1:
            alone[res["jobs"][0]["model"]] = res["jobs"][0]["s_per_epoch"]
        serial = sum(alone.get(j["model"], float("nan")) * j["epochs"] for j in res["jobs"])
        per_job = ", ".join(f"{j['model']} {j['s_per_epoch']:.3f} ({alone.get(j['model'], float('nan')):.3f})"
                            for j in res["jobs"])
        print(f"{name:28} {res['wall_s']:7.2f} {serial / res['wall_s']:8.2f}  {per_job}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"device": describe_device("cuda")[0], "mps": mps, "epochs": EPOCHS,
                                         "groups": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
