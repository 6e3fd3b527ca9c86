"""SeaweedFS listener ports: none may be another listener's gRPC port (+10000)."""

from __future__ import annotations

import pytest

from services.common import components


def test_seaweed_ports_skip_every_port_that_is_another_listeners_grpc_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 40000 is the S3 port's gRPC port, 20000's gRPC port is the S3 port,
    # 41000 is 31000's gRPC port: weed mini refuses each of them at start.
    offered = iter([40000, 20000, 31000, 41000, 32000, 33000])
    monkeypatch.setattr(components, "free_port", lambda **_: next(offered))

    ports = components._seaweed_ports(taken=(30000,), count=3)

    assert ports == [31000, 32000, 33000]


def test_seaweed_ports_are_free_and_disjoint_from_each_others_grpc_ports() -> None:
    ports = [30000, *components._seaweed_ports(taken=(30000,), count=4)]
    listeners = set(ports)
    grpc = {port + 10000 for port in ports}
    assert len(listeners) == 5
    assert not listeners & grpc
