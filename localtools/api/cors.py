"""CORS for browser pages on other origins (a local web UI calling the API).

Off unless origins are given (`serve --cors-origin ORIGIN`, repeatable, `*` for any).
Starlette's CORSMiddleware answers preflights (OPTIONS with Origin and
Access-Control-Request-Method) itself and adds the allow-origin header to every
response, errors included, so a page can read a 401 or 429 body too. It must wrap
the API-key check: a browser sends a preflight without the Authorization header.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

# scheme://host[:port], no path: what a browser sends in the Origin header
_ORIGIN = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s?#]+$")
ALLOWED_METHODS = ["GET", "POST", "OPTIONS"]
EXPOSED_HEADERS = ["Retry-After"]
PREFLIGHT_MAX_AGE_S = 600


def check_origins(origins: Iterable[str]) -> list[str]:
    """The origins as given, trailing slashes dropped; ValueError for one that is not
    `*` or scheme://host[:port] (a browser's Origin never has a path, so it would never match)."""
    out: list[str] = []
    for origin in origins:
        value = origin.strip().rstrip("/") if origin.strip() != "*" else "*"
        if value != "*" and not _ORIGIN.match(value):
            raise ValueError(
                f"--cors-origin {origin!r} is not an origin: write scheme://host[:port] "
                "(e.g. http://localhost:5173) or * for any origin"
            )
        if value not in out:
            out.append(value)
    return out


def cors_middleware(origins: list[str]) -> Middleware | None:
    """The CORS layer for these origins (None: CORS off, no header is ever sent)."""
    if not origins:
        return None
    return Middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=ALLOWED_METHODS,
        allow_headers=["*"],  # mirrors Access-Control-Request-Headers (Authorization, Content-Type, ...)
        allow_credentials=False,  # the API key travels in a header, never in cookies
        expose_headers=EXPOSED_HEADERS,
        max_age=PREFLIGHT_MAX_AGE_S,
    )
