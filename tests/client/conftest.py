from __future__ import annotations

import pytest

from scripted import ScriptedServer


@pytest.fixture
def server():
    """A real HTTP server on a free local port; set ``server.respond`` to script it."""
    scripted = ScriptedServer()
    yield scripted
    scripted.close()
