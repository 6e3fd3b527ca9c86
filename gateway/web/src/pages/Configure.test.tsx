import { act, cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import ConfigurePage from "./Configure";

const ok = (data: unknown) => new Response(JSON.stringify({ success: true, data }), { status: 200 });
const PRESET = {
  id: "conservative",
  name: "Conservative",
  description: "safe",
  hyperparameters: { learning_rate: 0.0001, batch_size: 4, epochs: 3, rank: 8, alpha: 16, dropout: 0.05 },
};
const ESTIMATE = {
  estimated_cost: 1.25, cost_breakdown: { compute: 1.0, storage: 0.25 }, estimated_duration_hours: 0.5,
  estimated_duration_seconds: 1800, hourly_rate: 2.5, memory_per_gpu_gb: 3, fits_gpu_memory: true, warnings: [],
  basis: "table", training_details: { total_steps: 42, steps_per_epoch: 14, estimated_throughput_tokens_per_sec: 1 },
};

function setup(launch?: (body: any, headers: Headers) => Response) {
  const estimates: any[] = [];
  const fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
    if (url === "/api/jobs" && init?.method === "POST" && launch)
      return launch(JSON.parse(String(init.body)), new Headers(init.headers));
    if (url === "/api/jobs/presets") return ok({ presets: [PRESET] });
    if (url === "/api/gpu-types") return ok({ gpu_types: [{ type: "CPU", memory_gb: 0, price_per_gpu_hour: 0, max_count: 1 }] });
    if (url.startsWith("/api/datasets/")) return ok({ dataset: { id: "d1", name: "reverse", status: "ready" } });
    if (url === "/api/jobs/estimate") {
      const body = JSON.parse(String(init!.body));
      estimates.push(body);
      if (body.hyperparameters?.rank === 100)
        return new Response(
          JSON.stringify({
            success: false, error: "Validation error", code: "validation_failed",
            details: { "hyperparameters.rank": ["Does not fit the GPU's memory"] },
          }),
          { status: 400 },
        );
      return ok(ESTIMATE);
    }
    throw new Error(`unexpected ${url}`);
  });
  vi.stubGlobal("fetch", fetchMock);
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  render(
    <QueryClientProvider client={client}>
      <MemoryRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }} initialEntries={["/training/configure?datasetId=d1"]}>
        <Routes>
          <Route path="/training/configure" element={<ConfigurePage />} />
          <Route path="/training/jobs/:id" element={<p>monitor page</p>} />
        </Routes>
      </MemoryRouter>
    </QueryClientProvider>,
  );
  return estimates;
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("Configure page", () => {
  it("asks for one estimate per pause in typing and shows its breakdown", async () => {
    const estimates = setup();
    await screen.findByText("$1.25", {}, { timeout: 3000 });
    expect(screen.getByTestId("estimated-steps").textContent).toBe("42");
    expect(estimates).toHaveLength(1);
    // The preset as chosen: its id alone, the server fills in its values.
    expect(estimates[0]).toEqual({ dataset_id: "d1", preset_id: "conservative", gpu_config: { type: "CPU", count: 1 } });
    const epochs = screen.getByLabelText("Epochs");
    for (const v of ["4", "5", "6"]) {
      fireEvent.change(epochs, { target: { value: v } });
      await act(() => new Promise((r) => setTimeout(r, 100)));
    }
    expect(estimates).toHaveLength(1); // still typing: nothing sent
    await waitFor(() => expect(estimates).toHaveLength(2), { timeout: 2000 });
    expect(estimates[1].hyperparameters).toEqual({ learning_rate: 0.0001, batch_size: 4, epochs: 6, rank: 8, alpha: 16, dropout: 0.05 });
    expect(estimates[1].preset_id).toBe("custom"); // an edited preset is a custom configuration
  });

  it("shows a local range error without asking, and the server's error next to its field", async () => {
    const estimates = setup();
    await screen.findByText("$1.25", {}, { timeout: 3000 });
    fireEvent.change(screen.getByLabelText("Learning rate"), { target: { value: "0.5" } });
    expect(screen.getByText(/Must be between 0.00001 and 0.001/)).toBeTruthy();
    expect((screen.getByRole("button", { name: "Launch training" }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.change(screen.getByLabelText("Learning rate"), { target: { value: "0.0001" } });
    fireEvent.change(screen.getByLabelText("LoRA rank"), { target: { value: "100" } });
    const hint = await screen.findByText("Does not fit the GPU's memory", {}, { timeout: 3000 });
    expect(hint.id).toBe("h-rank");
    expect(screen.getByLabelText("LoRA rank").getAttribute("aria-invalid")).toBe("true");
    expect(estimates.every((e) => e.hyperparameters?.learning_rate !== 0.5)).toBe(true);
  });

  it("launches the preset as chosen and opens the monitor of the job the answer's data.job names", async () => {
    const launched: { body: any; key: string | null }[] = [];
    setup((body, headers) => {
      launched.push({ body, key: headers.get("Idempotency-Key") });
      return new Response(
        JSON.stringify({ success: true, data: { job: { id: "6f1c1a2e-0000-4000-8000-0000000000aa", status: "queued" } }, warnings: [] }),
        { status: 201 },
      );
    });
    await screen.findByText("$1.25", {}, { timeout: 3000 });
    fireEvent.click(screen.getByRole("button", { name: "Launch training" }));
    await screen.findByText("monitor page");
    expect(launched).toHaveLength(1);
    expect(launched[0].body).toEqual({ dataset_id: "d1", preset_id: "conservative", gpu_config: { type: "CPU", count: 1 } });
    expect(launched[0].key).toMatch(/\S{8,}/);
  });

  it("says what a refused launch means by its code: over the monthly budget", async () => {
    setup(() =>
      new Response(
        JSON.stringify({
          success: false, error: "The job's estimated cost exceeds what remains of your monthly budget", code: "budget_exceeded",
          details: { estimated_cost: 12.5, remaining: 3, budget: 10, month: "2026-12" },
        }),
        { status: 409 },
      ),
    );
    await screen.findByText("$1.25", {}, { timeout: 3000 });
    fireEvent.click(screen.getByRole("button", { name: "Launch training" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toMatch(/Over your monthly budget: this costs about \$12.50 and \$3.00 of the \$10.00 budget for 2026-12 remains/);
    expect(screen.queryByText("monitor page")).toBeNull();
  });
});
