"""``brightrun``: the command line of the BrightRun API, built on ``Client``.

Results go to stdout (``--json``: the API's objects as JSON), progress and
errors to stderr. Exit status: 0 success, 1 an API error, 2 bad usage, 3 a
dataset that failed validation or a job that did not complete (with ``--wait``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from brightrun_client._endpoints import parse_gpu
from brightrun_client.client import Client
from brightrun_client.config import config_path, load_config
from brightrun_client.errors import BrightRunError
from brightrun_client.models import ApiObject, Dataset, Job, MetricPoint

EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_DONE = 3


class Output:
    """Where a command writes: results to ``out``, progress lines (carriage-return updated) to ``err``."""

    def __init__(self, as_json: bool, out=None, err=None):
        self.as_json = as_json
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._line_open = False

    def result(self, value: Any, human) -> None:
        """Print ``value`` as JSON with ``--json``, else call ``human(value)`` to print it for people."""
        self.end_progress()
        if self.as_json:
            json.dump(_plain(value), self.out, indent=2)
            self.out.write("\n")
        else:
            human(value)

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def progress(self, text: str) -> None:
        self.err.write("\r" + text + "\x1b[K" if self.err.isatty() else "\r" + text)
        self.err.flush()
        self._line_open = True

    def end_progress(self) -> None:
        if self._line_open:
            self.err.write("\n")
            self._line_open = False

    def note(self, text: str) -> None:
        self.end_progress()
        self.err.write(text + "\n")

    def table(self, rows: list[Sequence[Any]], headers: Sequence[str]) -> None:
        cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
        for row in cells:
            self.print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _plain(value: Any) -> Any:
    if isinstance(value, ApiObject):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _bar(done: int, total: int, width: int = 30) -> str:
    fraction = done / total if total else 1.0
    filled = int(width * fraction)
    return f"[{'#' * filled}{'-' * (width - filled)}] {fraction * 100:5.1f}%  {done / 1e6:.2f}/{total / 1e6:.2f} MB"


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


# Datasets


def _dataset_summary(out: Output, dataset: Dataset) -> None:
    out.table(
        [
            ("id", dataset.id), ("name", dataset.name), ("status", dataset.status), ("format", dataset.format),
            ("file", f"{dataset.file_name} ({dataset.file_size} bytes)"),
            ("training pairs", dataset.total_training_pairs), ("validation pairs", dataset.total_validation_pairs),
            ("tokens", dataset.total_tokens), ("training ready", dataset.training_ready),
            ("base model", dataset.base_model), ("created", dataset.created_at),
        ],
        ("field", "value"),
    )
    if dataset.validation_errors:
        out.print()
        out.print(f"{len(dataset.validation_errors)} validation problem(s):")
        out.table([(e.line, e.code, e.error) for e in dataset.validation_errors], ("line", "code", "message"))


def _datasets_table(out: Output, datasets: list[Dataset]) -> None:
    out.table([(d.id, d.name, d.status, d.total_training_pairs, d.total_tokens, d.created_at) for d in datasets],
              ("id", "name", "status", "pairs", "tokens", "created"))


def datasets_upload(client: Client, args, out: Output) -> int:
    path = Path(args.file)
    label = args.name or path.stem
    dataset = client.upload_dataset(path, args.name, format=args.format, description=args.description,
                                    progress=lambda done, total: out.progress(f"Uploading {label} {_bar(done, total)}"))
    if args.wait:
        out.note(f"Validating dataset {dataset.id} ...")
        dataset = client.wait_dataset(dataset.id, timeout=args.timeout)
    out.result(dataset, lambda d: _dataset_summary(out, d))
    return EXIT_NOT_DONE if dataset.status == "error" else 0


def datasets_list(client: Client, args, out: Output) -> int:
    datasets = list(client.iter_datasets(status=args.status, search=args.search))
    out.result(datasets, lambda ds: _datasets_table(out, ds))
    return 0


def datasets_get(client: Client, args, out: Output) -> int:
    out.result(client.get_dataset(args.id), lambda d: _dataset_summary(out, d))
    return 0


def datasets_delete(client: Client, args, out: Output) -> int:
    dataset = client.delete_dataset(args.id)
    out.result(dataset, lambda d: out.print(f"Deleted dataset {d.id} ({d.name})"))
    return 0


# Jobs


def _hyperparameters(client: Client, preset: str, settings: list[str]) -> dict[str, Any]:
    """The preset's hyperparameters with each ``--set key=value`` over them (values read as JSON, else text).

    The preset's values are sent explicitly: the API asks for learning_rate,
    batch_size, epochs and rank even beside a preset_id. The base model is left
    to the server (its default, or a ``--set base_model=...``).
    """
    presets = {p.id: p for p in client.list_presets()}
    if preset not in presets:
        raise UsageError(f"unknown preset {preset!r}; the server offers: {', '.join(presets)}")
    values = {k: v for k, v in presets[preset].hyperparameters.items() if v is not None and k != "base_model"}
    for setting in settings:
        key, sep, raw = setting.partition("=")
        if not sep or not key:
            raise UsageError(f"--set takes key=value, got {setting!r}")
        try:
            values[key.strip()] = json.loads(raw)
        except ValueError:
            values[key.strip()] = raw
    return values


def _job_summary(out: Output, job: Job) -> None:
    out.table(
        [
            ("id", job.id), ("status", job.status), ("dataset", f"{job.dataset_name} ({job.dataset_id})"),
            ("preset", job.preset_id), ("gpu", f"{job.gpu_config.get('type')}x{job.gpu_config.get('count')}"),
            ("progress", f"{job.progress:.1f}%  step {job.current_step}/{job.total_steps}"),
            ("cost", f"{_money(job.current_cost)} (estimated {_money(job.estimated_total_cost)})"),
            ("model", job.artifact_id), ("error", job.error_message), ("created", job.created_at),
        ],
        ("field", "value"),
    )


def _estimate_summary(out: Output, estimate) -> None:
    details = estimate.training_details
    out.table(
        [
            ("estimated cost", _money(estimate.estimated_cost)),
            ("compute / storage", f"{_money(estimate.cost_breakdown.get('compute'))} / "
                                  f"{_money(estimate.cost_breakdown.get('storage'))}"),
            ("duration", f"{estimate.estimated_duration_hours:.2f} h ({estimate.basis or 'table'})"),
            ("hourly rate", _money(estimate.hourly_rate)),
            ("steps", details.get("total_steps")),
            # 0: not estimated (a CPU job, or a hub model whose size is not known).
            ("memory per GPU", f"{estimate.memory_per_gpu_gb:.1f} GB, fits: {estimate.fits_gpu_memory}"
                               if estimate.memory_per_gpu_gb else "not estimated"),
        ],
        ("field", "value"),
    )
    for warning in estimate.warnings:
        out.print(f"warning: {warning}")


def _job_progress(out: Output):
    """An ``on_event`` that keeps one line up to date: status, step/total, loss, cost."""
    state = {"loss": None, "status": "", "step": 0, "total": 0, "cost": 0.0}

    def show(event) -> None:
        if isinstance(event, MetricPoint):
            state["loss"], state["step"] = event.training_loss, max(state["step"], event.step)
        else:
            state.update(status=event.status, step=max(state["step"], event.current_step), total=event.total_steps,
                         cost=event.current_cost)
        out.progress(f"{state['status']:<12} step {state['step']}/{state['total'] or '?'}  "
                     f"loss {_loss(state['loss'])}  cost {_money(state['cost'])}")

    return show


def jobs_estimate(client: Client, args, out: Output) -> int:
    estimate = client.estimate_job(args.dataset, args.gpu, _hyperparameters(client, args.preset, args.set))
    out.result(estimate, lambda e: _estimate_summary(out, e))
    return 0


def jobs_create(client: Client, args, out: Output) -> int:
    created = client.create_job(args.dataset, args.preset, args.gpu, _hyperparameters(client, args.preset, args.set),
                                parent_model_id=args.parent_model)
    for warning in created.warnings:
        out.note(f"warning: {warning}")
    job = created.job
    if args.wait:
        out.note(f"Job {job.id} queued; following its progress ...")
        job = client.wait_job(job.id, on_event=_job_progress(out))
    out.result(job, lambda j: _job_summary(out, j))
    return EXIT_NOT_DONE if args.wait and job.status != "completed" else 0


def jobs_list(client: Client, args, out: Output) -> int:
    jobs = list(client.iter_jobs(status=args.status))
    out.result(jobs, lambda js: out.table(
        [(j.id, j.dataset_name, j.status, f"{j.progress:.0f}%", _money(j.current_cost), j.created_at) for j in js],
        ("id", "dataset", "status", "progress", "cost", "created")))
    return 0


def jobs_get(client: Client, args, out: Output) -> int:
    detail = client.get_job(args.id)

    def human(d) -> None:
        _job_summary(out, d.job)
        if d.metrics:
            last = d.metrics[-1]
            out.print(f"\nlast metric: step {last.step}, training loss {_loss(last.training_loss)}, "
                      f"validation loss {_loss(last.validation_loss)}")
        if d.cost_records:
            out.print()
            out.table([(r.cost_type, _money(r.amount), r.recorded_at) for r in d.cost_records],
                      ("cost type", "amount", "recorded"))

    out.result(detail, human)
    return 0


def jobs_cancel(client: Client, args, out: Output) -> int:
    out.result(client.cancel_job(args.id), lambda j: out.print(f"Job {j.id} is {j.status}"))
    return 0


def jobs_events(client: Client, args, out: Output) -> int:
    for event in client.job_events(args.id, after_step=args.after_step):
        kind = "metric" if isinstance(event, MetricPoint) else "status"
        if out.as_json:
            out.print(json.dumps({"event": kind, "data": event.to_dict()}))
        elif kind == "metric":
            out.print(f"metric  step {event.step}  epoch {event.epoch}  loss {_loss(event.training_loss)}  "
                      f"validation {_loss(event.validation_loss)}")
        else:
            out.print(f"status  {event.status}  step {event.current_step}/{event.total_steps}  "
                      f"cost {_money(event.current_cost)}")
    return 0


# Models, costs, notifications


def _model_summary(out: Output, model) -> None:
    quality = model.quality_metrics or {}
    out.table(
        [
            ("id", model.id), ("name", model.name), ("version", model.version), ("status", model.status),
            ("job", model.job_id), ("dataset", model.dataset_id),
            ("final training loss", _loss(quality.get("final_training_loss"))),
            ("final validation loss", _loss(quality.get("final_validation_loss"))),
            ("files", ", ".join(sorted(model.artifacts or {}))), ("created", model.created_at),
        ],
        ("field", "value"),
    )


def models_list(client: Client, args, out: Output) -> int:
    models = list(client.iter_models(sort=args.sort))
    out.result(models, lambda ms: out.table(
        [(m.id, m.name, m.version, _loss((m.quality_metrics or {}).get("final_training_loss")), m.created_at)
         for m in ms], ("id", "name", "version", "training loss", "created")))
    return 0


def models_get(client: Client, args, out: Output) -> int:
    out.result(client.get_model(args.id), lambda m: _model_summary(out, m))
    return 0


def models_download(client: Client, args, out: Output) -> int:
    directory = Path(args.dir or f"brightrun-model-{args.id}")
    files = client.download_model(args.id, directory,
                                  progress=lambda done, total: out.progress(f"Downloading {_bar(done, total)}"))
    written = {"directory": str(directory), "files": [str(p) for p in files]}
    out.result(written, lambda w: out.print(f"Downloaded {len(files)} files into {w['directory']}"))
    return 0


def models_generate(client: Client, args, out: Output) -> int:
    answer = client.generate(args.id, prompts=args.prompts, max_new_tokens=args.max_new_tokens,
                             temperature=args.temperature, seed=args.seed, include_base=args.include_base)

    def human(a: dict) -> None:
        for result in a["results"]:
            out.print(f"> {result['prompt']}")
            out.print(result["completion"])
            if "base_completion" in result:
                out.print(f"[base model] {result['base_completion']}")
            out.print()

    out.result(answer, human)
    return 0


def models_export(client: Client, args, out: Output) -> int:
    """Ask for a merged export; with --wait, follow it until it ends and list its download URLs."""
    export = client.export_model(args.id, kind=args.kind)
    if args.wait:
        out.note(f"Export {export.id} {export.status}; waiting for a trainer agent to finish it ...")
        while not export.settled:
            time.sleep(args.poll)
            export = client.get_export(args.id, export.id)
        export = client.get_export(args.id, export.id)

    def human(e) -> None:
        out.print(f"Export {e.id} ({e.kind}) is {e.status}" + (f": {e.error}" if e.error else ""))
        if e.download_urls:
            out.table([(u.file, u.size_bytes, u.url) for u in e.download_urls], ("file", "bytes", "url"))

    out.result(export, human)
    return EXIT_NOT_DONE if args.wait and export.status != "completed" else 0


def costs(client: Client, args, out: Output) -> int:
    summary = client.costs(args.period)

    def human(s) -> None:
        out.print(f"Total for the {s.period or 'period'}: {_money(s.total)} ({s.record_count} records)")
        out.table([(kind, _money(amount)) for kind, amount in sorted(s.by_type.items())], ("cost type", "amount"))

    out.result(summary, human)
    return 0


def notifications(client: Client, args, out: Output) -> int:
    listed = client.notifications(unread=args.unread, limit=args.limit)
    if args.mark_read:
        marked = client.mark_all_notifications_read()
        out.note(f"Marked {marked} notification(s) read")
    out.result(listed, lambda n: out.table(
        [(x.created_at, x.type, x.title, "" if x.read else "unread") for x in n.notifications],
        ("created", "type", "title", "")))
    return 0


def budget(client: Client, args, out: Output) -> int:
    current = client.set_budget(args.set) if args.set is not None else client.budget()

    def human(b) -> None:
        amount = "no budget" if b.amount is None else _money(b.amount)
        remaining = "" if b.remaining is None else f", {_money(b.remaining)} remaining"
        out.print(f"{b.month}: {amount}; spent {_money(b.spent)}, committed {_money(b.committed)}{remaining}")

    out.result(current, human)
    return 0


def webhooks_list(client: Client, args, out: Output) -> int:
    hooks = list(client.iter_webhooks())
    out.result(hooks, lambda hs: out.table(
        [(h.id, h.url, ",".join(h.event_types), "on" if h.enabled else "off") for h in hs],
        ("id", "url", "events", "enabled")))
    return 0


def webhooks_create(client: Client, args, out: Output) -> int:
    created = client.create_webhook(args.endpoint, args.event, description=args.description)
    shown = {"webhook": created.webhook.to_dict(), "secret": created.secret}
    out.result(shown, lambda c: out.print(
        f"Webhook {created.webhook.id} created. Its signing secret, shown only now: {created.secret}"))
    return 0


def webhooks_delete(client: Client, args, out: Output) -> int:
    client.delete_webhook(args.id)
    out.result({"id": args.id, "deleted": True}, lambda d: out.print(f"Webhook {d['id']} deleted"))
    return 0


# The parser


class UsageError(Exception):
    """A command line the client can tell is wrong before (or without) asking the server."""


def _gpu(text: str) -> str:
    try:
        parse_gpu(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brightrun",
        description="BrightRun from the command line: datasets, training jobs, models, costs.",
        epilog=f"The API's address and token come from --url/--token, else BRIGHTRUN_URL/BRIGHTRUN_TOKEN, else "
               f"{config_path()} (keys url, token, gpu).",
    )
    parser.add_argument("--url", help="gateway URL (default: BRIGHTRUN_URL, the config file, http://127.0.0.1:8080)")
    parser.add_argument("--token", help="bearer token (default: BRIGHTRUN_TOKEN or the config file)")
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")

    def command(subparsers, name: str, handler, help: str) -> argparse.ArgumentParser:
        sub = subparsers.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=handler)
        sub.add_argument("--json", action="store_true", help="print the result as JSON")
        return sub

    datasets = groups.add_parser("datasets", help="upload and manage datasets").add_subparsers(
        dest="command", required=True, metavar="ACTION")
    upload = command(datasets, "upload", datasets_upload, "upload a JSONL dataset file and have it validated")
    upload.add_argument("file")
    upload.add_argument("--name", help="dataset name (default: the file's name without extension)")
    upload.add_argument("--format", help="brightrun_lora_v4, openai_chat or sharegpt (default: detected)")
    upload.add_argument("--description")
    upload.add_argument("--wait", action="store_true", help="wait for the validation and print its report")
    upload.add_argument("--timeout", type=float, default=600.0, help="seconds --wait waits (default 600)")
    listing = command(datasets, "list", datasets_list, "list datasets")
    listing.add_argument("--status", help="uploading, validating, ready or error")
    listing.add_argument("--search", help="part of the name")
    command(datasets, "get", datasets_get, "show a dataset and its validation report").add_argument("id")
    command(datasets, "delete", datasets_delete, "delete a dataset").add_argument("id")

    jobs = groups.add_parser("jobs", help="estimate, launch and follow training jobs").add_subparsers(
        dest="command", required=True, metavar="ACTION")
    default_gpu = load_config().gpu
    for name, handler, help in (("estimate", jobs_estimate, "price a job before launching it"),
                                ("create", jobs_create, "launch a training job")):
        sub = command(jobs, name, handler, help)
        sub.add_argument("--dataset", required=True, help="dataset id")
        sub.add_argument("--preset", required=True,
                         help="fast, balanced, quality, conservative, aggressive or custom (GET /api/jobs/presets)")
        sub.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="a hyperparameter over the preset's, e.g. --set epochs=2 (repeatable)")
        sub.add_argument("--gpu", type=_gpu, default=default_gpu,
                         help=f"GPU type and count, TYPE or TYPExN, e.g. H100x8 (default: {default_gpu})")
        if name == "create":
            sub.add_argument("--wait", action="store_true", help="follow the job live until it ends")
            sub.add_argument("--parent-model", metavar="MODEL_ID",
                             help="continue training this model's adapter (same base model and rank)")
    listing = command(jobs, "list", jobs_list, "list jobs")
    listing.add_argument("--status", help="queued, initializing, running, completed, failed or cancelled")
    command(jobs, "get", jobs_get, "show a job with its metrics and costs").add_argument("id")
    command(jobs, "cancel", jobs_cancel, "cancel a job").add_argument("id")
    events = command(jobs, "events", jobs_events, "follow a job's live events (JSON lines with --json)")
    events.add_argument("id")
    events.add_argument("--after-step", type=int, default=0, help="start after this metric step")

    models = groups.add_parser("models", help="trained adapters").add_subparsers(
        dest="command", required=True, metavar="ACTION")
    command(models, "list", models_list, "list models").add_argument("--sort", choices=("created", "quality"))
    command(models, "get", models_get, "show a model").add_argument("id")
    download = command(models, "download", models_download, "download a model's adapter files")
    download.add_argument("id")
    download.add_argument("--dir", help="target directory (default: ./brightrun-model-ID)")
    generate = command(models, "generate", models_generate, "answer prompts with a model (run by a trainer agent)")
    generate.add_argument("id")
    generate.add_argument("prompts", nargs="+", metavar="PROMPT", help="1 to 8 prompts")
    generate.add_argument("--max-new-tokens", type=int, default=128, help="1 to 512 (default 128)")
    generate.add_argument("--temperature", type=float, default=0.0, help="0 (greedy, the default) to 2")
    generate.add_argument("--seed", type=int, help="seed of the sampling")
    generate.add_argument("--include-base", action="store_true", help="also answer with the base model alone")


    export = command(models, "export", models_export, "export a model merged into its base model (safetensors)")
    export.add_argument("id")
    export.add_argument("--kind", default="merged", choices=("merged",))
    export.add_argument("--wait", action="store_true", help="wait until it completes and list its download URLs")
    export.add_argument("--poll", type=float, default=2.0, help=argparse.SUPPRESS)

    cost = command(groups, "costs", costs, "the cost summary")
    cost.add_argument("--period", choices=("week", "month", "quarter", "year"))
    notes = command(groups, "notifications", notifications, "your notifications, newest first")
    notes.add_argument("--unread", action="store_true", help="only unread ones")
    notes.add_argument("--limit", type=int, default=20)
    notes.add_argument("--mark-read", action="store_true", help="mark them all read after listing them")
    spend = command(groups, "budget", budget, "this month's budget, spent and committed")
    spend.add_argument("--set", type=float, metavar="DOLLARS", help="set the monthly budget (0 or more)")

    hooks = groups.add_parser("webhooks", help="endpoints that receive your events").add_subparsers(
        dest="command", required=True, metavar="ACTION")
    command(hooks, "list", webhooks_list, "list webhook endpoints")
    create = command(hooks, "create", webhooks_create, "register an endpoint (prints its secret once)")
    # Not "url": that is the global --url of the gateway.
    create.add_argument("endpoint", metavar="URL", help="where events are POSTed (https)")
    create.add_argument("--event", action="append", required=True, metavar="TYPE",
                        help="job.succeeded, job.failed, job.cancelled, dataset.ready, dataset.failed, model.ready "
                             "or budget.alert (repeatable)")
    create.add_argument("--description")
    command(hooks, "delete", webhooks_delete, "delete a webhook endpoint").add_argument("id")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Output(args.json)
    config = load_config()
    try:
        with Client(args.url or config.url, args.token or config.token) as client:
            return args.handler(client, args, out)
    except UsageError as exc:
        out.note(f"brightrun: {exc}")
        return EXIT_USAGE
    except BrightRunError as exc:
        out.note(f"error: {exc}")
        return EXIT_API_ERROR
    except httpx.HTTPError as exc:
        out.note(f"error: {type(exc).__name__}: {exc} ({args.url or config.url})")
        return EXIT_API_ERROR
    except KeyboardInterrupt:
        out.note("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
