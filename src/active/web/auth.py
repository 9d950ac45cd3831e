"""Who may use the page, and from where.

- **The access token** (``active serve --token``, for a shared lab server): every request but
  the login page and the static files must carry it, as ``Authorization: Bearer <token>``, an
  ``X-Active-Token`` header (scripts), or the cookie the login form sets (browsers). The cookie
  holds an HMAC of the token, not the token; every comparison is constant-time
  (:func:`hmac.compare_digest`).
- **Cross-site requests**: a form posted from another site (its ``Origin`` or
  ``Sec-Fetch-Site`` says so) is refused, so a web page elsewhere cannot delete or upload here
  through the technician's browser.
- **Without a token on a loopback address**, only requests addressed to a loopback name
  (``localhost``, ``127.0.0.1``, ``[::1]``) are answered: a web page elsewhere cannot reach
  this server by pointing its own domain name at 127.0.0.1 (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

COOKIE = "active_session"
#: Paths anyone may load (the login form and its stylesheet).
PUBLIC = ("/login", "/static/")

router = APIRouter()


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(request: Request) -> str:
    """The host the request was addressed to, without its port (``[::1]:8000`` -> ``::1``)."""
    host = request.headers.get("host", "")
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.split(":", 1)[0]


def session_value(token: str) -> str:
    """What the cookie holds: an HMAC of the token (the token itself never leaves a header)."""
    return hmac.new(token.encode(), b"active-web-session", hashlib.sha256).hexdigest()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


def has_token(request: Request, token: str) -> bool:
    """Whether ``request`` carries ``token`` (module docstring)."""
    auth = request.headers.get("authorization", "")
    bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    header = request.headers.get("x-active-token", "")
    cookie = request.cookies.get(COOKIE, "")
    # every check runs, so the time taken does not say which one matched
    ok = [_same(bearer, token) if bearer else False, _same(header, token) if header else False,
          _same(cookie, session_value(token)) if cookie else False]
    return any(ok)


def refusal(request: Request, token: str | None, bound_loopback: bool) -> Response | None:
    """The answer to a request that may not be served (None when it may)."""
    path = request.url.path
    if token is None and bound_loopback and not is_loopback(host_name(request)):
        return Response("This ACTIVE server answers only to localhost (start it with --token to "
                        "share it).", 421, media_type="text/plain; charset=utf-8")
    if request.method not in ("GET", "HEAD", "OPTIONS") and _cross_site(request):
        return Response("Refused: this form was sent from another site.", 403,
                        media_type="text/plain; charset=utf-8")
    if token is None or path.startswith(PUBLIC) or has_token(request, token):
        return None
    wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "")
    if wants_page:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    return Response("Access token required: log in on the page, or send 'Authorization: "
                    "Bearer <token>'.", 401, media_type="text/plain; charset=utf-8",
                    headers={"WWW-Authenticate": "Bearer"})


def _cross_site(request: Request) -> bool:
    """Whether a browser says this request comes from a page of another site (a request without
    either header is a script's, which the token, if any, covers)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return origin == "null" or urlsplit(origin).netloc != request.headers.get("host", "")


def safe_next(path: str) -> str:
    """A page of this server to go to after login (never another site)."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    return request.app.state.templates.TemplateResponse(
        request, "login.html.j2", {"next": safe_next(next), "error": ""})


@router.post("/login")
async def login(request: Request, token: str = Form(""), next: str = Form("/")) -> Response:
    expected: str | None = request.app.state.options.token
    if expected is None:
        return RedirectResponse(safe_next(next), status_code=303)
    if not token or not _same(token, expected):
        await asyncio.sleep(1.0)  # slows guessing down
        return request.app.state.templates.TemplateResponse(
            request, "login.html.j2", {"next": safe_next(next),
                                       "error": "Wrong access token: ask whoever runs this "
                                       "server for it."}, status_code=401)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(COOKIE, session_value(expected), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
