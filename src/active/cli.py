"""The ``active`` command line: the top-level parser and the error handling. The subcommands live
in :mod:`active.commands`, one module per area; each parses its arguments and calls one library
function (what the tests call)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from active import __version__
from active.errors import ActiveError
from active.utils.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    from active.commands import analyze, calibrate, data, experiments, model, predict

    parser = argparse.ArgumentParser(
        prog="active",
        description="ACTIVE: detect sperm and impurities in microscopic semen videos.",
    )
    parser.add_argument("--version", action="version", version=f"active {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for area in (data, model, experiments, predict, analyze, calibrate):
        area.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ActiveError, ConfigError) as exc:
        print(f"active: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("torch", "torchvision", "onnxscript"):
            raise
        print(f"active: error: '{args.command}' here needs PyTorch, which the base install leaves "
              "out (detect, analyze, demo and calibrate with ONNX models do not): "
              "pip install 'active-casa[train]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("active: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
