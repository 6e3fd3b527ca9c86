"""The embedded launcher as a supervisor: its children die with it, its stop is
bounded whatever signals arrive, and what dies under it without being stopped
is restarted while what was stopped on purpose stays down.

The first two tests run the real CLI (``python -m services.platform up``) in a
process of its own; the others use the suite's platform.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from faultkit import assert_job_accounted, platform_env, ready_dataset, start_job, wait_ended
from services.common.components import free_port
from services.common.startup import EXIT_STATUS, REACH_SECONDS
from services.platform.journey import wait_for
from services.platform.supervisor import Child, Supervisor

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
# The bound for a stop; the launcher's own is 10 s of grace + 3 x 5 s.
STOP_SECONDS = 30


def _up(home: Path, out: Path) -> subprocess.Popen:
    """``up`` on ``home``, once it says it is up; its output goes to ``out``."""
    # The tiny offline model, not the SmolLM2 that `up` fetches by default.
    env = platform_env(BRIGHTRUN_HOME=str(home), BRIGHTRUN_HTTP_PORT="0",
                       BRIGHTRUN_DEFAULT_BASE_MODEL=str(home.resolve() / "models" / "tiny-llama"))
    with open(out, "ab") as sink:
        launcher = subprocess.Popen([sys.executable, "-m", "services.platform", "up"], cwd=REPO, env=env,
                                    stdout=sink, stderr=subprocess.STDOUT)

    def said_up() -> bool:
        if launcher.poll() is not None:
            raise AssertionError(f"up exited with {launcher.returncode}:\n{out.read_text()[-3000:]}")
        return "BrightRun is up" in out.read_text()

    wait_for(said_up, bool, 180, "up")
    return launcher


def _processes() -> dict[int, tuple[int, str]]:
    """pid to (parent pid, start time) of every process now."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # not a process, or gone meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        found[int(entry.name)] = (int(fields[1]), fields[19])
    return found


def _family(launcher: int, home: Path) -> set[tuple[int, str]]:
    """(pid, start time) of every descendant of ``launcher`` and every process
    whose environment names ``home`` (one started later, or re-parented)."""
    processes = _processes()
    family = {launcher}
    while grown := {pid for pid, (parent, _) in processes.items() if parent in family} - family:
        family |= grown
    marker = f"BRIGHTRUN_HOME={home}".encode()
    for pid in processes:
        try:
            if marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                family.add(pid)
        except OSError:
            continue
    family.discard(launcher)
    return {(pid, processes[pid][1]) for pid in family if pid in processes}


def _alive(family: set[tuple[int, str]]) -> list[str]:
    """Command lines of the processes of ``family`` still running (zombies are gone: nobody may reap them)."""
    left = []
    for pid, started in family:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[19] == started and fields[0] != "Z":
            left.append(f"{pid}: {command[:120]}")
    return left


def _kill_left(family: set[tuple[int, str]]) -> None:
    """SIGKILL what a failed test left of its own processes, so the next test has the machine."""
    for line in _alive(family):
        try:
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
        except ProcessLookupError:
            pass


def _stop(launcher: subprocess.Popen) -> int:
    """SIGTERM ``up``, then keep signalling it (SIGINT and SIGTERM, a burst then
    one every 50 ms) until it exits; its exit status, within STOP_SECONDS."""
    launcher.send_signal(signal.SIGTERM)
    for sig in [signal.SIGINT, signal.SIGTERM] * 10:
        launcher.send_signal(sig)
    deadline = time.monotonic() + STOP_SECONDS
    while launcher.poll() is None:
        assert time.monotonic() < deadline, f"up did not exit within {STOP_SECONDS}s of SIGTERM"
        launcher.send_signal(signal.SIGINT if int(time.monotonic() * 20) % 2 else signal.SIGTERM)
        time.sleep(0.05)  # the pace of the signals, not a wait for a state
    return launcher.returncode


def test_every_child_dies_with_a_launcher_killed_outright_and_the_next_up_starts(tmp_path):
    home = tmp_path / "home"
    launcher = _up(home, tmp_path / "first.out")
    family = _family(launcher.pid, home)
    try:
        # PostgreSQL and its backends, NATS, SeaweedFS, 4 services, the agent, the gateway.
        assert len(family) >= 15, family
        launcher.kill()
        launcher.wait()
        wait_for(lambda: _alive(family), lambda left: not left, 10, "the end of the launcher's children")
    finally:
        _kill_left(family)
    # Nothing it left (a postmaster.pid, SeaweedFS's locks, ports) stops the next one.
    again = _up(home, tmp_path / "second.out")
    family = _family(again.pid, home)
    try:
        assert _stop(again) == 0
        assert _alive(family) == []
    finally:
        _kill_left(family)


