"""Bearer tokens: HS256 with a shared secret (Supabase-shaped), RS256/ES256 from a JWKS."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway_kit import gateway_settings
from gateway.app import create_app
from gateway.auth import TokenVerifier, mint_token
from gateway.errors import HttpError
from gateway.jwks import JwksKeys
from services.common.config import ConfigError

SECRET = "test-secret-that-is-long-enough-for-hs256"
ISSUER = "https://abcdefghijklmnop.supabase.co/auth/v1"


def _verifier(**kwargs) -> TokenVerifier:
    return TokenVerifier(**{"secret": SECRET, "audience": "authenticated", **kwargs})


def _claims(**extra) -> dict:
    return {"sub": str(uuid.uuid4()), "aud": "authenticated", "exp": int(time.time()) + 60, **extra}


def _rejection(header: str | None, verifier: TokenVerifier | None = None) -> str:
    with pytest.raises(HttpError) as caught:
        asyncio.run((verifier or _verifier()).user_id(header))
    assert caught.value.status == 401
    assert caught.value.error == "Unauthorized"
    return caught.value.details


def _accepts(token: str, verifier: TokenVerifier | None = None) -> str:
    return asyncio.run((verifier or _verifier()).user_id(f"Bearer {token}"))


def test_a_minted_token_authenticates_its_user():
    user = str(uuid.uuid4())
    assert _accepts(mint_token(user, SECRET)) == user


def test_a_token_shaped_as_supabase_issues_it_is_accepted():
    # What Supabase Auth signs with a project's JWT secret for a signed-in user.
    claims = _claims(iss=ISSUER, role="authenticated", email="a@example.com", aal="aal1", session_id=str(uuid.uuid4()))
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    assert _accepts(token, _verifier(issuer=ISSUER)) == claims["sub"]


def test_a_token_for_another_audience_or_issuer_or_none_is_401():
    assert "audience" in _rejection(f"Bearer {jwt.encode(_claims(aud='anon'), SECRET, algorithm='HS256')}")
    no_aud = {key: value for key, value in _claims().items() if key != "aud"}
    assert "'aud'" in _rejection(f"Bearer {jwt.encode(no_aud, SECRET, algorithm='HS256')}")
    other_issuer = jwt.encode(_claims(iss="https://evil.example/auth/v1"), SECRET, algorithm="HS256")
    assert "issuer" in _rejection(f"Bearer {other_issuer}", _verifier(issuer=ISSUER))


def test_a_missing_header_is_401_saying_so():
    assert "Missing Authorization header" in _rejection(None)


def test_a_non_bearer_scheme_is_401():
    assert "Bearer" in _rejection(f"Basic {mint_token(str(uuid.uuid4()), SECRET)}")


def test_a_forged_signature_is_401():
    forged = mint_token(str(uuid.uuid4()), "another-secret-that-is-long-enough-for-hs256")
    assert "signature" in _rejection(f"Bearer {forged}")


def test_an_expired_token_is_401():
    expired = jwt.encode(_claims(exp=int(time.time()) - 5), SECRET, algorithm="HS256")
    assert "expired" in _rejection(f"Bearer {expired}")


def test_a_token_without_exp_is_401():
    forever = jwt.encode({key: value for key, value in _claims().items() if key != "exp"}, SECRET, algorithm="HS256")
    assert "'exp'" in _rejection(f"Bearer {forever}")


def test_a_subject_that_is_not_a_uuid_is_401():
    assert "UUID" in _rejection(f"Bearer {jwt.encode(_claims(sub='alice'), SECRET, algorithm='HS256')}")


def test_a_verified_token_is_trusted_again_until_its_exp_only(monkeypatch):
    verifier = _verifier()
    claims = _claims(exp=int(time.time()) + 5)
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    decode, verified = jwt.decode, []
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: verified.append(1) or decode(*a, **k))
    assert _accepts(token, verifier) == claims["sub"] and _accepts(token, verifier) == claims["sub"]
    assert len(verified) == 1  # the second call from the cache
    later = time.time() + 6
    monkeypatch.setattr(time, "time", lambda: later)
    assert _accepts(token, verifier) == claims["sub"] and len(verified) == 2  # past its exp: verified again
    # A forged token is verified (and refused) even beside a trusted one of the same user.
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert "signature" in _rejection(f"Bearer {forged}", verifier)


def test_garbage_and_unsigned_tokens_are_401():
    assert "invalid" in _rejection("Bearer not.a.jwt")
    unsigned = jwt.encode(_claims(), None, algorithm="none")
    assert "not accepted" in _rejection(f"Bearer {unsigned}")


def test_a_gateway_with_no_secret_and_no_key_set_refuses_to_start():
    with pytest.raises(ConfigError, match="BRIGHTRUN_JWT_SECRET.*BRIGHTRUN_JWT_JWKS"):
        TokenVerifier(audience="authenticated")
    with pytest.raises(ConfigError, match="BRIGHTRUN_JWT_SECRET"):
        create_app(gateway_settings())


class _KeyPair:
    """A signing key made in the test, with its public JWK."""

    def __init__(self, kid: str, algorithm: str):
        self.kid = kid
        self.algorithm = algorithm
        if algorithm == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk = {**jwk, "kid": kid, "alg": algorithm, "use": "sig"}

    def sign(self, claims: dict) -> str:
        return jwt.encode(claims, self.private, algorithm=self.algorithm, headers={"kid": self.kid})


def _jwks_file(tmp_path: Path, *pairs: _KeyPair) -> str:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [pair.jwk for pair in pairs]}))
    return str(path)


def test_es256_and_rs256_tokens_verify_against_a_jwks_file_by_kid(tmp_path):
    es, rs = _KeyPair("es-1", "ES256"), _KeyPair("rs-1", "RS256")
    verifier = _verifier(secret="", jwks=JwksKeys(_jwks_file(tmp_path, es, rs)))
    claims = _claims()
    assert _accepts(es.sign(claims), verifier) == claims["sub"]
    assert _accepts(rs.sign(claims), verifier) == claims["sub"]
    # A key outside the set, under a kid the set holds, does not verify.
    impostor = _KeyPair("es-1", "ES256")
    assert "signature" in _rejection(f"Bearer {impostor.sign(claims)}", verifier)
    # Without a secret configured, HS256 tokens are refused, whatever they are signed with.
    assert "not accepted" in _rejection(f"Bearer {mint_token(claims['sub'], SECRET)}", verifier)


def test_an_hs256_token_signed_with_the_public_key_is_refused(tmp_path):
    # The classic algorithm confusion: the public key used as an HMAC secret.
    rs = _KeyPair("rs-1", "RS256")
    verifier = _verifier(jwks=JwksKeys(_jwks_file(tmp_path, rs)))
    public_pem = rs.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import hmac, hashlib, base64  # noqa: E401 - the forgery is built by hand: PyJWT refuses to.

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = b64(json.dumps({"alg": "HS256", "kid": "rs-1"}).encode()) + b"." + b64(json.dumps(_claims()).encode())
    forged = signing_input + b"." + b64(hmac.new(public_pem, signing_input, hashlib.sha256).digest())
    assert "signature" in _rejection(f"Bearer {forged.decode()}", verifier)


class _JwksServer:
    """A real HTTP server publishing a key set that the test can rotate; counts fetches."""

    def __init__(self, *pairs: _KeyPair):
        self.keys = [pair.jwk for pair in pairs]
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                owner.fetches += 1
                body = json.dumps({"keys": owner.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/auth/v1/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_rotated_key_is_fetched_once_and_unknown_kids_do_not_hammer_the_provider():
    old, new = _KeyPair("2026-11", "ES256"), _KeyPair("2026-12", "ES256")
    server = _JwksServer(old)
    try:
        keys = JwksKeys(server.url, min_refresh_s=0.5)
        verifier = _verifier(secret="", jwks=keys)

        async def journey():
            claims = _claims()
            assert await verifier.user_id(f"Bearer {old.sign(claims)}") == claims["sub"]
            assert await verifier.user_id(f"Bearer {old.sign(claims)}") == claims["sub"]
            assert server.fetches == 1  # cached
            server.keys = [old.jwk, new.jwk]  # the provider rotates
            await asyncio.sleep(0.6)
            assert await verifier.user_id(f"Bearer {new.sign(claims)}") == claims["sub"]
            assert server.fetches == 2
            # Tokens naming keys nobody published: at most one fetch per min_refresh_s.
            stranger = _KeyPair("made-up", "ES256")

            async def refused_twenty_times():
                for _ in range(20):
                    with pytest.raises(HttpError) as caught:
                        await verifier.user_id(f"Bearer {stranger.sign(claims)}")
                    assert caught.value.status == 401 and "made-up" in caught.value.details

            await refused_twenty_times()
            assert server.fetches == 2
            await asyncio.sleep(0.6)
            await refused_twenty_times()
            assert server.fetches == 3

        asyncio.run(journey())
    finally:
        server.close()


def test_an_unreachable_key_set_is_a_503_to_retry_not_a_401():
    verifier = _verifier(secret="", jwks=JwksKeys("http://127.0.0.1:1/jwks.json", timeout_s=1))
    with pytest.raises(HttpError) as caught:
        asyncio.run(verifier.user_id(f"Bearer {_KeyPair('k', 'ES256').sign(_claims())}"))
    assert caught.value.status == 503
    assert "Retry-After" in caught.value.headers


def test_the_gateway_accepts_a_jwks_token_and_answers_cors_preflight_for_allowed_origins(tmp_path):
    es = _KeyPair("es-1", "ES256")
    app = create_app(gateway_settings(BRIGHTRUN_JWT_JWKS=_jwks_file(tmp_path, es),
                                      BRIGHTRUN_CORS_ORIGINS="https://app.example.com"))

    async def calls():
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
                preflight = {"Access-Control-Request-Method": "POST",
                             "Access-Control-Request-Headers": "authorization,content-type,idempotency-key"}
                allowed = await http.options("/api/jobs", headers={"Origin": "https://app.example.com", **preflight})
                refused = await http.options("/api/jobs", headers={"Origin": "https://evil.example", **preflight})
                # Authenticated, then the job service (not running here) is unreachable: 503, not 401.
                signed = await http.get("/api/jobs", headers={"Authorization": f"Bearer {es.sign(_claims())}"})
                unsigned = await http.get("/api/jobs")
                return allowed, refused, signed, unsigned

    allowed, refused, signed, unsigned = asyncio.run(calls())
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "idempotency-key" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in refused.headers
    assert signed.status_code == 503
    assert unsigned.status_code == 401


def test_the_token_cli_signs_with_the_configured_secret_and_audience():
    user = str(uuid.uuid4())
    env = {"BRIGHTRUN_JWT_SECRET": SECRET, "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-m", "gateway.token", "--user", user, "--ttl", "60"],
        env=env, capture_output=True, text=True, check=True,
    )
    claims = jwt.decode(out.stdout.strip(), SECRET, algorithms=["HS256"], audience="authenticated")
    assert claims["sub"] == user
    assert 0 < claims["exp"] - time.time() <= 60
