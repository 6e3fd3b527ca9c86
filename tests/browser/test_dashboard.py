"""The product journey through the dashboard's pages only, in headless Chromium,
against the embedded platform `make up` starts."""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from pathlib import Path

import httpx
import pytest

from gateway.auth import mint_token
from services.common.config import DEV_JWT_SECRET
from services.platform.journey import call, upload_dataset, wait_dataset, write_demo_dataset

pytestmark = pytest.mark.slow

# Screenshots of each page, for a person to look at (gitignored).
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "browser"


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path



def expect():
    from playwright.sync_api import expect as _expect

    return _expect


def sign_in(page, up) -> None:
    page.goto(up.sign_in_url)
    page.wait_for_url(re.compile(r"/datasets$"))
    # The token left the address bar for sessionStorage.
    assert "#token" not in page.url and "token=" not in page.url
    assert page.evaluate("sessionStorage.getItem('brightrun.token')") == up.sign_in_url.split("#token=", 1)[1]


def upload(page, path: Path, name: str, *, drop: bool) -> None:
    page.get_by_role("link", name="Upload dataset").click()
    page.wait_for_url(re.compile(r"/datasets/upload$"))
    if drop:
        content = path.read_text()
        transfer = page.evaluate_handle(
            """([content, name]) => { const dt = new DataTransfer();
                dt.items.add(new File([content], name, {type: 'application/json'})); return dt; }""",
            [content, path.name],
        )
        page.dispatch_event("[data-testid=dropzone]", "drop", {"dataTransfer": transfer})
    else:
        page.get_by_label("Dataset file").set_input_files(str(path))
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name="Upload", exact=True).click()


def wait_status(page, pattern: str, timeout: float = 150_000) -> None:
    expect()(page.get_by_test_id("upload-status")).to_contain_text(re.compile(pattern), timeout=timeout)


def launch_from_dataset(page, preset: str, edits: dict[str, str] | None = None) -> str:
    page.get_by_role("link", name="Configure training").first.click()
    page.wait_for_url(re.compile(r"/training/configure\?datasetId="))
    page.get_by_test_id(f"preset-{preset}").click()
    for label, value in (edits or {}).items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_label("GPU type", exact=True).select_option("CPU")
    expect()(page.get_by_test_id("estimated-steps")).to_have_text(re.compile(r"^\d+$"), timeout=30_000)
    page.get_by_role("button", name="Launch training").click()
    page.wait_for_url(re.compile(r"/training/jobs/[0-9a-f-]{36}$"))
    return page.url.rsplit("/", 1)[1]