def test_a_burst_of_signals_during_stop_neither_cuts_it_short_nor_hangs_it(tmp_path):
    home = tmp_path / "home"
    out = tmp_path / "up.out"
    launcher = _up(home, out)
    family = _family(launcher.pid, home)
    try:
        assert _stop(launcher) == 0, out.read_text()[-3000:]
        # Stopped, not killed: every child was still there to be asked.
        assert _alive(family) == []
        assert out.read_text().rstrip().endswith("stopped.")
    finally:
        _kill_left(family)


def _serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def test_a_killed_agent_and_service_are_restarted_and_the_next_job_completes(platform, api, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="services.platform.supervisor")
    agent, job_svc = platform.processes()["trainer_agent"], platform.processes()["job_svc"]
    os.kill(agent, signal.SIGKILL)
    os.kill(job_svc, signal.SIGKILL)
    for name, pid in (("trainer_agent", agent), ("job_svc", job_svc)):
        wait_for(lambda: caplog.text, lambda text, n=name: f"{n} restarted" in text, 60, f"{name}'s restart")
        assert f"{name} died (exit status -9); restarting it in 1s" in caplog.text
        assert platform.processes()[name] != pid
    wait_for(lambda: _serving(platform.env["BRIGHTRUN_JOB_ADDR"]), bool, 60, "job_svc serving again")
    done = wait_ended(api, start_job(api, ready_dataset(api, tmp_path)))
    assert done["status"] == "completed", done
    assert_job_accounted(platform, api, done)


@pytest.mark.parametrize("name", ["nats", "postgres", "objectstore"])
def test_a_killed_component_is_restarted(platform, name, caplog):
    caplog.set_level(logging.WARNING, logger="services.platform.supervisor")
    component = platform.component(name)
    old = component.pid
    os.kill(old, signal.SIGKILL)
    # revive() returns once the component is ready again, and only then is this logged.
    wait_for(lambda: caplog.text, lambda text: f"{component.name} restarted" in text, 90, f"{name}'s restart")
    assert f"{component.name} died (exit status -9); restarting it in" in caplog.text
    assert component.running and component.pid != old


def test_a_component_stopped_on_purpose_stays_down_until_started(platform, caplog):
    caplog.set_level(logging.WARNING, logger="services.platform.supervisor")
    nats = platform.component("nats")
    nats.stop()
    # Absence takes a window: three times the first restart's backoff (1 s).
    time.sleep(3)
    assert not nats.running
    assert "NATS" not in caplog.text
    nats.start()
    health = f"http://127.0.0.1:{nats.monitor_port}/healthz?js-enabled-only=true"
    with urllib.request.urlopen(health, timeout=5) as reply:
        assert reply.status == 200
    # Started again, it is supervised again.
    os.kill(nats.pid, signal.SIGKILL)
    wait_for(lambda: caplog.text, lambda text: "NATS restarted" in text, 60, "NATS's restart")


def test_a_child_that_keeps_failing_is_restarted_ever_later_and_a_clean_exit_is_left_alone(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="services.platform.supervisor")
    env = platform_env()
    # Real processes: a module that is not there exits 1 at once; ``site`` prints its paths and exits 0.
    failing = Child("failing", "brightrun_no_such_module", env, tmp_path / "failing.log")
    leaving = Child("leaving", "site", env, tmp_path / "leaving.log")
    supervisor = Supervisor(lambda: [failing, leaving])
    for child in (failing, leaving):
        child.start()
    supervisor.start()
    try:
        wait_for(lambda: caplog.text, lambda text: "failing restarted" in text and "in 4s" in text, 30, "a third failure")
    finally:
        supervisor.pause()
        for child in (failing, leaving):
            child.terminate()
            child.finish(time.monotonic() + 5)
        supervisor.close()
    assert re.findall(r"failing died \(exit status 1\); restarting it in (\d+)s", caplog.text)[:3] == ["1", "2", "4"]
    assert caplog.text.count("leaving exited with status 0 on its own; leaving it stopped") == 1
    assert "leaving restarted" not in caplog.text
    assert (tmp_path / "leaving.log").read_text().count("sys.path = [") == 1


