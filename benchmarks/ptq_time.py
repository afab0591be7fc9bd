"""PTQ time per configuration, from committed records: each record's ``provenance.wall_s``.

For a sweep or EXP-3 record that is the time ``ConfigMeasurer.measure`` took for one configuration
on the record's device: quantize (calibration included), evaluate on the full test split and, where
the paper's host protocol times every configuration by itself, that timing. Graph timings are
shared and taken before, so they are not in it. Under ``quide reproduce`` it also holds the waits
for the host's timing lock (an evaluation waits while another GPU's run times, and a host timing
waits for the others' work), so the upper percentiles measure the host's traffic more than PTQ.
Nothing is run: the figures are those of the runs that made the records. From the repository root::

    python benchmarks/ptq_time.py                 # data/results
    python benchmarks/ptq_time.py --root data/reruns/run2
"""
from __future__ import annotations

import argparse

import numpy as np

from quide.analysis import results


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=None, help="results folder (default: $QUIDE_RESULTS or data/results)")
    args = ap.parse_args(argv)
    print(f"{'experiment':<16} {'model':<15} {'dataset':<14} {'host T':<14} {'n':>4} {'median s':>9} "
          f"{'p90 s':>7} {'sum s':>7}  device, commit")
    for experiment in ("ptq_sweep", "mixed_precision"):
        recs = results.load_records(args.root, experiment)
        if recs.empty:
            continue
        if "search" in recs:
            recs = recs[recs["search"] == "exhaustive"]   # one record per configuration, measured once
        for (model, dataset, scope), g in recs.groupby(["model", "dataset", "T_host_scope"]):
            wall = g["prov_wall_s"].to_numpy(float)
            where = ", ".join(sorted(set(g["prov_device"]))) + ", " + ", ".join(sorted({c[:7] for c in g["prov_git_commit"]}))
            print(f"{experiment:<16} {model:<15} {dataset:<14} {'per ' + scope:<14} {len(g):>4} {np.median(wall):9.3f} "
                  f"{np.percentile(wall, 90):7.3f} {wall.sum():7.1f}  {where}")


if __name__ == "__main__":
    main()
