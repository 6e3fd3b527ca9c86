import { cleanup, fireEvent, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MemoryRouter } from "react-router-dom";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { ExportPanel, Lineage, ServingChecks } from "./ModelLife";
import { Model } from "../types";

const MODEL_ID = "6f1c1a2e-0000-4000-8000-0000000000c2";
const EXPORT_ID = "6f1c1a2e-0000-4000-8000-0000000000e3";

function ok(data: unknown, status = 200): Response {
  return new Response(JSON.stringify({ success: true, data }), { status, headers: { "Content-Type": "application/json" } });
}

function wrap(ui: JSX.Element) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <MemoryRouter>{ui}</MemoryRouter>
    </QueryClientProvider>,
  );
}

const exportOf = (status: string) => ({
  id: EXPORT_ID, artifact_id: MODEL_ID, kind: "merged", status, error: "", created_at: "2026-12-01T10:00:00Z",
  completed_at: null,
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("Model life", () => {
  it("shows the lineage oldest first, ending with this model, each ancestor a link", () => {
    const model = {
      id: MODEL_ID, name: "child", lineage: [
        { id: "g", name: "grandparent", job_id: "j1", created_at: null },
        { id: "p", name: "parent", job_id: "j2", created_at: null },
      ],
    } as unknown as Model;
    wrap(<Lineage model={model} />);
    const items = within(screen.getByTestId("lineage")).getAllByRole("listitem");
    expect(items.map((i) => i.textContent)).toEqual([
      expect.stringContaining("grandparent"), expect.stringContaining("parent"), "child (this model)",
    ]);
    expect(within(items[0]).getByRole("link").getAttribute("href")).toBe("/models/g");
  });

  it("says a model without ancestors was trained from a fresh adapter", () => {
    wrap(<Lineage model={{ id: MODEL_ID, name: "m", lineage: [] } as unknown as Model} />);
    expect(screen.getByTestId("lineage").textContent).toMatch(/fresh adapter/);
  });

  it("lists each serving check with its server, status and reason", () => {
    wrap(
      <ServingChecks checks={[
        { server: "vllm", status: "warning", check: "rank", reason: "start the server with --max-lora-rank 32" },
        { server: "lorax", status: "pass", check: "target_modules", reason: "linear layers" },
      ]} />,
    );
    const rows = within(screen.getByTestId("serving-checks")).getAllByRole("row").slice(1);
    expect(rows.map((r) => r.getAttribute("data-status"))).toEqual(["warning", "pass"]);
    expect(rows[0].textContent).toContain("vLLM");
    expect(rows[0].textContent).toContain("--max-lora-rank 32");
    expect(rows[1].textContent).toContain("target modules");
  });

  it("asks for a merged export, follows it until completed and offers its files", async () => {
    let asked = false;
    let looks = 0;
    const calls: string[] = [];
    vi.stubGlobal("fetch", vi.fn(async (url: string, init?: RequestInit) => {
      calls.push(`${init?.method ?? "GET"} ${url}`);
      if (url === `/api/models/${MODEL_ID}/exports` && init?.method === "POST") {
        asked = true;
        expect(JSON.parse(String(init.body))).toEqual({ kind: "merged" });
        return ok({ export: exportOf("queued") }, 202);
      }
      if (url === `/api/models/${MODEL_ID}/exports`) return ok({ exports: asked ? [exportOf("queued")] : [] });
      if (url === `/api/models/${MODEL_ID}/exports/${EXPORT_ID}`) {
        looks += 1;
        if (looks < 2) return ok({ export: exportOf("running"), download_urls: [], expires_at: null });
        return ok({
          export: exportOf("completed"),
          download_urls: [{ file: "model.safetensors", url: "https://s3/model?sig", size_bytes: 2048 }],
          expires_at: "2026-12-02T10:00:00Z",
        });
      }
      throw new Error(`unexpected ${url}`);
    }));
    wrap(<ExportPanel modelId={MODEL_ID} />);
    const button = await screen.findByRole("button", { name: "Export merged" });
    expect(screen.queryByTestId("export-status")).toBeNull();
    fireEvent.click(button);

    expect((await screen.findByTestId("export-status")).textContent).toMatch(/running|queued/);
    expect((screen.getByRole("button", { name: "Export merged" }) as HTMLButtonElement).disabled).toBe(true);
    const link = await screen.findByRole("link", { name: "model.safetensors" }, { timeout: 5000 });
    expect(link.getAttribute("href")).toBe("https://s3/model?sig");
    expect(screen.getByTestId("export-status").textContent).toContain("completed");
    expect((screen.getByRole("button", { name: "Export merged" }) as HTMLButtonElement).disabled).toBe(false);
    expect(calls.filter((c) => c.startsWith("POST"))).toHaveLength(1);
  });

  it("shows why an export could not be asked for", async () => {
    vi.stubGlobal("fetch", vi.fn(async (url: string, init?: RequestInit) => {
      if (init?.method === "POST")
        return new Response(JSON.stringify({ success: false, error: "Model not found", details: null, code: "not_found" }),
          { status: 404, headers: { "Content-Type": "application/json" } });
      return ok({ exports: [] });
    }));
    wrap(<ExportPanel modelId={MODEL_ID} />);
    fireEvent.click(await screen.findByRole("button", { name: "Export merged" }));
    expect((await screen.findByRole("alert")).textContent).toMatch(/not found/i);
  });
});
