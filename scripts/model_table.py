"""Write the model table (every variant x scale: params, GFLOPs, CPU latency) into docs/models.md.

Latency: batch 1, eval mode, unfused BatchNorm, contiguous (NCHW) tensors, median of ``--runs``
forward passes after ``--warmup``, ``--threads`` CPU threads; at 416x416 (the paper's input) and at
704x544 (SVIA's native 698x528 padded to multiples of 32). The table replaces the text between
the ``<!-- model-table:begin -->`` and ``<!-- model-table:end -->`` markers of ``--doc``.

    python scripts/model_table.py --runs 5 --doc docs/models.md
"""

from __future__ import annotations

import argparse
import platform
from collections.abc import Sequence
from pathlib import Path

import torch

from active.models.info import model_info
from active.models.variants import SCALES, VARIANTS
from active.utils.io import write_between

SIZES = ((416, 416), (544, 704))  # (H, W)


def table(scales: Sequence[str], runs: int, warmup: int) -> str:
    """Markdown of every variant x scale, plus the branch ablation of ACTIVE-I per scale."""
    head = (
        "| variant | scale | branches | params (M) | GFLOPs 416² | GFLOPs 704×544 "
        "| CPU ms 416² | CPU ms 704×544 |\n|---|---|---|---:|---:|---:|---:|---:|"
    )
    rows = [head]
    jobs = [(v, s, ("b1", "b2")) for s in scales for v in VARIANTS]
    jobs += [("active-i", s, b) for s in scales for b in (("b1",), ("b2",))]
    for variant, scale, branches in jobs:
        infos = [
            model_info(variant, scale, size, branches, runs=runs, warmup=warmup) for size in SIZES
        ]
        a, b = infos
        rows.append(
            f"| {variant} | {scale} | {'+'.join(branches)} | {a['params'] / 1e6:.2f} "
            f"| {a['gflops']:.2f} | {b['gflops']:.2f} "
            f"| {a['latency_ms']:.1f} | {b['latency_ms']:.1f} |"
        )
        print(rows[-1], flush=True)
    machine = f"{platform.machine()} {platform.processor() or ''}".strip()
    note = (
        f"\nMeasured with `python scripts/model_table.py --runs {runs}` on {machine}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}; latency = median of "
        f"{runs} runs after {warmup} warm-up, batch 1, NCHW, BatchNorm unfused."
    )
    return "\n".join(rows) + "\n" + note


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", nargs="+", default=list(SCALES), choices=list(SCALES))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--doc", type=Path, default=Path("docs/models.md"))
    parser.add_argument("--print-only", action="store_true", help="do not write --doc")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    text = table(args.scales, args.runs, args.warmup)
    if args.print_only:
        print(text)
    else:
        write_between(args.doc, "<!-- model-table:begin -->", "<!-- model-table:end -->", text)
        print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
