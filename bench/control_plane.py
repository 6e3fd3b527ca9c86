"""Control-plane speed of the embedded default: API latency under open-loop
load, what each request costs every process and PostgreSQL, how soon a new job
starts, and the idle memory of the launcher and the trainer agent, each figure
beside its goal in one table.

    python bench/control_plane.py            # the issue's rates, 10 s a row
    python bench/control_plane.py --smoke    # low rates, a few seconds a row (CI)
    python bench/control_plane.py --rates 100 300 600 --seconds 20
    python bench/control_plane.py --flow-only   # only the ingestion and watcher rows
    python bench/control_plane.py --estimate-only   # only the estimate rows (issue 11's two-hop call)
    python bench/control_plane.py --detail-only     # only the job detail rows (a job run, no training beside)

The platform runs in a child process of this script (``--_serve``) that
imports only the launcher, as ``make up`` does, so the launcher's RSS is its
own. Load is open-loop: request i is due at start + i / rate whatever the
earlier ones do, and its latency counts from that due time, so queueing in the
gateway (or in this generator) is measured, not hidden. The first row proves
the generator itself keeps up: 1,000 req/s against ``/healthz``. Then the job
detail is loaded again while a long job trains on the CPU beside the control
plane. Then a dataset of ``dataset_mb`` (the validator bench's generated
conversations) is timed from its confirm to ready (its ``validated_at``) through
the platform, beside ``validate_dataset`` reading the same file in a process of
its own (as ``bench/validate_throughput.py`` runs it) while the platform idles;
the two in turn, twice, the fastest of each kept.

Last, the flow of training data. Ingestion is measured twice: trainer metric
points published from ``PUBLISHERS`` processes (one publishes about 3,000 a
second on 2 cores, less than the consumer takes) from the first publish to the
last point stored; and the consumer alone, draining a backlog published while
job_svc was paused (SIGSTOP). Live watchers: one SSE stream each of 1,000 jobs,
one point of each job published at an even pace over ``steady_s`` (what
trainers do; after the jobs' attempt starts, sent first, have all been taken),
then one more of each in one burst (the worst case: every job
moves at once, each move a job save, its outbox events and billing's charge).

CPU ms/req is the CPU time (user + system) each platform process, with its
children (PostgreSQL's backends), spent during a row over the row's requests.
Transactions/req is PostgreSQL's ``xact_commit + xact_rollback`` over the row,
less what the idle platform commits in as long (outbox sweeps), over its
requests; backends report those counts up to 10 s late, so each row is
followed by a settle pause before the count is read. On a machine shared with
other work, latency moves with its load; CPU and transactions per request
hardly do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GENERATOR_RATE = 1000
API_P99_GOAL_MS, API_GOAL_RATE = 25.0, 300
STARTUP_P99_GOAL_S = 1.0
DATASET_SHARE_GOAL = 0.90  # of validate_dataset's own rate on the same file
DATASET_POLL_S = 0.5  # between status reads of the dataset row's upload; its end is the dataset's validated_at
LAUNCHER_RSS_GOAL_MB, AGENT_RSS_GOAL_MB = 100.0, 150.0
# PostgreSQL backends flush their transaction counts at most 10 s after going idle (PGSTAT_IDLE_INTERVAL).
STATS_SETTLE_S = 11.0
ACTIVE = ("initializing", "running")
TERMINAL = ("completed", "failed", "cancelled")


@dataclass(frozen=True)
class Mode:
    rates: tuple[int, ...]
    seconds: float
    generator_seconds: float
    startup_samples: int
    epochs: int  # of the job whose detail is read: ~12 metric points an epoch
    dataset_mb: int = 50  # of the dataset timed from confirm to ready
    dataset_repeat: int = 2  # platform and validate_dataset alone, in turn; the fastest of each kept


FULL = Mode(rates=(100, 300), seconds=10.0, generator_seconds=5.0, startup_samples=10, epochs=4)
SMOKE = Mode(rates=(20,), seconds=2.0, generator_seconds=1.0, startup_samples=2, epochs=1, dataset_mb=2,
             dataset_repeat=1)
INGEST_GOAL_PPS = 10_000
# How long the ingestion row waits for the points after their last publish.
DRAIN_LIMIT_S = 300.0
# How long a watcher row waits for every watcher to see its point.
WATCH_LIMIT_S = 60.0
WATCH_P99_GOAL_MS = 250.0
# Processes publishing the ingestion rows' points.
PUBLISHERS = 3


@dataclass(frozen=True)
class Flow:
    """The size of the ingestion and watcher rows."""

    jobs: int  # ingestion: jobs the points of a row are spread over
    steps: int  # ingestion: points a job
    watchers: int  # watcher rows: one SSE stream each, of as many jobs
    steady_s: float  # watcher rows: one point of each job published evenly over this long


FULL_FLOW = Flow(jobs=50, steps=1000, watchers=1000, steady_s=10.0)
SMOKE_FLOW = Flow(jobs=2, steps=100, watchers=3, steady_s=1.0)


# ---- the platform, in a child process -------------------------------------------------------------------------


_READY = "platform-ready:"


def serve(home: Path) -> None:
    """Start the platform in ``home``, print what the benchmark needs as one JSON line, stop when stdin closes."""
    from services.common.lifeline import die_with_parent
    from services.platform.launcher import Platform

    die_with_parent(os.getppid())  # the benchmark killed: so is the platform (its children die with it)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIGHTRUN_")}  # its own components
    platform = Platform(home, env, http_port=0)
    platform.start()
    try:
        print(_READY, json.dumps({
            "gateway": platform.gateway_url,
            "token": platform.token(str(uuid.uuid4())),
            "database_url": platform.env["BRIGHTRUN_DATABASE_URL"],
            "base_model": platform.env["BRIGHTRUN_DEFAULT_BASE_MODEL"],
            "nats_url": platform.env["BRIGHTRUN_NATS_URL"],
            # The stand-in trainer logs in as agents do: it may publish trainer events and nothing else.
            "nats_login": platform.nats_login("trainer_agent"),
            "processes": {"launcher": os.getpid(), **platform.processes()},
        }), flush=True)
        sys.stdin.read()
    finally:
        platform.stop()


class Served:
    """The platform child process: started on enter, stopped (stdin closed) on exit."""

    def __init__(self, home: Path):
        self._cmd = [sys.executable, __file__, "--_serve", str(home)]
        self._home = home

    def __enter__(self) -> dict:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self._proc = subprocess.Popen(self._cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        # Whatever else starting prints (initdb...) comes first.
        while line := self._proc.stdout.readline():
            if line.startswith(_READY):
                return json.loads(line.removeprefix(_READY))
        self._proc.wait()
        raise RuntimeError(f"the platform did not start (exit {self._proc.returncode}); logs in {self._home}/logs")

    def __exit__(self, *exc) -> None:
        self._proc.stdin.close()
        self._proc.wait(timeout=120)


# ---- the open-loop load generator -----------------------------------------------------------------------------


class Http:
    """A minimal HTTP/1.1 keep-alive client over asyncio streams: a fixed pool of
    connections, opened on first use; a request waits for a free one."""

    def __init__(self, base_url: str, token: str, connections: int = 64):
        url = urlsplit(base_url)
        self._host, self._port = url.hostname, url.port
        self._auth = f"Authorization: Bearer {token}\r\n"
        self._pool: asyncio.Queue = asyncio.Queue()
        for _ in range(connections):
            self._pool.put_nowait(None)

    async def request(self, method: str, path: str, body: bytes = b"") -> int:
        """The answer's status code; the body is read and dropped."""
        request = (
            f"{method} {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n{self._auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        )
        conn = await self._pool.get()
        try:
            if conn is not None:  # kept alive: the server may have closed it since (uvicorn after 5 s idle)
                conn[1].write(request)
                if not (status_line := await conn[0].readline()):
                    conn[1].close()
                    conn = None
            if conn is None:
                conn = await asyncio.open_connection(self._host, self._port)
                conn[1].write(request)
                status_line = await conn[0].readline()
            reader, writer = conn
            status = int(status_line.split()[1])
            headers = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip().lower()
            if headers.get("transfer-encoding") == "chunked":
                while size := int((await reader.readline()).strip(), 16):
                    await reader.readexactly(size + 2)
                await reader.readline()
            else:
                await reader.readexactly(int(headers.get("content-length", 0)))
            if headers.get("connection") == "close":
                writer.close()
                conn = None
            return status
        except BaseException:
            if conn is not None:
                conn[1].close()
            conn = None
            raise
        finally:
            self._pool.put_nowait(conn)


@dataclass
class Load:
    rate: float
    requests: int
    achieved: float  # requests over the time from the first due time to the last answer
    latencies: list[float]  # seconds from each request's due time to its answer
    statuses: Counter = field(default_factory=Counter)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 400)


