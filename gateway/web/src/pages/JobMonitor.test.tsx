import { cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import JobMonitor from "./JobMonitor";

// uPlot needs a real canvas: the charts are stood in for by their point counts.
vi.mock("../components/LineChart", () => ({
  LineChart: ({ testId, x }: { testId?: string; x: number[] }) => <div data-testid={testId} data-points={x.length} />,
}));

const JOB_ID = "6f1c1a2e-0000-4000-8000-0000000000b1";
const MODEL_ID = "6f1c1a2e-0000-4000-8000-0000000000c2";

function job(status: string, extra: Record<string, unknown> = {}) {
  return {
    id: JOB_ID, user_id: "u", dataset_id: "d1", dataset: { id: "d1", name: "reverse words" }, preset_id: "fast",
    status, current_stage: "", progress: status === "completed" ? 100 : 50, current_epoch: 1, total_epochs: 1,
    current_step: 1, total_steps: 2, current_metrics: null, hyperparameters: {}, retry_count: 0,
    gpu_config: { type: "CPU", count: 1, gpu_memory_gb: null, cost_per_gpu_hour: 0 }, current_cost: 0,
    estimated_total_cost: 0.5, final_cost: null, error_message: null, artifact_id: null, queued_at: null,
    started_at: null, completed_at: null, estimated_completion_at: null, attempt_started_at: null,
    queue_wait_seconds: null,
    created_at: "2026-12-01T10:00:00Z", updated_at: `2026-12-01T10:00:0${status === "completed" ? 9 : 1}Z`, ...extra,
  };
}

const point = (step: number) => ({ step, epoch: 1, timestamp: "t", training_loss: 2 - step / 10, validation_loss: null,
  learning_rate: 1e-4, throughput: 10, samples_per_second: 1, perplexity: null });

function stream(text: string): Response {
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new TextEncoder().encode(text));
      c.close();
    },
  });
  return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("Job monitor", () => {
  it("links the trained model named by the stream's completed event, before the job's own record says", async () => {
    const details: string[] = [];
    vi.stubGlobal("fetch", vi.fn(async (url: string) => {
      if (url === `/api/jobs/${JOB_ID}/events`)
        return stream(
          `event: status\ndata: ${JSON.stringify(job("running"))}\n\n` +
            `event: metric\nid: 2\ndata: ${JSON.stringify(point(2))}\n\n` +
            // The status frame can come before the model is linked to the job...
            `event: status\ndata: ${JSON.stringify(job("completed"))}\n\n` +
            // ...the completed event says where it is.
            `event: completed\ndata: ${JSON.stringify({ job_id: JOB_ID, artifact_id: MODEL_ID })}\n\n`,
        );
      if (url === `/api/jobs/${JOB_ID}`) {
        details.push(url);
        // The first read: running; later ones: completed, the model not linked yet.
        const data = { job: job(details.length === 1 ? "running" : "completed"), metrics: [point(1)], cost_records: [] };
        return new Response(JSON.stringify({ success: true, data }), { status: 200 });
      }
      throw new Error(`unexpected ${url}`);
    }));
    const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    render(
      <QueryClientProvider client={client}>
        <MemoryRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }} initialEntries={[`/training/jobs/${JOB_ID}`]}>
          <Routes>
            <Route path="/training/jobs/:id" element={<JobMonitor />} />
          </Routes>
        </MemoryRouter>
      </QueryClientProvider>,
    );
    const link = await screen.findByTestId("model-link", {}, { timeout: 3000 });
    expect(link.getAttribute("href")).toBe(`/models/${MODEL_ID}`);
    expect(screen.getByTestId("job-status").textContent).toBe("completed");
    expect(screen.getByRole("heading", { level: 1 }).textContent).toBe("Training: reverse words");
  });

  it("charts a long run's older metric points, read back page by page before the detail's latest", async () => {
    const pages: string[] = [];
    vi.stubGlobal("fetch", vi.fn(async (url: string) => {
      const ok = (data: unknown) => new Response(JSON.stringify({ success: true, data }), { status: 200 });
      if (url === `/api/jobs/${JOB_ID}`)
        return ok({ job: job("completed"), metrics: [point(5), point(6)], older_metrics_before_step: 5, cost_records: [] });
      if (url.startsWith(`/api/jobs/${JOB_ID}/metrics?`)) {
        pages.push(url);
        const before = Number(new URL(url, "http://x").searchParams.get("before_step"));
        return before === 5
          ? ok({ metrics: [point(3), point(4)], older_before_step: 3 })
          : ok({ metrics: [point(1), point(2)], older_before_step: null });
      }
      throw new Error(`unexpected ${url}`);
    }));
    render(
      <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>
        <MemoryRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }} initialEntries={[`/training/jobs/${JOB_ID}`]}>
          <Routes>
            <Route path="/training/jobs/:id" element={<JobMonitor />} />
          </Routes>
        </MemoryRouter>
      </QueryClientProvider>,
    );
    await vi.waitFor(() => expect(screen.getByTestId("lr-chart").getAttribute("data-points")).toBe("6"), { timeout: 3000 });
    expect(pages).toEqual([
      `/api/jobs/${JOB_ID}/metrics?before_step=5&limit=10000`,
      `/api/jobs/${JOB_ID}/metrics?before_step=3&limit=10000`,
    ]);
  });

  it("says an id that is not one is not found, without offering a retry", async () => {
    vi.stubGlobal("fetch", vi.fn(async () =>
      new Response(JSON.stringify({
        success: false, error: "Validation error", code: "validation_failed",
        details: { id: ["Must be a UUID such as 6f1c1a2e-0000-4000-8000-000000000001, got 'nope'"] },
      }), { status: 400 }),
    ));
    const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    render(
      <QueryClientProvider client={client}>
        <MemoryRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }} initialEntries={["/training/jobs/nope"]}>
          <Routes>
            <Route path="/training/jobs/:id" element={<JobMonitor />} />
          </Routes>
        </MemoryRouter>
      </QueryClientProvider>,
    );
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toMatch(/^Not found: the address's id is not a valid id/);
    expect(screen.queryByRole("button", { name: "Retry" })).toBeNull();
    expect(screen.queryByTestId("job-status")).toBeNull();
  });

  it("shows the warnings its launch came with, and none when opened directly", async () => {
    vi.stubGlobal("fetch", vi.fn(async (url: string) => {
      if (url === `/api/jobs/${JOB_ID}/events`) return stream(`event: status\ndata: ${JSON.stringify(job("queued"))}\n\n`);
      const data = { job: job("queued"), metrics: [], cost_records: [] };
      return new Response(JSON.stringify({ success: true, data }), { status: 200 });
    }));
    const warning = "No trainer agent offered 1x H100 in the last 10 minutes; the job waits in the queue until one does";
    const at = (entry: string | { pathname: string; state: unknown }) => render(
      <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>
        <MemoryRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }} initialEntries={[entry]}>
          <Routes>
            <Route path="/training/jobs/:id" element={<JobMonitor />} />
          </Routes>
        </MemoryRouter>
      </QueryClientProvider>,
    );
    at({ pathname: `/training/jobs/${JOB_ID}`, state: { warnings: [warning] } });
    const shown = await screen.findByTestId("launch-warnings");
    expect(shown.textContent).toContain(warning);
    cleanup();
    at(`/training/jobs/${JOB_ID}`);
    await screen.findByTestId("job-status");
    expect(screen.queryByTestId("launch-warnings")).toBeNull();
  });
});
