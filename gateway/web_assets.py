"""The web dashboard's built files (``gateway/web/dist``) served at ``/``.

Hashed files under ``/assets/`` are cached for a year (their names change with
their content); ``index.html`` is revalidated on every load. Any other GET that
is not an API path gets ``index.html`` so that the single-page app's own routes
(``/datasets/…``, ``/training/…``) survive a reload. API paths
(``/api/…``, ``/healthz``, ``/openapi.json``, ``/docs``) are never answered with
the app: an unknown one stays a JSON 404. Without a build, ``/`` says how to
make one.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Match, Route

from gateway.errors import HttpError

# BRIGHTRUN_WEB_DIST points the gateway at another build (a container's copy).
DEFAULT_DIST = Path(__file__).resolve().parent / "web" / "dist"
RESERVED_PREFIXES = ("/api/", "/healthz", "/openapi.json", "/docs")
IMMUTABLE = "public, max-age=31536000, immutable"

_NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>BrightRun</title></head>
<body style="font-family:sans-serif;max-width:40rem;margin:3rem auto">
<h1>BrightRun: the web dashboard is not built</h1>
<p>The HTTP API runs at <code>/api/</code>. To build the dashboard, run <code>make web</code>
(or <code>cd gateway/web &amp;&amp; npm ci &amp;&amp; npm run build</code>; Node 20) and reload this page.</p>
</body></html>"""


def dist_dir() -> Path:
    return Path(os.environ.get("BRIGHTRUN_WEB_DIST") or DEFAULT_DIST)


def _is_reserved(path: str) -> bool:
    return path == "/api" or any(path == p.rstrip("/") or path.startswith(p) for p in RESERVED_PREFIXES)


def _file_under(root: Path, relative: str) -> Path | None:
    """The file ``relative`` names inside ``root``, or None (missing, a folder, or outside ``root``)."""
    try:
        candidate = (root / relative).resolve()
        candidate.relative_to(root.resolve())
    except (ValueError, OSError):
        return None
    return candidate if candidate.is_file() else None


async def serve_web(request: Request) -> Response:
    path = request.url.path
    if _is_reserved(path) or request.method not in ("GET", "HEAD"):
        _raise_as_router_would(request)
    root = dist_dir()
    index = root / "index.html"
    if not index.is_file():
        return HTMLResponse(_NOT_BUILT, status_code=503, headers={"Cache-Control": "no-store"})
    relative = path.lstrip("/")
    if relative:
        found = _file_under(root, relative)
        if found is not None and found.name != "index.html":
            cache = IMMUTABLE if relative.startswith("assets/") else "public, max-age=3600"
            return FileResponse(found, headers={"Cache-Control": cache})
        if relative.startswith("assets/"):
            # A missing hashed asset is a real 404, not the app (a stale index would loop).
            return Response("Not found", status_code=404, media_type="text/plain")
    return FileResponse(index, media_type="text/html", headers={"Cache-Control": "no-cache"})


def _raise_as_router_would(request: Request) -> None:
    """405 when an API route has this path under another method, else the JSON 404."""
    for route in request.app.router.routes:
        if getattr(route, "endpoint", None) is serve_web:
            continue
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            raise HttpError(405, "Method Not Allowed", f"{request.method} is not allowed on {request.url.path}")
    raise HttpError(404, "Not found", f"No route {request.method} {request.url.path}")


# Every method: the app's own 404/405 for API paths are answered here, as the router would.
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
ROUTES = (Route("/{path:path}", serve_web, methods=_METHODS),)