def test_the_whole_journey_through_the_pages(up, page, tmp_path):
    sign_in(page, up)
    expect()(page.get_by_test_id("current-user")).to_contain_text("User ")
    expect()(page.get_by_text("No datasets yet")).to_be_visible()
    shot(page, "01-datasets-empty")

    # Upload by drag and drop; the PUT's progress reaches 100 %, validation runs, the dataset is ready.
    path = write_demo_dataset(tmp_path / "reverse.jsonl", conversations=96, exchanges=3)
    upload(page, path, "reverse words", drop=True)
    expect()(page.get_by_test_id("upload-progress")).to_have_attribute("value", "100", timeout=60_000)
    wait_status(page, r"ready")
    shot(page, "02-upload-ready")

    page.get_by_role("link", name="Open dataset").click()
    stats = page.get_by_test_id("dataset-stats")
    expect()(stats).to_contain_text("Training pairs")
    expect()(stats).to_contain_text(re.compile(r"Training pairs\s*2\d\d"))  # 96 conversations x 3 exchanges, less validation
    expect()(page.get_by_test_id("token-histogram")).to_be_visible()
    expect()(page.locator(".sample mark").first).to_be_visible()  # trained (assistant) spans highlighted
    shot(page, "03-dataset-detail")

    # Configure with a preset; the debounced estimate shows its cost breakdown; launch.
    page.get_by_role("link", name="Configure training").first.click()
    page.wait_for_url(re.compile(r"/training/configure\?datasetId="))
    page.get_by_test_id("preset-conservative").click()
    expect()(page.get_by_label("Batch size", exact=True)).to_have_value("4")
    expect()(page.get_by_label("Epochs", exact=True)).to_have_value("3")
    page.get_by_label("GPU type", exact=True).select_option("CPU")
    estimate = page.get_by_test_id("estimate")
    expect()(page.get_by_test_id("estimated-steps")).to_have_text(re.compile(r"^\d+$"), timeout=30_000)
    expect()(estimate).to_contain_text("Compute")
    expect()(estimate).to_contain_text("Storage")
    steps = int(page.get_by_test_id("estimated-steps").inner_text())
    assert steps >= 30
    # An out-of-range value is refused next to its field, before the server is asked.
    page.get_by_label("Learning rate", exact=True).fill("0.5")
    expect()(page.locator("#h-learning_rate")).to_contain_text("between")
    expect()(page.get_by_role("button", name="Launch training")).to_be_disabled()
    page.get_by_test_id("preset-conservative").click()
    expect()(page.get_by_label("Learning rate", exact=True)).to_have_value("0.0001")
    shot(page, "04-configure")
    dataset_id = page.url.rsplit("datasetId=", 1)[1]
    launches = []
    page.on("request", lambda r: launches.append(r.post_data_json)
            if r.method == "POST" and r.url.endswith("/api/jobs") else None)
    page.get_by_role("button", name="Launch training").click()
    page.wait_for_url(re.compile(r"/training/jobs/[0-9a-f-]{36}$"))
    job_id = page.url.rsplit("/", 1)[1]
    # The preset as chosen (the edit was undone by choosing it again) is sent as its id alone.
    assert launches == [{"dataset_id": dataset_id, "preset_id": "conservative", "gpu_config": {"type": "CPU", "count": 1}}]

    # The monitor: the loss chart gains points live, over SSE, while the job runs.
    chart = page.get_by_test_id("loss-chart")
    expect()(page.get_by_test_id("job-status")).to_have_text("running", timeout=120_000)
    counts = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        counts.append(int(chart.get_attribute("data-points")))
        if page.get_by_test_id("job-status").inner_text() != "running" or (len(set(counts)) >= 3):
            break
        page.wait_for_timeout(300)
    assert len({c for c in counts if c > 0}) >= 2, counts  # it grew while the job was running
    assert counts == sorted(counts), counts
    shot(page, "05-monitor-running")
    expect()(page.get_by_test_id("job-status")).to_have_text("completed", timeout=300_000)
    expect()(chart).to_have_attribute("data-points", str(steps), timeout=30_000)
    expect()(page.get_by_test_id("job-progress")).to_have_attribute("value", "100")
    expect()(page.locator("#lr-chart, [data-testid=lr-chart]")).to_have_attribute("data-points", str(steps))
    shot(page, "06-monitor-completed")

    # The model: quality, files, a download through its presigned URL, the PEFT snippet.
    page.get_by_test_id("model-link").click(timeout=60_000)
    page.wait_for_url(re.compile(r"/models/[0-9a-f-]{36}$"))
    expect()(page.get_by_test_id("quality-metrics")).to_contain_text("final training loss")
    expect()(page.get_by_test_id("peft-snippet")).to_contain_text("PeftModel.from_pretrained")
    files = page.get_by_test_id("model-files")
    expect()(files).to_contain_text("adapter_model.safetensors")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download adapter_model.safetensors").click()
    download = info.value
    saved = tmp_path / "adapter_model.safetensors"
    download.save_as(saved)
    header_size = int.from_bytes(saved.read_bytes()[:8], "little")
    assert json.loads(saved.read_bytes()[8 : 8 + header_size])  # a real safetensors file
    # Samples answered at the end of training, and "Try it" through a trainer agent, with the base model beside.
    expect()(page.get_by_test_id("smoke-samples").locator("tbody tr")).not_to_have_count(0)
    page.get_by_label("Prompt").fill("hello world")
    page.get_by_label("Max new tokens").fill("6")
    page.get_by_label("Compare with the base model").check()
    page.get_by_role("button", name="Generate").click()
    expect()(page.get_by_test_id("try-it-answer")).to_contain_text("base model alone", timeout=90_000)
    shot(page, "07-model-detail")

    page.get_by_role("link", name="Models").click()
    expect()(page.locator(".cards .card")).to_have_count(1)
    shot(page, "08-models")
    page.get_by_role("link", name="Training").click()
    expect()(page.get_by_role("link", name="reverse words")).to_be_visible()
    shot(page, "09-jobs")
    page.get_by_role("link", name="Costs").click()
    expect()(page.get_by_test_id("cost-total")).to_be_visible()
    # The records the total sums: the job's compute (free on the CPU) and its model's storage.
    records = page.get_by_test_id("cost-records")
    expect()(records.locator("tbody tr")).to_have_count(2)
    expect()(records).to_contain_text("storage")
    expect()(records).to_contain_text("compute")
    expect()(records.get_by_role("link", name="reverse words").first).to_have_attribute("href", f"/training/jobs/{job_id}")
    expect()(page.get_by_test_id("cost-record-count")).to_have_text("2")
    shot(page, "10-costs")

    # Notifications (dataset ready, job queued, started, completed, model ready): read one, then all.
    expect()(page.get_by_test_id("unread-count")).not_to_have_text("0", timeout=30_000)
    page.get_by_role("button", name=re.compile(r"^Notifications, \d+ unread")).click()
    items = page.get_by_test_id("notification")
    expect()(items.filter(has_text="Model Ready")).to_be_visible(timeout=30_000)
    expect()(items.filter(has_text="Dataset Ready")).to_have_count(1)
    shot(page, "11-notifications")
    unread_items = page.locator("[data-testid=notification].unread")
    before = unread_items.count()
    assert before >= 2
    dataset_ready = items.filter(has_text="Dataset Ready")
    dataset_ready.get_by_role("button", name=re.compile("^Mark")).click()
    expect()(dataset_ready).to_have_class(re.compile(r"\bread\b"))
    expect()(dataset_ready.get_by_role("button", name=re.compile("^Mark"))).to_have_count(0)
    # The bell counts what the list shows unread (another notice may still arrive meanwhile).
    page.wait_for_function(
        """() => document.querySelector('[data-testid=unread-count]').textContent ===
                 String(document.querySelectorAll('[data-testid=notification].unread').length)"""
    )
    page.get_by_role("button", name="Mark all read").click()
    expect()(page.get_by_test_id("unread-count")).to_have_text("0")
    expect()(unread_items).to_have_count(0)
    assert job_id and not page.console_errors, page.console_errors


