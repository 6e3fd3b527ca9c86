import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MemoryRouter } from "react-router-dom";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import CostsPage from "./Costs";

const ok = (data: unknown) => new Response(JSON.stringify({ success: true, data }), { status: 200 });
const JOB = "6f1c1a2e-0000-4000-8000-0000000000d1";
const record = (id: string, cost_type: string, amount: number, recorded_at: string) => ({
  id, user_id: "u", job_id: JOB, cost_type, amount, details: {}, billing_period: "2026-12-01", recorded_at,
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("Costs page", () => {
  it("shows the records the total sums, newest first, and asks for a range of days", async () => {
    const asked: string[] = [];
    vi.stubGlobal("fetch", vi.fn(async (url: string) => {
      if (url.startsWith("/api/costs?")) {
        asked.push(url);
        const records = [record("r1", "compute", 0.25, "2026-12-01T10:00:00Z"), record("r2", "storage", 0.5, "2026-12-01T11:00:00Z")];
        return ok({ total: 0.75, by_type: { compute: 0.25, storage: 0.5 }, by_day: [{ date: "2026-12-01", amount: 0.75 }],
                    period: url.includes("start_date") ? "custom" : "month", record_count: 2, records });
      }
      if (url === "/api/budget") return ok({ amount: null, month: "2026-12", spent: 0.75, committed: 0, remaining: null });
      if (url === "/api/jobs?limit=50")
        return ok({ jobs: [{ id: JOB, dataset: { id: "d", name: "reverse words" }, status: "completed", current_cost: 0.25,
                             final_cost: 0.25, created_at: null }], pagination: { page: 1, limit: 50, total: 1, totalPages: 1 } });
      throw new Error(`unexpected ${url}`);
    }));
    render(
      <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>
        <MemoryRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }}>
          <CostsPage />
        </MemoryRouter>
      </QueryClientProvider>,
    );
    const table = await screen.findByTestId("cost-records");
    await waitFor(() => expect(within(table).getAllByRole("link", { name: "reverse words" })).toHaveLength(2));
    const rows = within(table).getAllByRole("row").slice(1);
    expect(rows.map((r) => r.children[1].textContent)).toEqual(["storage", "compute"]);
    expect(rows[0].children[3].textContent).toBe("$0.50");
    expect(screen.getByTestId("cost-total").textContent).toBe("$0.75");
    expect(asked).toEqual(["/api/costs?period=month"]);

    fireEvent.change(screen.getByLabelText("Period"), { target: { value: "dates" } });
    fireEvent.change(screen.getByLabelText("From"), { target: { value: "2026-11-01" } });
    expect(asked).toHaveLength(1); // one day alone is not a range
    fireEvent.change(screen.getByLabelText("To (included)"), { target: { value: "2026-11-30" } });
    await waitFor(() => expect(asked).toEqual(["/api/costs?period=month", "/api/costs?start_date=2026-11-01&end_date=2026-11-30"]));
    await screen.findByText("Total 2026-11-01 to 2026-11-30");
  });
});
