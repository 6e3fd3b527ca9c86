"""The gateway serves the dashboard's build at / without shadowing any API path."""

import uuid

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.auth import mint_token
from gateway_kit import gateway_settings


SECRET = "unused-but-required-by-the-gateway"


@pytest.fixture
def client(tmp_path, monkeypatch):
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><div id=root>app</div>")
    (dist / "assets" / "index-abc123.js").write_text("console.log(1)")
    (dist / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside")
    monkeypatch.setenv("BRIGHTRUN_WEB_DIST", str(dist))
    app = create_app(gateway_settings(BRIGHTRUN_JWT_SECRET=SECRET), dataset_addr="127.0.0.1:1",
                     job_addr="127.0.0.1:1", artifact_addr="127.0.0.1:1", billing_addr="127.0.0.1:1")
    with TestClient(app) as c:
        yield c, dist


def test_index_and_spa_routes_get_the_app_revalidated(client):
    c, _ = client
    for path in ("/", "/datasets", "/training/jobs/0b7c8d4e-0000-4000-8000-000000000000", "/models?sort=quality"):
        reply = c.get(path)
        assert reply.status_code == 200, path
        assert "id=root" in reply.text
        assert reply.headers["cache-control"] == "no-cache"
        assert reply.headers["content-type"].startswith("text/html")


def test_hashed_assets_are_cached_for_a_year_and_missing_ones_are_404(client):
    c, _ = client
    reply = c.get("/assets/index-abc123.js")
    assert reply.status_code == 200 and reply.text == "console.log(1)"
    assert "immutable" in reply.headers["cache-control"] and "max-age=31536000" in reply.headers["cache-control"]
    assert c.get("/assets/index-gone.js").status_code == 404
    assert c.get("/favicon.svg").headers["cache-control"] == "public, max-age=3600"


def test_paths_outside_the_build_are_not_served(client):
    c, _ = client
    for path in ("/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt"):
        assert "outside" not in c.get(path).text


def test_api_paths_are_never_the_app(client):
    c, _ = client
    assert c.get("/healthz").json() == {"status": "ok"}
    assert c.get("/api/datasets").status_code == 401  # the real route, its auth
    # The API's own documents, not the app.
    assert c.get("/openapi.json").json()["openapi"] == "3.1.0"
    docs = c.get("/docs")
    assert docs.status_code == 200 and "id=root" not in docs.text and "/api/datasets" in docs.text
    for path in ("/api/nope", "/api", "/openapi.json/nope", "/docs/nope"):
        reply = c.get(path)
        assert reply.status_code == 404, path
        assert reply.json()["code"] == "not_found"  # the API's JSON error, not the app
    # A malformed id under a real route is the route's 400 saying what an id is (the app is never served).
    token = mint_token(str(uuid.uuid4()), SECRET)
    reply = c.get("/api/datasets/not-a-uuid", headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 400 and reply.json()["code"] == "validation_failed"
    assert "UUID" in reply.json()["details"]["id"][0]
    assert c.post("/api/nope").status_code == 404
    assert c.put("/api/datasets").status_code == 405
    assert c.post("/datasets").status_code == 404


def test_without_a_build_root_says_how_to_build(client):
    c, dist = client
    (dist / "index.html").unlink()
    reply = c.get("/")
    assert reply.status_code == 503
    assert "make web" in reply.text and "npm ci" in reply.text
    assert c.get("/healthz").status_code == 200