def test_a_bad_dataset_shows_its_line_errors(up, page, tmp_path):
    sign_in(page, up)
    good = {"conversation_id": "a", "turns": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    lines = [json.dumps(good), "{not json", json.dumps({"conversation_id": "b", "turns": "nope"}), "[1, 2]"]
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(lines) + "\n")
    upload(page, path, "broken", drop=False)
    wait_status(page, r"error")
    page.get_by_role("link", name="Open dataset").click()
    table = page.get_by_test_id("validation-errors")
    expect()(table.locator("tbody tr")).to_have_count(3)
    assert [int(t) for t in table.locator("tbody tr td:first-child").all_inner_texts()] == [2, 3, 4]
    expect()(page.get_by_test_id("error-counts")).to_be_visible()
    assert all(t.strip() for t in table.locator("tbody tr td:nth-child(4)").all_inner_texts())  # suggestions
    shot(page, "12-dataset-errors")
    # The list filters by status and searches by name.
    page.get_by_role("link", name="Datasets").click()
    page.get_by_label("Status").select_option("error")
    expect()(page.get_by_role("link", name="broken")).to_be_visible()
    page.get_by_label("Status").select_option("ready")
    expect()(page.get_by_role("link", name="broken")).to_have_count(0)
    page.get_by_label("Status").select_option("")
    page.get_by_label("Search").fill("brok")
    expect()(page.get_by_role("link", name="broken")).to_be_visible()
    page.get_by_label("Search").fill("no-such-name")
    expect()(page.get_by_text("No datasets match")).to_be_visible()
    # Delete asks first, then the dataset is gone.
    page.get_by_label("Search").fill("")
    page.get_by_role("link", name="broken").click()
    page.get_by_role("button", name="Delete dataset").click()
    page.get_by_role("button", name="Delete", exact=True).click()
    page.wait_for_url(re.compile(r"/datasets$"))
    page.get_by_label("Status").select_option("error")
    expect()(page.get_by_role("link", name="broken")).to_have_count(0)


