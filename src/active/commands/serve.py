"""``active serve``: the lab's web page (docs/web.md)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from active.commands._args import float_range, int_at_least, positive_int

#: A shared server's token must not be guessable in a few tries.
MIN_TOKEN = 8


def _port(text: str) -> int:
    value = int_at_least(1, "a TCP port")(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port from 1 to 65535, got {value}")
    return value


def _host(text: str) -> str:
    value = str(text).strip()
    if not value or any(c.isspace() for c in value) or "/" in value:
        raise argparse.ArgumentTypeError(f"{text!r} is not a host name or address (e.g. "
                                         "127.0.0.1, or 0.0.0.0 for every network)")
    return value


def _token(text: str) -> str:
    value = str(text)
    if len(value) < MIN_TOKEN or value != value.strip() or not value.isprintable():
        raise argparse.ArgumentTypeError(f"must be at least {MIN_TOKEN} printable characters "
                                         "without leading or trailing spaces (e.g. from "
                                         "'python -c \"import secrets; print(secrets."
                                         "token_urlsafe())\"')")
    return value


def _data(text: str) -> Path:
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file; give a folder (created if "
                                         "missing)")
    return path


def cmd_serve(args: argparse.Namespace) -> int:
    from active.errors import UsageError
    from active.web.app import ServeOptions, serve

    token = args.token
    if token is None and os.environ.get("ACTIVE_TOKEN"):
        try:
            token = _token(os.environ["ACTIVE_TOKEN"])
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"ACTIVE_TOKEN (the environment's --token): {exc}") from None
    try:
        args.data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--data {args.data}: cannot create it ({exc.strerror})") from None
    if not os.access(args.data, os.W_OK):
        raise UsageError(f"--data {args.data}: this user cannot write there")
    serve(ServeOptions(data=args.data, host=args.host, port=args.port, token=token,
                       max_upload_mb=args.max_upload_mb, workers=args.workers,
                       threads=args.threads))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="the lab's web page: upload a sample's videos, follow the analysis, read "
        "and print the report, find past samples",
        description="Serve the lab's web page (docs/web.md): upload the videos of a sample with "
        "its calibration, follow the analysis live, read the report with the annotated video "
        "and download its tables, search and delete past samples. Everything is kept in --data "
        "(the catalogue, uploads, results); a restart loses nothing. Listens on 127.0.0.1 (this "
        "machine only) unless --host says otherwise; give a --token on a shared network.")
    p.add_argument("--host", type=_host, default="127.0.0.1", help="address to listen on "
                   "(default 127.0.0.1: this machine only; 0.0.0.0: every network)")
    p.add_argument("--port", type=_port, default=8000, help="TCP port (default 8000)")
    p.add_argument("--data", type=_data, default=Path("active-lab"), metavar="DIR",
                   help="folder of the catalogue, uploads and results (default ./active-lab; "
                   "created if missing); microscope profiles go in DIR/profiles/")
    p.add_argument("--token", type=_token, default=None, metavar="T",
                   help=f"access token the page asks for (at least {MIN_TOKEN} characters; "
                   "default: $ACTIVE_TOKEN, else none)")
    p.add_argument("--max-upload-mb", type=float_range(0.001, 1e6, what="must be a size in MB "
                   "from 0.001 to 1000000"), default=1000.0, metavar="N",
                   help="largest video accepted, in MB (default 1000)")
    p.add_argument("--workers", type=positive_int, default=1, metavar="N",
                   help="analyses run at the same time, each in its own process (default 1: "
                   "one analysis already uses every core)")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="ONNX Runtime threads per analysis (default: its own choice)")
    p.set_defaults(func=cmd_serve)
