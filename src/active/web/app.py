"""The web application: its settings, start-up and shut-down, the checks every request passes
(:mod:`active.web.auth`), security headers, and error pages that say what went wrong in a
sentence (a stack trace goes to the server's log, never to a page).

>>> app = create_app(ServeOptions(data=Path("active-lab")))   # doctest: +SKIP
>>> serve(ServeOptions(data=Path("active-lab"), port=8000))    # what `active serve` runs
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.exceptions import HTTPException

from active.web import auth
from active.web.runner import Runner, Target
from active.web.store import JobStore

log = logging.getLogger("active.web")

#: Pages load only this server's own files; a report (``report.html``, inline styles and
#: data: images) gets a stricter policy of its own where it is served.
CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self'; script-src 'self'; "
       "style-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'self'")


@dataclass(frozen=True)
class ServeOptions:
    """``active serve``'s settings (docs/web.md).

    Attributes:
        data: the folder of the catalogue, the uploads and every result (created if missing).
        host, port: where to listen; a loopback host keeps the page on this machine.
        token: the access token a shared server asks for (None: none).
        max_upload_mb: the largest video accepted, in megabytes (10^6 bytes).
        workers: analyses run at the same time, each in its own process.
        max_videos: the most videos (replicate fields) one sample may have.
        threads: ONNX Runtime threads per analysis (None: its default).
    """

    data: Path = Path("active-lab")
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_upload_mb: float = 1000.0
    workers: int = 1
    max_videos: int = 10
    threads: int | None = None

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)


#: How the pages name a job's status.
STATUS_WORDS = {"queued": "waiting", "running": "analysing", "done": "done",
                "failed": "failed"}


def _localtime(stamp: str | None) -> str:
    """A stored UTC timestamp in this server's local time, to the minute."""
    if not stamp:
        return "—"
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = max(0, round(float(seconds)))
    return f"{s} s" if s < 60 else f"{s // 60} min {s % 60:02d} s"


def templates() -> Jinja2Templates:
    from active import __version__
    from active.analysis.report import fmt_pct, fmt_sig

    env = Environment(loader=PackageLoader("active.web", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(localtime=_localtime, duration=_duration, sig=fmt_sig, pct=fmt_pct)
    env.globals.update(version=__version__, status_words=STATUS_WORDS)
    return Jinja2Templates(env=env)


def create_app(options: ServeOptions, target: Target | None = None) -> FastAPI:
    """The application (start it with uvicorn, or :func:`serve`). ``target`` replaces what a
    worker process runs for a job (tests); by default :func:`active.web.worker.run_job`."""
    from active.web import routes

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        data = options.data
        data.mkdir(parents=True, exist_ok=True)
        (data / "profiles").mkdir(exist_ok=True)
        store = JobStore(data)
        runner = Runner(store, data, options.workers, target)
        try:
            app.state.recovered = runner.recover()
            runner.start()
            app.state.store, app.state.runner = store, runner
            yield
        finally:
            runner.stop()
            store.close()

    app = FastAPI(title="ACTIVE", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.options = options
    app.state.templates = templates()
    loopback = auth.is_loopback(options.host)

    @app.middleware("http")
    async def guard(request: Request, call_next):  # noqa: ANN001, ANN202
        refused = auth.refusal(request, options.token, loopback)
        response = refused if refused is not None else await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on
        # this page's own form posts, and the cross-site check could not tell them apart
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        return response

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        where = ", ".join(str(e.get("loc", ["?"])[-1]) for e in exc.errors()) or "a field"
        return error_page(request, 400, f"The request has an unusable value ({where}).")

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_page(request, 500, f"The server failed on this request "
                          f"({type(exc).__name__}); the details are in the server's log.")

    app.include_router(auth.router)
    app.include_router(routes.router)
    app.mount("/static", StaticFiles(packages=[("active.web", "static")]), name="static")
    return app


def error_page(request: Request, status: int, message: str) -> Response:
    """An error as a page for a browser, as JSON for ``.json`` addresses and scripts."""
    if request.url.path.endswith(".json") or "text/html" not in request.headers.get(
            "accept", ""):
        return JSONResponse({"error": message, "status": status}, status_code=status)
    titles = {404: "Not found", 400: "Bad request", 401: "Log in", 403: "Refused",
              405: "Not allowed", 413: "Too large", 500: "Server error"}
    return request.app.state.templates.TemplateResponse(
        request, "error.html.j2", {"title": titles.get(status, "Error"), "message": message},
        status_code=status)


def check_address(host: str, port: int) -> None:
    """A :class:`UsageError` naming the flag when this machine cannot listen on ``host:port``
    (a port in use, an address that is not this machine's), before anything starts."""
    import errno
    import socket

    from active.errors import UsageError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            s.bind((host, port))
        except socket.gaierror:
            raise UsageError(f"--host {host}: not a name or address of this machine") from None
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(f"--port {port}: already in use on {host} (another server "
                                 "listens there); choose another --port") from None
            raise UsageError(f"--host {host} --port {port}: cannot listen there "
                             f"({exc.strerror})") from None


def serve(options: ServeOptions) -> None:
    """Run the page until interrupted (what ``active serve`` does). The address and the
    catalogue are checked first, so a port in use or a catalogue another process writes is a
    one-line error."""
    import uvicorn

    check_address(options.host, options.port)
    options.data.mkdir(parents=True, exist_ok=True)
    JobStore(options.data).close()  # locked by another process, too new, not a database
    if not auth.is_loopback(options.host) and options.token is None:
        print(f"active: warning: listening on {options.host} without --token: anyone who can "
              "reach this machine can see and delete samples; give a --token on a shared "
              "network (docs/web.md)", file=sys.stderr)
    shown = f"[{options.host}]" if ":" in options.host else options.host
    print(f"ACTIVE lab page: http://{shown}:{options.port}/  (data in {options.data}; "
          "Ctrl-C stops it)", file=sys.stderr)
    uvicorn.run(create_app(options), host=options.host, port=options.port, log_level="warning",
                server_header=False)


@contextlib.contextmanager
def running(options: ServeOptions, target: Target | None = None) -> Iterator[str]:
    """The page served by uvicorn in a thread of this process while the block runs (the
    browser tests, scripts/web_screenshots.py); yields its address. Port 0 picks a free one."""
    import threading
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(create_app(options, target), host=options.host,
                                           port=options.port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="active-serve", daemon=True)
    thread.start()
    end = time.monotonic() + 120
    while not server.started and thread.is_alive() and time.monotonic() < end:
        time.sleep(0.05)
    if not server.started:
        server.should_exit = True
        raise RuntimeError("the web server did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{options.host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