def test_cancel_from_the_monitor(up, page, tmp_path):
    sign_in(page, up)
    path = write_demo_dataset(tmp_path / "long.jsonl", conversations=48, exchanges=3)
    upload(page, path, "long run", drop=False)
    wait_status(page, r"ready")
    page.get_by_role("link", name="Open dataset").click()
    page.wait_for_url(re.compile(r"/datasets/[0-9a-f-]{36}$"))
    dataset_url = page.url
    job_id = launch_from_dataset(page, "custom", {"Batch size": "1", "Epochs": "20"})
    expect()(page.get_by_test_id("job-status")).to_have_text("running", timeout=120_000)
    # While the job trains on it, deleting the dataset is refused (409) and the page says why.
    page.goto(dataset_url)
    page.get_by_role("button", name="Delete dataset").click()
    page.get_by_role("button", name="Delete", exact=True).click()
    expect()(page.get_by_role("alert")).to_contain_text("cannot be deleted while a training job uses it")
    shot(page, "13a-dataset-delete-conflict")
    page.goto(f"{up.url}/training/jobs/{job_id}")
    expect()(page.get_by_test_id("loss-chart")).not_to_have_attribute("data-points", "0", timeout=60_000)
    page.get_by_role("button", name="Cancel job").click()
    page.get_by_role("button", name="Cancel training").click()
    expect()(page.get_by_test_id("job-status")).to_have_text("cancelled", timeout=30_000)
    expect()(page.get_by_role("button", name="Cancel job")).to_have_count(0)
    shot(page, "13-monitor-cancelled")
    # A reload shows the same, from the API.
    page.reload()
    expect()(page.get_by_test_id("job-status")).to_have_text("cancelled")


def _a_job_of_another_user(up, tmp_path) -> str:
    """A job made through the API by a user of its own (set-up, not what is tested)."""
    owner = httpx.Client(base_url=up.url, headers={"Authorization": f"Bearer {mint_token(str(uuid.uuid4()), DEV_JWT_SECRET)}"}, timeout=60)
    with owner:
        path = write_demo_dataset(tmp_path / "owner.jsonl", conversations=16)
        dataset = wait_dataset(owner, upload_dataset(owner, path, "owner's")["id"])
        job = {"dataset_id": dataset["id"], "preset_id": "conservative", "gpu_config": {"type": "CPU", "count": 1},
               "hyperparameters": {"learning_rate": 0.0001, "batch_size": 4, "epochs": 1, "rank": 8, "alpha": 16}}
        return call(owner, "POST", "/api/jobs", json=job)["job"]["id"]


def test_another_users_job_is_not_found(up, page, tmp_path):
    job_id = _a_job_of_another_user(up, tmp_path)
    sign_in(page, up)
    page.goto(f"{up.url}/training/jobs/{job_id}")
    expect()(page.get_by_role("alert")).to_contain_text("Not found")
    expect()(page.get_by_test_id("job-status")).to_have_count(0)
    shot(page, "14-job-not-found")


def test_an_address_with_a_malformed_id_shows_not_found(up, page):
    # The API answers a path id that is not a UUID with a 400 naming it; the pages say "not found".
    sign_in(page, up)
    for path, testid in (("/training/jobs/not-a-job", "job-status"), ("/datasets/not-a-dataset", "dataset-stats"),
                         ("/models/not-a-model", "quality-metrics")):
        page.goto(f"{up.url}{path}")
        alert = page.get_by_role("alert")
        expect()(alert).to_contain_text("Not found")
        expect()(alert).to_contain_text("not a valid id")
        expect()(alert.get_by_role("button", name="Retry")).to_have_count(0)  # it will not change on its own
        expect()(page.get_by_test_id(testid)).to_have_count(0)
    shot(page, "14b-malformed-id")
    assert not page.console_errors, page.console_errors


def test_an_expired_token_returns_to_sign_in_with_the_reason(up, page):
    now = int(time.time())
    import jwt

    # Valid in every way (audience included) but its expiry.
    claims = {"sub": str(uuid.uuid4()), "aud": "authenticated", "iat": now - 120, "exp": now - 60}
    expired = jwt.encode(claims, DEV_JWT_SECRET, algorithm="HS256")
    page.goto(f"{up.url}/models#token={expired}")
    page.wait_for_url(re.compile(r"/signin$"))
    expect()(page.get_by_test_id("signin-reason")).to_contain_text("expired")
    assert page.evaluate("sessionStorage.getItem('brightrun.token')") is None
    shot(page, "15-signin-expired")
    # Pasting a valid token signs in and returns to the page asked for.
    page.get_by_label("Bearer token").fill(mint_token(str(uuid.uuid4()), DEV_JWT_SECRET))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/models$"))
    expect()(page.get_by_text("No trained models yet")).to_be_visible()


