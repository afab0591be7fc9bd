"""What a GGUF model file stores, by format and role, as a CSV beside the LLM records: the source
of "C relative to the model as loaded" on the LLM page (``quide.analysis.mmlu_stats``).

    python tools/gguf_formats.py PATH/TO/MODEL.gguf data/results/llm_case_study/

writes ``gguf_formats_<file name>.csv`` there: one row per (GGML format, role) with tensors,
weights, the format's block (weights, bytes) and bits per weight from the gguf package
(``quide.measure.llm.gguf_weight_formats``), and the file's name and sha256.
"""
import argparse
from pathlib import Path

from quide.analysis.mmlu_stats import file_sha256
from quide.measure.llm import gguf_weight_formats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gguf", type=Path)
    ap.add_argument("folder", type=Path)
    args = ap.parse_args()
    table = gguf_weight_formats(args.gguf)
    table.insert(0, "file_sha256", file_sha256(args.gguf))
    table.insert(0, "file", args.gguf.name)
    out = args.folder / f"gguf_formats_{args.gguf.name}.csv"
    table.to_csv(out, index=False, lineterminator="\n")
    print(out)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
