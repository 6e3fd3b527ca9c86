"""gRPC over TLS between the services (BRIGHTRUN_GRPC_TLS_*), with certificates made here: a real
server from ``create_server`` (health and reflection are its own services), a real channel from
``channel``; and each misconfiguration refused at start-up naming its variable."""

from __future__ import annotations

import dataclasses
import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from gateway_kit import gateway_settings
from tls_kit import Authority

from services.common.components import free_port
from services.common.config import ConfigError, GrpcTls
from services.common.grpc import channel, create_server

HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca, rogue = Authority(directory, "brightrun-ca"), Authority(directory, "rogue-ca")
    return {
        "ca": ca.issued.cert,
        "server": ca.issue("billing-svc", server=True),
        "client": ca.issue("gateway", client=True),
        "rogue_ca": rogue.issued.cert,
        "rogue_client": rogue.issue("intruder", client=True),
        "dir": directory,
    }


def _server_tls(pki, require_client_cert: bool) -> GrpcTls:
    return GrpcTls(ca=pki["ca"], cert=pki["server"].cert, key=pki["server"].key,
                   require_client_cert=require_client_cert)


@pytest_asyncio.fixture(loop_scope="session")
async def serve(pki):
    """Start a server with ``tls``; returns its address. Stopped after the test."""
    servers = []

    async def start(tls: GrpcTls | None) -> str:
        server, port, _ = create_server("127.0.0.1:0", [], [], tls)
        await server.start()
        servers.append(server)
        return f"localhost:{port}"

    yield start
    for server in servers:
        await server.stop(None)


async def _check(address: str, tls: GrpcTls | None) -> int:
    async with channel(address, tls) as ch:
        reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    return reply.status


async def _refused(address: str, tls: GrpcTls | None) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _check(address, tls)
    return info.value.code()


async def test_a_tls_server_answers_a_client_that_trusts_its_ca_health_and_reflection_included(pki, serve):
    address = await serve(_server_tls(pki, require_client_cert=False))
    client = GrpcTls(ca=pki["ca"])
    assert await _check(address, client) == health_pb2.HealthCheckResponse.SERVING
    async with channel(address, client) as ch:
        stream = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
        listed = [reply async for reply in stream][0].list_services_response.service
    assert HEALTH in {service.name for service in listed}


async def test_by_an_ip_address_the_certificates_ip_san_is_checked(pki, serve):
    address = (await serve(_server_tls(pki, require_client_cert=False))).replace("localhost", "127.0.0.1")
    assert await _check(address, GrpcTls(ca=pki["ca"])) == health_pb2.HealthCheckResponse.SERVING


async def test_a_name_the_certificate_does_not_carry_is_refused_unless_overridden(pki, serve):
    port = (await serve(_server_tls(pki, require_client_cert=False))).rpartition(":")[2]
    # The name checked is the override's, not the address's host: one the certificate lacks is refused.
    wrong = GrpcTls(ca=pki["ca"], server_name="billing-svc.brightrun.svc")
    assert await _refused(f"127.0.0.1:{port}", wrong) == grpc.StatusCode.UNAVAILABLE
    right = GrpcTls(ca=pki["ca"], server_name="localhost")
    assert await _check(f"127.0.0.1:{port}", right) == health_pb2.HealthCheckResponse.SERVING


async def test_a_plaintext_client_gets_nothing_from_a_tls_server(pki, serve):
    address = await serve(_server_tls(pki, require_client_cert=False))
    assert await _refused(address, None) == grpc.StatusCode.UNAVAILABLE


async def test_a_client_that_does_not_trust_the_servers_ca_refuses_it(pki, serve):
    address = await serve(_server_tls(pki, require_client_cert=False))
    assert await _refused(address, GrpcTls(ca=pki["rogue_ca"])) == grpc.StatusCode.UNAVAILABLE


async def test_a_tls_client_gets_nothing_from_a_plaintext_server(pki, serve):
    address = await serve(None)
    assert await _refused(address, GrpcTls(ca=pki["ca"])) == grpc.StatusCode.UNAVAILABLE


