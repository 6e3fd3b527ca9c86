"""What every BrightRun process does first (each service's ``run_main``, the
gateway's and the trainer agent's ``__main__``): set up logging and tracing,
read its settings, wait for the endpoints it needs, serve its metrics; and how
a start-up problem the operator can fix ends it: one line ``brightrun: cannot
start: ...`` on stderr and ``startup.EXIT_STATUS``.

Kept apart from ``runtime`` (the services' wiring) so that the trainer agent,
which serves no gRPC, does not load gRPC to start.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Callable, Iterable, Iterator

from services.common import logs, metrics, tracing
from services.common.config import ConfigError, Settings, read_settings
from services.common.startup import StartupError, exit_with, require_reachable

log = logging.getLogger(__name__)


@contextlib.contextmanager
def startup_errors() -> Iterator[None]:
    """Within the block, a problem the operator can fix ends the process with one line on stderr and
    ``startup.EXIT_STATUS``: a StartupError, a ConfigError from the settings, or the SystemExit with a
    message that a process's own setting check raises (``logs.configure``, the agent's variables)."""
    try:
        yield
    except ConfigError as error:
        exit_with(StartupError(f"invalid settings: {error}"))
    except StartupError as error:
        exit_with(error)
    except SystemExit as error:
        if not isinstance(error.code, str):
            raise
        exit_with(StartupError(error.code))


def start_process(service: str, endpoints: Callable[[Settings], Iterable[tuple[str, str]]], *,
                  agent: bool = False) -> Settings:
    """What every BrightRun process does first, under :func:`startup_errors`: set up logging and
    tracing, read settings (a trainer agent's with ``agent``: see ``config.read_settings``), wait
    (``startup.REACH_SECONDS`` at most) for each (setting, url) of ``endpoints(settings)`` to accept a
    connection, serve metrics when ``BRIGHTRUN_METRICS_PORT`` is set. Returns the settings."""
    with startup_errors():
        logs.configure(service)
        tracing.configure(service)
        settings = read_settings(agent=agent)
        require_reachable(endpoints(settings))
        if settings.metrics_port:
            _serve_metrics(settings)
    return settings


def _serve_metrics(settings: Settings) -> None:
    try:
        metrics.serve(settings.metrics_port, settings.metrics_host)
    except OSError as error:
        raise StartupError(
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} (BRIGHTRUN_METRICS_PORT): "
            f"{error.strerror}; free that port or set BRIGHTRUN_METRICS_PORT to another"
        ) from None


def settled(service: str) -> None:
    """Start-up is over: what it built (modules, protobuf descriptors, the app) lives as long as the process,
    so it is moved out of the collector's reach. A full collection otherwise walks those ~100,000 objects,
    20-30 ms in which no request is answered: the tail of a busy service's latency."""
    gc.collect()
    gc.freeze()
    log.info("%s: %d start-up objects frozen, out of the garbage collector's walks", service, gc.get_freeze_count())