# Start-up that says what is wrong: one line on stderr, exit status 78, nothing left running.


def _up_fails(home: Path, running: frozenset[int] = frozenset(), **settings: str) -> tuple[str, float]:
    """Run ``up`` on ``home`` with ``settings`` and expect it to refuse, leaving no process on ``home`` but
    those ``running`` before: its one stderr line and how long it took."""
    env = platform_env(BRIGHTRUN_HOME=str(home), BRIGHTRUN_DEFAULT_BASE_MODEL=str(home.resolve() / "models" / "tiny-llama"),
                       **settings)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "services.platform", "up"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == EXIT_STATUS, done.stdout + done.stderr
    assert len(lines) == 1 and lines[0].startswith("brightrun: cannot start: "), done.stderr
    assert set(_named(home)) <= running, "processes of the refused start are still running"
    return lines[0], took


def _named(home: Path) -> list[int]:
    """Pids of the processes whose command line or environment names ``home``."""
    marker = str(home.resolve()).encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if marker in entry.joinpath("cmdline").read_bytes() or marker in entry.joinpath("environ").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return [pid for pid in found if pid != os.getpid()]


@pytest.mark.parametrize(("setting", "value"), [("BRIGHTRUN_HTTP_PORT", "{port}"), ("BRIGHTRUN_JOB_ADDR", "127.0.0.1:{port}")])
def test_a_taken_port_is_one_line_naming_it_and_its_setting(tmp_path, setting, value):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line, _ = _up_fails(tmp_path / "home", **{"BRIGHTRUN_HTTP_PORT": "0", setting: value.format(port=port)})
    assert f"port {port} on 127.0.0.1 ({setting}) is already in use" in line
    assert f"set {setting} to a free port" in line


def test_missing_postgresql_binaries_say_which_package_or_setting(tmp_path):
    line, _ = _up_fails(tmp_path / "home", BRIGHTRUN_HTTP_PORT="0", BRIGHTRUN_POSTGRES_BINDIR=str(tmp_path / "no-pg"))
    assert f"no initdb/postgres/psql in {tmp_path / 'no-pg'}" in line
    assert "postgresql-15" in line and "BRIGHTRUN_DATABASE_URL" in line


def test_an_endpoint_nobody_answers_is_one_line_after_a_bounded_wait(tmp_path):
    nobody = f"nats://127.0.0.1:{free_port()}"
    line, took = _up_fails(tmp_path / "home", BRIGHTRUN_HTTP_PORT="0", BRIGHTRUN_NATS_URL=nobody)
    assert f"BRIGHTRUN_NATS_URL={nobody} is unreachable" in line and "within 10s" in line
    assert REACH_SECONDS <= took < REACH_SECONDS + 20


def _alone(module: str, home: Path, **extra: str) -> str:
    """``python -m module`` run alone on ``home`` with ``extra`` settings, which must refuse to start: its one line."""
    # Every process reads these settings; the gateway and the agent never open the database.
    env = platform_env(BRIGHTRUN_HOME=str(home), BRIGHTRUN_S3_ENDPOINT="http://127.0.0.1:1",
                       BRIGHTRUN_DATABASE_URL="postgresql+asyncpg://unused@127.0.0.1:1/unused",
                       BRIGHTRUN_S3_ACCESS_KEY="a", BRIGHTRUN_S3_SECRET_KEY="b",
                       BRIGHTRUN_INTERNAL_TOKEN_SECRET="launcher-test-internal-token-secret-0123456789")
    env.update(extra)
    done = subprocess.run([sys.executable, "-m", module], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == EXIT_STATUS, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("brightrun: cannot start: "), lines[0]
    return lines[0]


def test_a_service_started_alone_says_which_endpoint_it_cannot_reach(tmp_path):
    database = f"postgresql+asyncpg://brightrun:secret@127.0.0.1:{free_port()}/brightrun"
    line = _alone("services.job_svc", tmp_path, BRIGHTRUN_DATABASE_URL=database)
    assert "BRIGHTRUN_DATABASE_URL=postgresql+asyncpg://brightrun:***@127.0.0.1" in line
    assert "secret" not in line


@pytest.mark.parametrize("setting", ["BRIGHTRUN_HTTP_PORT", "BRIGHTRUN_METRICS_PORT"])
def test_the_gateway_started_alone_names_a_taken_port(tmp_path, setting):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"BRIGHTRUN_HTTP_PORT": str(free_port()), "BRIGHTRUN_METRICS_PORT": "0", setting: str(port)}
        line = _alone("gateway", tmp_path, BRIGHTRUN_JWT_SECRET="launcher-test-jwt-secret-0123456789", **ports)
    assert f"{port}" in line and setting in line, line


