import { cleanup, fireEvent, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import ModelDetail from "./ModelDetail";

const MODEL_ID = "6f1c1a2e-0000-4000-8000-0000000000a1";
const ok = (data: unknown) => new Response(JSON.stringify({ success: true, data }), { status: 200 });
const MODEL = {
  id: MODEL_ID, user_id: "u", job_id: "j", dataset_id: "d", name: "reverse words LoRA r8", version: "1.0.0",
  description: null, status: "stored", training_summary: {}, configuration: { base_model: "tiny-llama" },
  artifacts: {}, created_at: null, updated_at: null,
  quality_metrics: {
    overall_score: 3, final_training_loss: 1.2,
    smoke_samples: [{ prompt: "hello world", expected: "world hello", completion: "world hello", base_completion: "zzz" }],
  },
};

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function renderPage() {
  render(
    <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>
      <MemoryRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }} initialEntries={[`/models/${MODEL_ID}`]}>
        <Routes>
          <Route path="/models/:id" element={<ModelDetail />} />
        </Routes>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

describe("Model page", () => {
  it("shows the samples stored at training and answers a prompt with and without the adapter", async () => {
    const sent: unknown[] = [];
    vi.stubGlobal("fetch", vi.fn(async (url: string, init?: RequestInit) => {
      if (url === `/api/models/${MODEL_ID}`) return ok({ model: MODEL });
      if (url === `/api/models/${MODEL_ID}/exports`) return ok({ exports: [] });
      if (url === `/api/models/${MODEL_ID}/generate`) {
        sent.push(JSON.parse(String(init?.body)));
        return ok({ model_id: MODEL_ID, results: [{ prompt: "one two", completion: "two one", base_completion: "one one" }] });
      }
      throw new Error(`unexpected ${url}`);
    }));
    renderPage();
    const samples = await screen.findByTestId("smoke-samples");
    expect(within(samples).getAllByRole("row")[1].textContent).toBe("hello worldworld helloworld hellozzz");
    // The samples are shown as a table, not as JSON among the metrics.
    expect(screen.getByTestId("quality-metrics").textContent).not.toContain("smoke");

    fireEvent.change(screen.getByLabelText("Prompt"), { target: { value: "one two" } });
    fireEvent.change(screen.getByLabelText("Max new tokens"), { target: { value: "16" } });
    fireEvent.click(screen.getByLabelText(/Compare with the base model/));
    fireEvent.click(screen.getByRole("button", { name: "Generate" }));
    const answer = await screen.findByTestId("try-it-answer");
    expect(answer.textContent).toContain("two one");
    expect(answer.textContent).toContain("one one");
    expect(sent).toEqual([{ prompts: ["one two"], max_new_tokens: 16, temperature: 0, include_base: true }]);
  });

  it("says which field is wrong, and when no agent is free", async () => {
    const answers = [
      new Response(JSON.stringify({ success: false, error: "Validation error", code: "validation_failed",
                                    details: { temperature: ["Must be from 0 (greedy) to 2, not 3"] } }), { status: 400 }),
      new Response(JSON.stringify({ success: false, code: "no_agent_available", details: null,
                                    error: "No trainer agent is available to generate; try again shortly" }), { status: 503 }),
    ];
    vi.stubGlobal("fetch", vi.fn(async (url: string) => {
      if (url === `/api/models/${MODEL_ID}`) return ok({ model: { ...MODEL, quality_metrics: { smoke_samples: [] } } });
      if (url === `/api/models/${MODEL_ID}/exports`) return ok({ exports: [] });
      return answers.shift()!;
    }));
    renderPage();
    fireEvent.change(await screen.findByLabelText("Prompt"), { target: { value: "hi" } });
    fireEvent.click(screen.getByRole("button", { name: "Generate" }));
    expect((await screen.findByRole("alert")).textContent).toContain("temperature: Must be from 0 (greedy) to 2");
    fireEvent.click(screen.getByRole("button", { name: "Generate" }));
    expect((await screen.findByText(/No trainer agent is available/)).getAttribute("role")).toBe("alert");
    expect(screen.getByText(/the dataset had no validation split/)).toBeTruthy();
  });
});