async def open_loop(http: Http, method: str, path: str, body: bytes, rate: float, seconds: float) -> Load:
    """Send ``rate`` x ``seconds`` requests, request i due at start + i / rate."""
    loop = asyncio.get_running_loop()
    total = max(1, int(rate * seconds))
    latencies: list[float] = []
    statuses: Counter = Counter()

    async def one(due: float) -> None:
        try:
            statuses[await http.request(method, path, body)] += 1
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            statuses[599] += 1
        latencies.append(loop.time() - due)

    start = loop.time() + 0.05
    tasks = []
    for i in range(total):
        due = start + i / rate
        if (delay := due - loop.time()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    return Load(rate, total, total / (loop.time() - start), latencies, statuses)


# ---- what the platform's processes and PostgreSQL spend ---------------------------------------------------------


class Meters:
    """CPU seconds of every platform process (with its children) and PostgreSQL's transaction count."""

    def __init__(self, processes: dict[str, int], database_url: str):
        import psutil

        self._psutil = psutil
        self._processes = {name: psutil.Process(pid) for name, pid in processes.items()}
        self._dsn = database_url.replace("+asyncpg", "")

    def cpu(self) -> dict[str, float]:
        """CPU seconds by process, each with its children that are not listed themselves
        (PostgreSQL's backends, a trainer agent's worker; not the launcher's children)."""
        listed = {proc.pid for proc in self._processes.values()}

        def spent(proc) -> float:
            try:
                times, children = proc.cpu_times(), proc.children()
            except self._psutil.NoSuchProcess:
                return 0.0
            return times.user + times.system + sum(spent(c) for c in children if c.pid not in listed)

        return {name: spent(proc) for name, proc in self._processes.items()}

    def rss_mb(self, name: str) -> float:
        return self._processes[name].memory_info().rss / 2**20

    async def transactions(self) -> int:
        import asyncpg

        conn = await asyncpg.connect(self._dsn)
        try:
            return await conn.fetchval(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
            )
        finally:
            await conn.close()


@dataclass
class Cost:
    cpu_ms: dict[str, float]  # per request, by process
    transactions: float  # per request


async def measured(meters: Meters, idle_per_s: float, run) -> tuple[Load, Cost]:
    """Run ``run()`` (an open loop) between two readings of the meters."""
    cpu, xacts, started = meters.cpu(), await meters.transactions(), time.monotonic()
    load = await run()
    cpu_after = meters.cpu()
    await asyncio.sleep(STATS_SETTLE_S)
    # Less the idle platform's own transactions over the same time, and the two readings' own.
    xacts = await meters.transactions() - xacts - idle_per_s * (time.monotonic() - started) - 2
    return load, Cost(
        {name: (cpu_after[name] - cpu[name]) * 1000 / load.requests for name in cpu},
        max(0.0, xacts / load.requests),
    )


async def idle_transactions_per_s(meters: Meters) -> float:
    before, started = await meters.transactions(), time.monotonic()
    await asyncio.sleep(STATS_SETTLE_S)
    return (await meters.transactions() - before - 1) / (time.monotonic() - started)


# ---- the journey around the loads: a dataset, jobs, their start ------------------------------------------------


class Api:
    """The journey's calls, as this benchmark's user."""

    def __init__(self, info: dict):
        import httpx

        headers = {"Authorization": f"Bearer {info['token']}"}
        self.client = httpx.Client(base_url=info["gateway"], headers=headers, timeout=60)

    def ready_dataset(self, path: Path, **size) -> dict:
        """A demo dataset (``write_demo_dataset``'s ``conversations``, ``exchanges``) uploaded and validated."""
        from services.platform.journey import upload_dataset, wait_dataset, write_demo_dataset

        created = upload_dataset(self.client, write_demo_dataset(path, **size), path.stem)
        dataset = wait_dataset(self.client, created["id"])
        if dataset["status"] != "ready":
            raise RuntimeError(f"the benchmark's dataset failed validation: {dataset['validation_errors']}")
        return dataset

    def start_job(self, dataset: dict, **hyperparameters) -> tuple[str, float]:
        """POST /api/jobs; returns the job's id once it is seen initializing or running, and how long that took."""
        from services.platform.demo import DEMO_JOB
        from services.platform.journey import call

        body = {"dataset_id": dataset["id"], **DEMO_JOB}
        # Batches of 8 (the demo's are smaller, tuned for its model): ~12 metric points an epoch.
        body["hyperparameters"] = {**DEMO_JOB["hyperparameters"], "batch_size": 8, **hyperparameters}
        posted = time.perf_counter()
        job_id = call(self.client, "POST", "/api/jobs", json=body)["job"]["id"]
        if (status := self.wait_status(job_id, ACTIVE + TERMINAL)) not in ACTIVE:
            raise RuntimeError(f"job {job_id} ended {status} before it was seen starting")
        return job_id, time.perf_counter() - posted

    def wait_status(self, job_id: str, statuses: tuple[str, ...]) -> str:
        """The first of ``statuses`` the job's event stream shows."""
        from services.platform.journey import job_events

        for name, data in job_events(self.client, job_id):
            if name == "status" and data["status"] in statuses:
                return data["status"]
        raise RuntimeError(f"job {job_id}'s events ended before any of {statuses}")

    def cancel(self, job_id: str) -> str:
        """Cancel the job unless it has ended, and wait until it has: the agent is free then. Returns the status
        it had before."""
        from services.platform.journey import call

        status = call(self.client, "GET", f"/api/jobs/{job_id}")["job"]["status"]
        if status not in TERMINAL:
            call(self.client, "POST", f"/api/jobs/{job_id}/cancel")
            self.wait_status(job_id, TERMINAL)
        return status

    def metric_points(self, job_id: str) -> int:
        from services.platform.journey import call

        return len(call(self.client, "GET", f"/api/jobs/{job_id}")["metrics"])


def dataset_rates(api: Api, info: dict, work: Path, size_mb: int, repeat: int) -> tuple[float, float, float]:
    """MB/s of a generated ``size_mb`` dataset from its confirm to ready through the platform, and of
    ``validate_dataset`` on the same file in a process of its own; and the file's MB.

    The two are measured in turn ``repeat`` times and the fastest of each is kept (as
    ``validate_throughput --repeat`` does), so a burst of other work on the machine, or the
    platform still settling after the row before, counts against neither side alone. The
    platform's time ends at the dataset's ``validated_at`` (PostgreSQL's clock, this machine's):
    the status is polled only every ``DATASET_POLL_S``, since polling faster would load the
    gateway and dataset_svc beside the validator and count this observer's own cost (about
    3 ms of CPU a poll, measured) against the platform.
    """
    import argparse

    import httpx

    from services.platform.journey import call

    throughput = _bench_module("validate_throughput")
    data = work / "throughput.jsonl"
    throughput.write_dataset(data, size_mb << 20)
    body = data.read_bytes()
    args = argparse.Namespace(model_dir=Path(info["base_model"]), data=data, rendered=work / "unused.txt")
    platform_s = alone_s = float("inf")
    for _ in range(repeat):
        created = call(api.client, "POST", "/api/datasets", json={"name": "throughput", "file_name": data.name,
                                                                 "file_size": len(body)})
        httpx.put(created["uploadUrl"], content=body, timeout=300).raise_for_status()
        dataset_id = created["dataset"]["id"]
        confirmed = time.time()  # the clock validated_at is on
        call(api.client, "POST", f"/api/datasets/{dataset_id}/confirm")
        while (dataset := call(api.client, "GET", f"/api/datasets/{dataset_id}")["dataset"])["status"] not in (
                "ready", "error"):
            time.sleep(DATASET_POLL_S)
        if dataset["status"] != "ready":
            raise RuntimeError(f"the throughput dataset {dataset_id} ended {dataset['status']}")
        ready = datetime.fromisoformat(dataset["validated_at"]).timestamp()
        platform_s = min(platform_s, ready - confirmed)
        alone_s = min(alone_s, throughput.measure("validator", args)["elapsed"])
    mb = len(body) / 2**20
    return mb / platform_s, mb / alone_s, mb


def _bench_module(name: str):
    """A sibling benchmark script as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare(api: Api, work: Path, mode: Mode) -> tuple[dict, str, list[float]]:
    """A ready dataset and a completed job with metric points; returns the dataset, the job's id and the
    seconds from each POST /api/jobs to its first initializing/running status (``startup_samples`` jobs, all
    but the first cancelled once seen starting)."""
    dataset = api.ready_dataset(work / "bench.jsonl")
    detail_job, startup = api.start_job(dataset, epochs=mode.epochs)
    api.wait_status(detail_job, TERMINAL)
    startups = [startup]
    for _ in range(mode.startup_samples - 1):
        job_id, startup = api.start_job(dataset, epochs=mode.epochs)
        startups.append(startup)
        api.cancel(job_id)
    return dataset, detail_job, startups


# ---- the flow of training data: ingestion and live watchers ----------------------------------------------------


def queued_jobs(api: Api, dataset: dict, count: int) -> list[str]:
    """``count`` jobs on a GPU no agent of the embedded platform serves: they wait queued, moved only by the
    trainer events this benchmark publishes."""
    from concurrent.futures import ThreadPoolExecutor

    from services.platform.demo import DEMO_JOB
    from services.platform.journey import call

    body = {"dataset_id": dataset["id"], **DEMO_JOB, "gpu_config": {"type": "H100", "count": 1}}
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: call(api.client, "POST", "/api/jobs", json=body)["job"]["id"], range(count)))


def trainer_metrics(job_id: str, step: int):
    """The ``trainer.metrics`` event the trainer agent publishes for ``step`` of attempt 1 (its format, its id)."""
    from brightrun.events.v1 import events_pb2
    from services.common import events
    from services.trainer_agent.agent import PRODUCER, _event_id
    from services.trainer_agent.attempt import metric_point

    line = {"epoch": 1, "step": step, "training_loss": 2.0 / step, "learning_rate": 1e-4, "grad_norm": 0.5,
            "tokens_per_second": 1000.0}
    event = events.new_event("trainer.metrics", producer=PRODUCER, user_id="", subject_id=job_id,
                             trainer_metrics=events_pb2.TrainerMetrics(
                                 job_id=job_id, attempt=1, metric_point=metric_point(job_id, line), total_steps=0))
    event.event_id = _event_id(job_id, 1, "metrics", step, False)
    return event


def trainer_started(job_id: str):
    """The ``trainer.attempt.started`` of attempt 1 that comes before its points: job_svc drops the
    points of an attempt that has not taken the job (services.job_svc.attempts)."""
    from brightrun.events.v1 import events_pb2
    from services.common import events
    from services.trainer_agent.agent import PRODUCER, _event_id

    event = events.new_event("trainer.attempt.started", producer=PRODUCER, user_id="", subject_id=job_id,
                             trainer_attempt_started=events_pb2.TrainerAttemptStarted(job_id=job_id, attempt=1))
    event.event_id = _event_id(job_id, 1, "started")
    return event


class Trainer:
    """The trainer agent's way out (its EventRelay) on the platform's NATS."""

    async def __aenter__(self):
        from services.common import events
        from services.trainer_agent.relay import EventRelay

        self._nc, js = await events.connect(self._url, "bench-trainer", *self._login, create_streams=False)
        self.relay = EventRelay(js)
        self.relay.start()
        return self.relay

    def __init__(self, nats_url: str, login: list[str]):
        self._url = nats_url
        self._login = login

    async def __aexit__(self, *exc) -> None:
        await self.relay.stop(timeout=60)
        await self._nc.close()


def publish(nats_url: str, login: list[str], steps: int, job_ids: list[str]) -> None:
    """A publishing process (``--_publish``): ``steps`` points of each of ``job_ids`` (each job's in step
    order). Prints a line once connected with its events built, publishes when stdin gives it a line, then
    prints the perf_counter time (one clock for every process) its last one was answered."""

    async def run() -> float:
        batch = [trainer_metrics(job_id, step) for step in range(1, steps + 1) for job_id in job_ids]
        async with Trainer(nats_url, login) as relay:
            for job_id in job_ids:  # each job taken by its attempt first, or job_svc drops its points
                relay.send(trainer_started(job_id))
            await relay.wait_published(relay.mark)
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
            for event in batch:
                relay.send(event)
            await relay.wait_published(relay.mark)
            return time.perf_counter()

    print(asyncio.run(run()), flush=True)


async def publish_from_processes(info: dict, job_ids: list[str], steps: int, processes: int) -> tuple[float, float]:
    """Publish ``steps`` points of each job from ``processes`` processes (the jobs split between them, so each
    job's points keep their order); returns the perf_counter times of the first publish and of the last one
    answered. One process publishes about 3,000 points/s: the consumer would otherwise wait on it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    user, password = info["nats_login"]  # in the environment, not on a command line ps shows
    env.update(BRIGHTRUN_NATS_USER=user, BRIGHTRUN_NATS_PASSWORD=password)
    workers = [subprocess.Popen([sys.executable, __file__, "--_publish", info["nats_url"], str(steps),
                                 *job_ids[i::processes]], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                env=env) for i in range(processes)]
    try:
        for worker in workers:
            if await asyncio.to_thread(worker.stdout.readline) != "ready\n":
                raise RuntimeError(f"a publishing process ended before it was ready (exit {worker.wait()})")
        started = time.perf_counter()
        for worker in workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()
        ends = [float(await asyncio.to_thread(worker.stdout.readline)) for worker in workers]
    finally:
        for worker in workers:
            worker.stdin.close()
            await asyncio.to_thread(worker.wait)
    return started, max(ends)


async def _stored_by(conn, job_ids: list[str], count: int, since: float) -> tuple[int, float]:
    """Wait until ``count`` points of ``job_ids`` are stored or ``DRAIN_LIMIT_S`` passed ``since``; returns
    how many are stored and when that was seen."""
    sql = "SELECT count(*) FROM job.metric_points WHERE job_id = ANY($1::uuid[])"
    while (stored := await conn.fetchval(sql, job_ids)) < count and time.perf_counter() - since <= DRAIN_LIMIT_S:
        await asyncio.sleep(0.05)
    return stored, time.perf_counter()


async def ingestion_rows(info: dict, job_ids: list[str], steps: int) -> list[Row]:
    """Two rows. Points persisted a second from the first publish to the last point stored, published from
    ``PUBLISHERS`` processes beside the platform; then the consumer's own capacity: a backlog published to
    the stream while job_svc is paused (SIGSTOP), drained once it goes on, from then to the last stored.
    Each row has jobs of its own (half of ``job_ids``). A platform that has not stored them all
    ``DRAIN_LIMIT_S`` after the last publish is measured on what it stored by then."""
    import signal

    import asyncpg

    live, backlog = job_ids[: len(job_ids) // 2], job_ids[len(job_ids) // 2 :]
    publishers = min(PUBLISHERS, len(live))
    conn = await asyncpg.connect(info["database_url"].replace("+asyncpg", ""))
    try:
        started, published = await publish_from_processes(info, live, steps, publishers)
        stored, ended = await _stored_by(conn, live, len(live) * steps, published)
        total = len(live) * steps
        rate = stored / (ended - started)
        drained = (f"drained {ended - published:.1f} s after the last" if stored == total
                   else f"{stored} stored {DRAIN_LIMIT_S:.0f} s after the last")
        rows = [Row(
            f"ingestion: trainer metric points persisted/s ({total} points, {len(live)} jobs, {publishers} publishers)",
            f"{rate:.0f} points/s (published {total / (published - started):.0f}/s, {drained})",
            f">= {INGEST_GOAL_PPS} points/s", rate >= INGEST_GOAL_PPS,
        )]
        job_svc = info["processes"]["job_svc"]
        os.kill(job_svc, signal.SIGSTOP)
        try:
            await publish_from_processes(info, backlog, steps, publishers)
        finally:
            meters = Meters(info["processes"], info["database_url"])
            cpu = meters.cpu()
            os.kill(job_svc, signal.SIGCONT)
        resumed = time.perf_counter()
        total = len(backlog) * steps
        stored, ended = await _stored_by(conn, backlog, total, resumed)
        rate = stored / (ended - resumed)
        rows.append(Row(
            f"ingestion: consumer drain of a {total}-point backlog ({len(backlog)} jobs)",
            f"{rate:.0f} points/s" + ("" if stored == total else f" ({stored} stored in {DRAIN_LIMIT_S:.0f} s)"),
            f">= {INGEST_GOAL_PPS} points/s", rate >= INGEST_GOAL_PPS,
        ))
        spent = await _until_quiet(meters)
        per_point = {name: (spent[name] - cpu[name]) * 1e6 / max(stored, 1) for name in cpu}
        top = sorted(((us, name) for name, us in per_point.items() if us >= 1), reverse=True)
        rows.append(Row("    CPU us/point of the drain, until quiet (all processes; top ones)",
                        f"{sum(per_point.values()):.0f} ({' '.join(f'{name} {us:.0f}' for us, name in top[:5])})"))
    finally:
        await conn.close()
    return rows


# The platform is quiet once all its processes together spend less than this share of a core.
QUIET_SHARE = 0.15


async def _until_quiet(meters: Meters, limit_s: float = 60.0) -> dict[str, float]:
    """The meters' CPU seconds once the platform is quiet (every consumer behind the stored points, billing's
    charges of their ``job.progressed`` too, has caught up), or after ``limit_s``."""
    cpu, deadline = meters.cpu(), time.perf_counter() + limit_s
    while time.perf_counter() < deadline:
        await asyncio.sleep(1.0)
        now = meters.cpu()
        if sum(now.values()) - sum(cpu.values()) < QUIET_SHARE:
            return now
        cpu = now
    return cpu


async def _watch(info: dict, job_id: str, ready: asyncio.Event, arrived: dict[tuple[str, int], float],
                 last_step: int) -> None:
    """One SSE stream of ``job_id``: sets ``ready`` at its first status, notes when each metric step arrived,
    ends after ``last_step``'s."""
    url = urlsplit(info["gateway"])
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(f"GET /api/jobs/{job_id}/events HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\n"
                     f"Authorization: Bearer {info['token']}\r\nAccept: text/event-stream\r\n\r\n".encode())
        metric = False
        while line := await reader.readline():
            if line.startswith(b"event: status"):
                ready.set()
            metric = line.startswith(b"event: metric") or (metric and not line.strip() == b"")
            if metric and line.startswith(b"id: "):
                step = int(line[4:])
                arrived[(job_id, step)] = time.perf_counter()
                if step == last_step:
                    return
    finally:
        ready.set()
        writer.close()


def _watch_row(label: str, job_ids: list[str], step: int, sent: dict, arrived: dict) -> Row:
    # A watcher that never saw its point counts as the wait's limit: the percentiles are then lower bounds.
    latencies = [arrived[(j, step)] - sent[j] if (j, step) in arrived else WATCH_LIMIT_S for j in job_ids]
    missed = sum(1 for j in job_ids if (j, step) not in arrived)
    return Row(
        f"watchers: publish -> SSE metric p50 / p99, {label} ({len(job_ids)} watchers of as many jobs)",
        f"{percentile(latencies, 50) * 1000:.0f} / {percentile(latencies, 99) * 1000:.0f} ms"
        + (f" ({missed} never saw it within {WATCH_LIMIT_S:.0f} s, counted as that)" if missed else ""),
        f"p99 <= {WATCH_P99_GOAL_MS:.0f} ms", percentile(latencies, 99) * 1000 <= WATCH_P99_GOAL_MS,
    )


async def watcher_rows(info: dict, job_ids: list[str], steady_s: float) -> list[Row]:
    """Publish -> SSE ``event: metric`` of many jobs, each watched on its own stream: first one point of each
    job published steadily over ``steady_s`` (a trainer's pace), then one more of each in one burst."""
    arrived: dict[tuple[str, int], float] = {}
    readies = [asyncio.Event() for _ in job_ids]
    opening = asyncio.Semaphore(50)  # streams opened at once: the gateway's accept queue stays short

    async def watch(job_id: str, ready: asyncio.Event) -> None:
        async with opening:
            task = asyncio.create_task(_watch(info, job_id, ready, arrived, last_step=2))
            await ready.wait()
        await task

    def seen(step: int) -> bool:
        return all((j, step) in arrived for j in job_ids)

    async def until_seen(step: int) -> None:
        deadline = time.perf_counter() + WATCH_LIMIT_S
        while not seen(step) and time.perf_counter() < deadline:
            await asyncio.sleep(0.02)

    watches = [asyncio.create_task(watch(j, r)) for j, r in zip(job_ids, readies)]
    steady: dict[str, float] = {}
    burst: dict[str, float] = {}
    try:
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 300)
        async with Trainer(info["nats_url"], info["nats_login"]) as relay:
            for job_id in job_ids:  # each job taken by its attempt first, or job_svc drops its points
                relay.send(trainer_started(job_id))
            # 1,000 jobs starting at once is a burst of its own (a job save, its status events and charges
            # each): the steady points go out once the platform has taken it, as a trainer's points follow
            # its own start, not every other job's.
            await relay.wait_published(relay.mark)
            await _until_quiet(Meters(info["processes"], info["database_url"]))
            loop = asyncio.get_running_loop()
            start = loop.time()
            for i, job_id in enumerate(job_ids):  # open loop: point i due at start + i x the interval
                if (delay := start + i * steady_s / len(job_ids) - loop.time()) > 0:
                    await asyncio.sleep(delay)
                steady[job_id] = time.perf_counter()
                relay.send(trainer_metrics(job_id, 1))
            await until_seen(1)
            for job_id in job_ids:
                burst[job_id] = time.perf_counter()
                relay.send(trainer_metrics(job_id, 2))
            await asyncio.wait(watches, timeout=WATCH_LIMIT_S)
    finally:
        for task in watches:
            task.cancel()
        await asyncio.gather(*watches, return_exceptions=True)
    rate = len(job_ids) / steady_s
    return [
        _watch_row(f"steady {rate:.0f} points/s", job_ids, 1, steady, arrived),
        _watch_row(f"a burst of {len(job_ids)}", job_ids, 2, burst, arrived),
    ]


async def flow_rows(info: dict, api: Api, dataset: dict, flow: Flow) -> list[Row]:
    """The ingestion rows, then the watcher rows."""
    ingesting = await asyncio.to_thread(queued_jobs, api, dataset, 2 * flow.jobs)
    rows = await ingestion_rows(info, ingesting, flow.steps)
    watched = await asyncio.to_thread(queued_jobs, api, dataset, flow.watchers)
    rows += await watcher_rows(info, watched, flow.steady_s)
    return rows


# ---- the table --------------------------------------------------------------------------------------------------


@dataclass
class Row:
    measure: str
    measured: str
    goal: str = "-"
    met: bool | None = None

    def cells(self) -> tuple[str, str, str, str]:
        return self.measure, self.measured, self.goal, {True: "met", False: "NOT met", None: "-"}[self.met]


def table(rows: list[Row]) -> list[str]:
    """The rows under a header, in columns two spaces apart."""
    lines = [("measure", "measured", "goal", "met"), *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in lines) + 2 for i in range(3)]
    return ["".join(cell.ljust(width) for cell, width in zip(line, widths)) + line[3] for line in lines]


def cost_rows(cost: Cost) -> list[Row]:
    spenders = sorted(((ms, name) for name, ms in cost.cpu_ms.items() if ms >= 0.05), reverse=True)
    detail = " ".join(f"{name} {ms:.2f}" for ms, name in spenders[:4])
    return [
        Row("    CPU ms/req (all processes; top ones)", f"{sum(cost.cpu_ms.values()):.2f} ({detail})"),
        Row("    PostgreSQL transactions/req", f"{cost.transactions:.2f}"),
    ]


def latency_row(label: str, load: Load) -> Row:
    p50, p99 = load.percentile(50) * 1000, load.percentile(99) * 1000
    failed = ", ".join(f"{n} x {status}" for status, n in sorted(load.statuses.items()) if status >= 400)
    errors = f", errors: {failed}" if failed else ""
    goal = load.rate >= API_GOAL_RATE
    return Row(
        f"{label} @ {load.rate:g}/s p50 / p99",
        f"{p50:.1f} / {p99:.1f} ms ({load.requests} req{errors})",
        f"p99 <= {API_P99_GOAL_MS:g} ms" if goal else f"(goal at {API_GOAL_RATE}/s)",
        (p99 <= API_P99_GOAL_MS and not load.errors) if goal else None,
    )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def estimate_endpoint(dataset: dict) -> tuple[str, str, str, bytes]:
    """The estimate row's request: the demo job on ``dataset``."""
    from services.platform.demo import DEMO_JOB

    return ("POST /api/jobs/estimate", "POST", "/api/jobs/estimate",
            json.dumps({"dataset_id": dataset["id"], **DEMO_JOB}).encode())


def detail_endpoint(api: Api, job_id: str) -> tuple[str, str, str, bytes]:
    """The job detail rows' request: ``job_id``'s detail, labelled with how many metric points it has."""
    return f"GET /api/jobs/{{id}} ({api.metric_points(job_id)} metric points)", "GET", f"/api/jobs/{job_id}", b""


async def api_rows(meters: Meters, http: Http, idle: float, endpoints: list[tuple[str, str, str, bytes]],
                   mode: Mode) -> list[Row]:
    """A latency row and its cost rows for each endpoint at each of the mode's rates."""
    rows = []
    for label, method, path, body in endpoints:
        for rate in mode.rates:
            load, cost = await measured(meters, idle, lambda: open_loop(http, method, path, body, rate, mode.seconds))
            rows += [latency_row(label, load), *cost_rows(cost)]
    return rows


async def bench(info: dict, work: Path, mode: Mode, flow: Flow, flow_only: bool = False,
                estimate_only: bool = False, detail_only: bool = False) -> list[Row]:
    if flow_only:
        api = Api(info)
        dataset = await asyncio.to_thread(api.ready_dataset, work / "bench.jsonl")
        rows = await flow_rows(info, api, dataset, flow)
        api.client.close()
        return rows
    meters = Meters(info["processes"], info["database_url"])
    http = Http(info["gateway"], info["token"])
    if estimate_only:
        api = Api(info)
        dataset = await asyncio.to_thread(api.ready_dataset, work / "bench.jsonl")
        api.client.close()
        idle = await idle_transactions_per_s(meters)
        return [Row("PostgreSQL transactions/s of the idle platform", f"{idle:.2f}"),
                *await api_rows(meters, http, idle, [estimate_endpoint(dataset)], mode)]
    if detail_only:
        api = Api(info)
        dataset = await asyncio.to_thread(api.ready_dataset, work / "bench.jsonl")
        job_id, _ = await asyncio.to_thread(api.start_job, dataset, epochs=mode.epochs)
        await asyncio.to_thread(api.wait_status, job_id, TERMINAL)
        endpoint = await asyncio.to_thread(detail_endpoint, api, job_id)
        api.client.close()
        await asyncio.sleep(2)  # the job's worker gone: the platform is idle
        idle = await idle_transactions_per_s(meters)
        return [Row("PostgreSQL transactions/s of the idle platform", f"{idle:.2f}"),
                *await api_rows(meters, http, idle, [endpoint], mode)]
    rows = []
    generator = await open_loop(http, "GET", "/healthz", b"", GENERATOR_RATE, mode.generator_seconds)
    rows.append(Row(
        f"load generator: /healthz @ {GENERATOR_RATE}/s achieved",
        f"{generator.achieved:.0f} req/s (p99 {generator.percentile(99) * 1000:.1f} ms)",
        f">= {GENERATOR_RATE * 0.98:.0f} req/s",
        generator.achieved >= GENERATOR_RATE * 0.98 and not generator.errors,
    ))

    api = Api(info)
    dataset, job_id, startups = await asyncio.to_thread(prepare, api, work, mode)
    detail = await asyncio.to_thread(detail_endpoint, api, job_id)
    await asyncio.sleep(2)  # the last job's worker gone: the platform is idle
    rows.append(Row("idle RSS: launcher", f"{meters.rss_mb('launcher'):.0f} MB",
                    f"<= {LAUNCHER_RSS_GOAL_MB:.0f} MB", meters.rss_mb("launcher") <= LAUNCHER_RSS_GOAL_MB))
    rows.append(Row("idle RSS: trainer agent", f"{meters.rss_mb('trainer_agent'):.0f} MB",
                    f"<= {AGENT_RSS_GOAL_MB:.0f} MB", meters.rss_mb("trainer_agent") <= AGENT_RSS_GOAL_MB))
    p50, p99 = percentile(startups, 50), percentile(startups, 99)
    rows.append(Row(
        "POST /api/jobs -> first initializing/running p50 / p99",
        f"{p50 * 1000:.0f} / {p99 * 1000:.0f} ms ({len(startups)} jobs)",
        f"p99 <= {STARTUP_P99_GOAL_S * 1000:.0f} ms", p99 <= STARTUP_P99_GOAL_S,
    ))

    idle = await idle_transactions_per_s(meters)
    rows.append(Row("PostgreSQL transactions/s of the idle platform", f"{idle:.2f}"))
    endpoints = [
        detail,
        ("GET /api/datasets", "GET", "/api/datasets", b""),
        estimate_endpoint(dataset),
    ]
    rows += await api_rows(meters, http, idle, endpoints, mode)
    # The control plane beside a job training on the CPU, at the lowest rate (one the idle platform keeps up
    # with, to compare with its row above): a job far longer than the row, cancelled after it.
    long = await asyncio.to_thread(api.ready_dataset, work / "bench-long.jsonl", conversations=2000, exchanges=3)
    training, _ = await asyncio.to_thread(api.start_job, long, batch_size=1, epochs=20)
    await asyncio.to_thread(api.wait_status, training, ("running",))
    label, method, path, body = endpoints[0]
    rate = min(mode.rates)
    try:
        load, cost = await measured(meters, idle, lambda: open_loop(http, method, path, body, rate, mode.seconds))
    finally:
        status = await asyncio.to_thread(api.cancel, training)
    if status != "running":
        raise RuntimeError(f"the job meant to train beside the last row was {status} at its end, not running")
    rows += [latency_row(f"{label} while a job trains", load), *cost_rows(cost)]
    platform_rate, alone_rate, mb = await asyncio.to_thread(dataset_rates, api, info, work, mode.dataset_mb,
                                                           mode.dataset_repeat)
    share = platform_rate / alone_rate
    rows.append(Row(
        f"dataset {mb:.0f} MB confirm -> ready, beside validate_dataset alone",
        f"{platform_rate:.2f} vs {alone_rate:.2f} MB/s ({share:.0%})",
        f">= {DATASET_SHARE_GOAL:.0%}", share >= DATASET_SHARE_GOAL,
    ))
    rows += await flow_rows(info, api, dataset, flow)
    api.client.close()
    return rows


def _print_logged_errors(logs: Path) -> None:
    """Each ERROR line of the platform's logs, with the traceback lines after it, on stderr."""
    for log_file in sorted(logs.glob("*.log")):
        lines, shown = log_file.read_text(errors="replace").splitlines(), []
        for i, line in enumerate(lines):
            if " ERROR " in line or line.startswith("Traceback"):
                shown.extend(lines[i:i + 40] if line.startswith("Traceback") else [line])
        if shown:
            print(f"--- errors in {log_file.name}:", *shown[-200:], sep="\n", file=sys.stderr)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="low rates, a few seconds a row: proves the bench runs")
    parser.add_argument("--rates", type=int, nargs="+", help="request rates of the API rows")
    parser.add_argument("--seconds", type=float, help="seconds of load a row")
    parser.add_argument("--flow-only", action="store_true", help="only the ingestion and watcher rows")
    parser.add_argument("--estimate-only", action="store_true",
                        help="only the POST /api/jobs/estimate rows (a validated dataset, no job run)")
    parser.add_argument("--detail-only", action="store_true",
                        help="only the GET /api/jobs/{id} rows at each rate (a job run first, none trains beside)")
    parser.add_argument("--_serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--_publish", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._serve:
        serve(args._serve)
        return ""
    if args._publish:
        nats_url, steps, *job_ids = args._publish
        login = [os.environ["BRIGHTRUN_NATS_USER"], os.environ["BRIGHTRUN_NATS_PASSWORD"]]
        publish(nats_url, login, int(steps), job_ids)
        return ""
    mode = SMOKE if args.smoke else FULL
    mode = Mode(tuple(args.rates or mode.rates), args.seconds or mode.seconds, mode.generator_seconds,
                mode.startup_samples, mode.epochs, mode.dataset_mb, mode.dataset_repeat)
    with tempfile.TemporaryDirectory(prefix="brightrun-bench-") as tmp:
        work = Path(tmp)
        with Served(work / "home") as info:
            try:
                rows = asyncio.run(bench(info, work, mode, SMOKE_FLOW if args.smoke else FULL_FLOW, args.flow_only,
                                         args.estimate_only, args.detail_only))
            except Exception:
                _print_logged_errors(work / "home" / "logs")  # the platform's logs go with the temporary directory
                raise
    report = "\n".join([
        f"control plane on {os.cpu_count()} cores{' (smoke: figures are not comparable)' if args.smoke else ''}",
        *table(rows),
    ])
    print(report)
    return report


if __name__ == "__main__":
    main()