async def test_with_client_auth_required_only_a_certificate_the_ca_signed_is_served(pki, serve):
    address = await serve(_server_tls(pki, require_client_cert=True))
    without = GrpcTls(ca=pki["ca"])
    foreign = GrpcTls(ca=pki["ca"], client_cert=pki["rogue_client"].cert, client_key=pki["rogue_client"].key)
    signed = GrpcTls(ca=pki["ca"], client_cert=pki["client"].cert, client_key=pki["client"].key)
    assert await _refused(address, without) == grpc.StatusCode.UNAVAILABLE
    assert await _refused(address, foreign) == grpc.StatusCode.UNAVAILABLE
    assert await _check(address, signed) == health_pb2.HealthCheckResponse.SERVING


async def test_without_client_auth_required_a_client_without_a_certificate_is_served(pki, serve):
    address = await serve(_server_tls(pki, require_client_cert=False))
    assert await _check(address, GrpcTls(ca=pki["ca"])) == health_pb2.HealthCheckResponse.SERVING


async def test_a_certificate_renewed_on_disk_is_served_to_new_connections_without_a_restart(pki, serve, tmp_path):
    # The server's files, as cert-manager's Secret mounts them; the renewed certificate comes from another CA
    # so that which of the two a connection got shows in whom the client must trust.
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(pki["server"].cert.read_bytes())
    key.write_bytes(pki["server"].key.read_bytes())
    address = await serve(GrpcTls(ca=pki["ca"], cert=cert, key=key))
    first, renewed_ca = GrpcTls(ca=pki["ca"]), Authority(tmp_path, "renewing-ca")
    assert await _check(address, first) == health_pb2.HealthCheckResponse.SERVING

    renewed = renewed_ca.issue("billing-svc-renewed", server=True)
    for path, source in ((key, renewed.key), (cert, renewed.cert)):  # each file replaced whole, as a Secret update
        staged = path.with_suffix(".new")
        staged.write_bytes(source.read_bytes())
        staged.replace(path)
    assert await _check(address, GrpcTls(ca=renewed_ca.issued.cert)) == health_pb2.HealthCheckResponse.SERVING
    assert await _refused(address, first) == grpc.StatusCode.UNAVAILABLE


async def test_the_plaintext_health_port_answers_health_checks_and_nothing_else(pki, serve):
    health_port = free_port()
    tls = dataclasses.replace(_server_tls(pki, require_client_cert=True), health_port=health_port)
    address = await serve(tls)
    plain = f"127.0.0.1:{health_port}"
    assert await _check(plain, None) == health_pb2.HealthCheckResponse.SERVING
    async with channel(plain) as ch:  # reflection, and any service, stays behind TLS
        stream = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            [reply async for reply in stream]
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert await _refused(address, None) == grpc.StatusCode.UNAVAILABLE


# --- settings -------------------------------------------------------------------------------------


def _env(pki, **names: str) -> dict[str, str]:
    files = {"CA": pki["ca"], "CERT": pki["server"].cert, "KEY": pki["server"].key,
             "CLIENT_CERT": pki["client"].cert, "CLIENT_KEY": pki["client"].key}
    return {f"BRIGHTRUN_GRPC_TLS_{name}": str(files.get(value, value)) for name, value in names.items()}


def test_no_tls_variable_is_plaintext():
    assert gateway_settings().grpc_tls is None


def test_a_full_mutual_tls_configuration_is_read_into_settings(pki):
    env = _env(pki, CA="CA", CERT="CERT", KEY="KEY", CLIENT_CERT="CLIENT_CERT", CLIENT_KEY="CLIENT_KEY",
               REQUIRE_CLIENT_CERT="on", SERVER_NAME="billing-svc", HEALTH_PORT="50060")
    assert gateway_settings(**env).grpc_tls == GrpcTls(
        ca=pki["ca"], cert=pki["server"].cert, key=pki["server"].key, client_cert=pki["client"].cert,
        client_key=pki["client"].key, require_client_cert=True, server_name="billing-svc", health_port=50060)


def test_a_caller_only_needs_the_ca(pki):
    assert gateway_settings(**_env(pki, CA="CA")).grpc_tls == GrpcTls(ca=pki["ca"])


