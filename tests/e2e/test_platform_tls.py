"""The embedded platform with every gRPC call over mutual TLS: the launcher waits for each service the way
its clients call it (over TLS, presenting its certificate), and the gateway reaches the services."""

from __future__ import annotations

import os
import uuid

import httpx
from tls_kit import Authority

from services.platform.launcher import Platform


def test_the_platform_starts_and_answers_with_every_grpc_call_over_mutual_tls(tmp_path):
    (tmp_path / "pki").mkdir()
    ca = Authority(tmp_path / "pki", "brightrun-ca")
    # One certificate for every process: it serves (SANs localhost, 127.0.0.1) and calls the others.
    node = ca.issue("brightrun-node", server=True, client=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIGHTRUN_")}
    env.update({
        "BRIGHTRUN_GRPC_TLS_CA": str(ca.issued.cert),
        "BRIGHTRUN_GRPC_TLS_CERT": str(node.cert), "BRIGHTRUN_GRPC_TLS_KEY": str(node.key),
        "BRIGHTRUN_GRPC_TLS_CLIENT_CERT": str(node.cert), "BRIGHTRUN_GRPC_TLS_CLIENT_KEY": str(node.key),
        "BRIGHTRUN_GRPC_TLS_REQUIRE_CLIENT_CERT": "on",
    })
    with Platform(tmp_path / "home", env, http_port=0) as platform:
        token = platform.token(str(uuid.uuid4()))
        reply = httpx.get(platform.gateway_url + "/api/jobs", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert reply.status_code == 200, reply.text
        assert reply.json()["data"]["jobs"] == []