def test_the_gateway_started_alone_says_it_cannot_verify_tokens(tmp_path):
    line = _alone("gateway", tmp_path, BRIGHTRUN_HTTP_PORT=str(free_port()))
    assert "set BRIGHTRUN_JWT_SECRET (HS256) or BRIGHTRUN_JWT_JWKS" in line, line


def test_the_agent_started_alone_says_nats_is_unreachable(tmp_path):
    nobody = f"nats://127.0.0.1:{free_port()}"
    line = _alone("services.trainer_agent", tmp_path, BRIGHTRUN_NATS_URL=nobody)
    assert f"BRIGHTRUN_NATS_URL={nobody} is unreachable" in line


@pytest.mark.parametrize(("setting", "value"), [
    ("BRIGHTRUN_AGENT_STALL_SECONDS", "soon"), ("BRIGHTRUN_AGENT_WORKER_NICE", "20"),
    ("BRIGHTRUN_AGENT_HEALTH_PORT", "{port}"), ("BRIGHTRUN_METRICS_PORT", "{port}"),
])
def test_the_agent_started_alone_names_a_bad_setting_or_taken_port(tmp_path, setting, value):
    with socket.socket() as nats:  # anything listening passes the reachability check
        nats.bind(("127.0.0.1", 0))
        nats.listen()
        port = nats.getsockname()[1]
        line = _alone("services.trainer_agent", tmp_path, BRIGHTRUN_NATS_URL=f"nats://127.0.0.1:{port}",
                      **{setting: value.format(port=port)})
    assert setting in line, line


def test_a_service_started_without_its_database_url_says_so(tmp_path):
    """Only the services connect to PostgreSQL (each as its own role): the setting is theirs to require."""
    env = platform_env(BRIGHTRUN_HOME=str(tmp_path), BRIGHTRUN_S3_ENDPOINT="http://127.0.0.1:1",
                       BRIGHTRUN_S3_ACCESS_KEY="a", BRIGHTRUN_S3_SECRET_KEY="b",
                       BRIGHTRUN_INTERNAL_TOKEN_SECRET="launcher-test-internal-token-secret-0123456789")
    env.pop("BRIGHTRUN_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "services.billing_svc"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == EXIT_STATUS, done.stderr
    assert len(lines) == 1 and "BRIGHTRUN_DATABASE_URL is not set" in lines[0], done.stderr


def test_a_second_up_on_the_same_home_is_refused_and_every_process_names_the_home(tmp_path):
    home = tmp_path / "home"
    launcher = _up(home, tmp_path / "first.out")
    family = _family(launcher.pid, home)
    try:
        line, _ = _up_fails(home, frozenset({launcher.pid, *(pid for pid, _ in family)}), BRIGHTRUN_HTTP_PORT="0")
        assert f"already running on BRIGHTRUN_HOME={home.resolve()} (launcher pid {launcher.pid})" in line
        # The first stack is untouched: all of it still runs and its gateway answers.
        assert len(_alive(family)) == len(family)
        gateway = re.search(r"BrightRun is up: (\S+)", (tmp_path / "first.out").read_text())[1]
        with urllib.request.urlopen(gateway + "/healthz", timeout=5) as reply:
            assert reply.status == 200
        children = [pid for pid, (parent, _) in _processes().items() if parent == launcher.pid]
        # PostgreSQL, NATS, SeaweedFS, 4 services, the agent and the gateway.
        assert len(children) == 9, children
        for pid in children:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            assert str(home.resolve()) in command, command
        assert (home / "postgres" / "data" / "PG_VERSION").exists()
        assert (home / "nats" / "jetstream").is_dir() and (home / "s3" / "data").is_dir()
        assert _stop(launcher) == 0
        assert _alive(family) == []
    finally:
        _kill_left(family)
    # The lock went with the launcher: the home starts again.
    again = _up(home, tmp_path / "second.out")
    family = _family(again.pid, home)
    try:
        assert _stop(again) == 0
    finally:
        _kill_left(family)