def _problem(**env: str) -> str:
    with pytest.raises(ConfigError) as info:
        gateway_settings(**env)
    return str(info.value)


def test_a_missing_file_names_its_variable(pki):
    message = _problem(**_env(pki, CA=str(pki["dir"] / "absent.crt")))
    assert "BRIGHTRUN_GRPC_TLS_CA=" in message and "cannot be read" in message and "PEM certificate" in message


def test_a_file_that_is_not_pem_names_its_variable(pki):
    garbage = pki["dir"] / "garbage.crt"
    garbage.write_text("not a certificate\n")
    message = _problem(**_env(pki, CA="CA", CERT=str(garbage), KEY="KEY"))
    assert "BRIGHTRUN_GRPC_TLS_CERT=" in message and "holds no PEM certificate" in message
    # A certificate where a key belongs is no key.
    message = _problem(**_env(pki, CA="CA", CERT="CERT", KEY="CERT"))
    assert "BRIGHTRUN_GRPC_TLS_KEY=" in message and "holds no PEM private key" in message


@pytest.mark.parametrize(("given", "missing"), [
    ("KEY", "CERT"), ("CERT", "KEY"), ("CLIENT_KEY", "CLIENT_CERT"), ("CLIENT_CERT", "CLIENT_KEY"),
])
def test_a_certificate_without_its_key_or_the_reverse_names_both(pki, given, missing):
    message = _problem(**_env(pki, CA="CA", **{given: given}))
    assert (f"BRIGHTRUN_GRPC_TLS_{given} is set without BRIGHTRUN_GRPC_TLS_{missing}: set both" in message)


def test_required_client_certificates_and_the_health_port_need_a_server_certificate(pki):
    message = _problem(**_env(pki, CERT="CERT", KEY="KEY", REQUIRE_CLIENT_CERT="on"))
    assert "BRIGHTRUN_GRPC_TLS_REQUIRE_CLIENT_CERT set without BRIGHTRUN_GRPC_TLS_CA" in message
    assert "servers verify client certificates with" in message
    message = _problem(**_env(pki, CA="CA", REQUIRE_CLIENT_CERT="on"))
    assert "BRIGHTRUN_GRPC_TLS_REQUIRE_CLIENT_CERT=on needs a server certificate" in message
    message = _problem(**_env(pki, CA="CA", HEALTH_PORT="50060"))
    assert "BRIGHTRUN_GRPC_TLS_HEALTH_PORT=50060 needs a server certificate" in message
    assert "BRIGHTRUN_GRPC_TLS_REQUIRE_CLIENT_CERT=" in _problem(**_env(pki, CA="CA", REQUIRE_CLIENT_CERT="yes"))


def test_any_tls_setting_without_the_ca_names_the_ca(pki):
    message = _problem(**_env(pki, CERT="CERT", KEY="KEY"))
    assert "BRIGHTRUN_GRPC_TLS_CERT, BRIGHTRUN_GRPC_TLS_KEY set without BRIGHTRUN_GRPC_TLS_CA" in message
    assert "without BRIGHTRUN_GRPC_TLS_CA" in _problem(**_env(pki, SERVER_NAME="billing-svc"))
    assert "BRIGHTRUN_GRPC_TLS_HEALTH_PORT set without BRIGHTRUN_GRPC_TLS_CA" in _problem(**_env(pki, HEALTH_PORT="50060"))
    assert "BRIGHTRUN_GRPC_TLS_HEALTH_PORT='health' is not a port" in _problem(**_env(pki, CA="CA", HEALTH_PORT="health"))


def test_every_tls_problem_is_reported_at_once(pki):
    message = _problem(**_env(pki, CA=str(pki["dir"] / "absent.crt"), KEY="KEY", CLIENT_CERT="CLIENT_CERT"))
    for part in ("BRIGHTRUN_GRPC_TLS_CA=", "BRIGHTRUN_GRPC_TLS_KEY is set without BRIGHTRUN_GRPC_TLS_CERT",
                 "BRIGHTRUN_GRPC_TLS_CLIENT_CERT is set without BRIGHTRUN_GRPC_TLS_CLIENT_KEY"):
        assert part in message