def test_a_narrow_screen_keeps_navigation_reachable_by_keyboard(up, chromium):
    ctx = chromium.new_context(viewport={"width": 375, "height": 740})
    try:
        page = ctx.new_page()
        sign_in(page, up)
        # Tab from the top reaches every navigation link.
        reached = set()
        for _ in range(12):
            page.keyboard.press("Tab")
            reached.add(page.evaluate("document.activeElement && document.activeElement.textContent"))
        assert {"Datasets", "Training", "Models", "Costs"} <= reached, reached
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375 + 1, width
        shot(page, "16-narrow")
    finally:
        ctx.close()


def test_the_monitor_reconnects_and_replays_after_a_dropped_stream(up, page, tmp_path):
    sign_in(page, up)
    token = up.sign_in_url.split("#token=", 1)[1]
    with httpx.Client(base_url=up.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as me:
        path = write_demo_dataset(tmp_path / "replay.jsonl", conversations=16)
        dataset = wait_dataset(me, upload_dataset(me, path, "replay")["id"])
        job = {"dataset_id": dataset["id"], "preset_id": "custom", "gpu_config": {"type": "CPU", "count": 1},
               "hyperparameters": {"learning_rate": 0.0001, "batch_size": 1, "epochs": 4, "rank": 8, "alpha": 16}}
        job_id = call(me, "POST", "/api/jobs", json=job)["job"]["id"]
    streams: list[dict] = []
    page.route("**/api/jobs/*/events", lambda route: (streams.append(route.request.headers), route.continue_()))
    page.goto(f"{up.url}/training/jobs/{job_id}")
    chart = page.get_by_test_id("loss-chart")
    page.wait_for_function("() => +(document.querySelector('[data-testid=loss-chart]')?.dataset.points ?? 0) >= 3", timeout=120_000)
    assert len(streams) == 1 and streams[0]["authorization"] == f"Bearer {token}"
    # The gateway dies mid-stream; the platform's supervisor restarts it a second later.
    up.kill_child("gateway")
    expect()(page.get_by_test_id("connection")).to_have_text("reconnecting", timeout=20_000)
    expect()(page.get_by_test_id("connection")).to_have_text(re.compile("open|finished"), timeout=60_000)
    assert len(streams) >= 2
    resumed_after = int(streams[-1]["last-event-id"])
    assert resumed_after >= 3
    expect()(page.get_by_test_id("job-status")).to_have_text("completed", timeout=300_000)
    with httpx.Client(base_url=up.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as me:
        total = call(me, "GET", f"/api/jobs/{job_id}")["job"]["total_steps"]
    # Every step once: nothing lost while offline, nothing doubled by the replay.
    expect()(chart).to_have_attribute("data-points", str(total), timeout=30_000)


def test_a_failed_job_shows_its_reason(up, page, tmp_path):
    sign_in(page, up)
    token = up.sign_in_url.split("#token=", 1)[1]
    # A model directory with config and tokenizer but no weights passes the launch checks; training cannot load it.
    weightless = up.home / "models" / "weightless-model"
    shutil.copytree(up.home / "models" / "tiny-llama", weightless, ignore=shutil.ignore_patterns("*.safetensors"),
                    dirs_exist_ok=True)
    with httpx.Client(base_url=up.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as me:
        path = write_demo_dataset(tmp_path / "fails.jsonl", conversations=16)
        dataset = wait_dataset(me, upload_dataset(me, path, "fails")["id"])
        job = {"dataset_id": dataset["id"], "preset_id": "custom", "gpu_config": {"type": "CPU", "count": 1},
               "hyperparameters": {"learning_rate": 0.0001, "batch_size": 4, "epochs": 1, "rank": 8, "alpha": 16,
                                   "base_model": str(weightless)}}
        job_id = call(me, "POST", "/api/jobs", json=job)["job"]["id"]
    page.goto(f"{up.url}/training/jobs/{job_id}")
    expect()(page.get_by_test_id("job-status")).to_have_text("failed", timeout=120_000)
    expect()(page.get_by_test_id("failure-reason")).to_contain_text("weightless-model")
    expect()(page.get_by_role("button", name="Cancel job")).to_have_count(0)
    shot(page, "17-monitor-failed")
