"""The OpenAPI 3.1 document of the routes' declarations (``gateway.declare``),
served at ``GET /openapi.json``, and the API reference page rendered from it at
``GET /docs``: one self-contained HTML page, no script, nothing fetched."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from gateway.declare import JSON, Endpoint
from gateway.errors import CODES
from gateway.schema import array, obj

ERROR = obj(
    success={"const": False},
    error={"type": "string", "description": "What went wrong, in a sentence"},
    details={"description": "Each bad field with its messages, or what to do about it"},
    code={"type": "string", "description": f"Stable machine-readable code, e.g. {', '.join(sorted(set(CODES.values())))}"},
)
_PATH_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def _answer(endpoint: Endpoint) -> dict:
    if endpoint.media_type != JSON:
        return {endpoint.media_type: {"schema": endpoint.data}}
    body = {"success": {"const": True}, "data": endpoint.data}
    if endpoint.warnings:
        body["warnings"] = array({"type": "string"})
    return {JSON: {"schema": obj(**body)}}


def _operation(endpoint: Endpoint) -> dict:
    path_names = _PATH_PARAM.findall(endpoint.path)
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
        for name in path_names
    ]
    parameters += [
        {"name": p.name, "in": p.where, "required": False, "schema": p.schema, "description": p.description}
        for p in endpoint.params
    ]
    words = re.sub(r"[^A-Za-z0-9]+", "_", _PATH_PARAM.sub(r"\1", endpoint.path))
    operation = {
        "operationId": endpoint.method.lower() + words,
        "summary": endpoint.summary,
        "parameters": parameters,
        "responses": {
            str(endpoint.status): {"description": "Success", "content": _answer(endpoint)},
            "default": {"description": "An error", "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}},
        },
    }
    if endpoint.description:
        operation["description"] = endpoint.description
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": not endpoint.body.optional,
            "content": {JSON: {"schema": endpoint.body.schema()}},
        }
    return operation


def document(endpoints: Iterable[Endpoint]) -> dict:
    paths: dict[str, dict] = {}
    for endpoint in endpoints:
        paths.setdefault(_PATH_PARAM.sub(r"{\1}", endpoint.path), {})[endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "BrightRun API",
            "version": "1",
            "description": "LoRA fine-tuning: datasets, jobs, models, costs. Every /api route needs "
            "'Authorization: Bearer <token>'. Errors are {success: false, error, details, code}.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"bearer": []}],
    }


def _schema_html(schema: dict) -> str:
    return f"<pre>{html.escape(json.dumps(schema, indent=2))}</pre>"


def reference_page(doc: dict) -> str:
    """The document as one HTML page: each operation with its parameters, body and answer."""
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>BrightRun API reference</title>",
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "h2{border-top:1px solid #ccc;padding-top:1rem}code.m{font-weight:bold;margin-right:.5rem}"
        "pre{background:#f6f6f6;padding:.5rem;overflow:auto;font-size:13px}td,th{padding:.2rem .6rem;"
        "text-align:left;vertical-align:top}details{margin:.3rem 0}</style></head><body>",
        f"<h1>{html.escape(doc['info']['title'])}</h1><p>{html.escape(doc['info']['description'])}</p>",
        "<p>Machine-readable: <a href=/openapi.json>/openapi.json</a> (OpenAPI 3.1).</p><ul>",
    ]
    operations = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]
    for path, method, op in operations:
        parts.append(f"<li><a href=#{op['operationId']}>{method.upper()} {html.escape(path)}</a>: "
                     f"{html.escape(op['summary'])}</li>")
    parts.append("</ul>")
    for path, method, op in operations:
        parts.append(f"<h2 id={op['operationId']}><code class=m>{method.upper()}</code><code>{html.escape(path)}</code>"
                     f"</h2><p>{html.escape(op['summary'])}</p>")
        if op.get("description"):
            parts.append(f"<p>{html.escape(op['description'])}</p>")
        if op["parameters"]:
            parts.append("<table><tr><th>parameter</th><th>in</th><th>schema</th><th></th></tr>")
            for p in op["parameters"]:
                parts.append(f"<tr><td><code>{html.escape(p['name'])}</code></td><td>{p['in']}</td>"
                             f"<td><code>{html.escape(json.dumps(p['schema']))}</code></td>"
                             f"<td>{html.escape(p.get('description', ''))}</td></tr>")
            parts.append("</table>")
        if "requestBody" in op:
            schema = op["requestBody"]["content"][JSON]["schema"]
            parts.append(f"<details open><summary>Request body (JSON)</summary>{_schema_html(schema)}</details>")
        for status, answer in op["responses"].items():
            if status != "default":
                schema = next(iter(answer["content"].values()))["schema"]
                parts.append(f"<details><summary>{status} answer</summary>{_schema_html(schema)}</details>")
    parts.append(f"<h2 id=errors>Errors</h2>{_schema_html(ERROR)}</body></html>")
    return "".join(parts)


def routes(endpoints: Iterable[Endpoint]) -> list[Route]:
    """``GET /openapi.json`` and ``GET /docs``, without authentication."""
    doc = document(endpoints)
    page = reference_page(doc)

    async def openapi_json(request: Request) -> JSONResponse:
        return JSONResponse(doc)

    async def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    return [Route("/openapi.json", openapi_json, methods=["GET"]), Route("/docs", docs, methods=["GET"])]
