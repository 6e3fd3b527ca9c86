import { useState } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { api } from "../api";
import { Empty, ErrorBox, Loading, fmt } from "../components/States";

interface Summary {
  total: number;
  by_type: Record<string, number>;
  by_day: { date: string; amount: number }[];
  period: string;
  record_count: number;
}

export default function CostsPage() {
  const [period, setPeriod] = useState("month");
  const q = useQuery({ queryKey: ["costs", period], queryFn: () => api<Summary>(`/api/costs?period=${period}`) });
  const budget = useQuery({
    queryKey: ["budget"],
    queryFn: () => api<{ amount: number | null; spent: number; committed: number; remaining: number | null; month: string }>("/api/budget"),
  });
  const jobs = useQuery({
    queryKey: ["jobs", "costs"],
    queryFn: () => api<{ jobs: { id: string; dataset_name: string; status: string; current_cost: number; final_cost: number | null; created_at: string }[] }>("/api/jobs?limit=50"),
  });
  const max = Math.max(1e-9, ...(q.data?.by_day.map((d) => d.amount) ?? [0]));
  return (
    <section>
      <h1>Costs</h1>
      <div className="filters">
        <label>
          Period
          <select value={period} onChange={(e) => setPeriod(e.target.value)}>
            {["week", "month", "quarter", "year"].map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </label>
      </div>
      {q.isPending && <Loading what="costs" />}
      {q.isError && <ErrorBox error={q.error} retry={() => q.refetch()} />}
      {q.data && (
        <>
          <dl className="stats">
            <div><dt>Total this {q.data.period || period}</dt><dd data-testid="cost-total">{fmt.money(q.data.total)}</dd></div>
            <div><dt>Cost records</dt><dd>{q.data.record_count}</dd></div>
            {budget.data && (
              <>
                <div><dt>Budget ({budget.data.month})</dt><dd>{budget.data.amount == null ? "not set" : fmt.money(budget.data.amount)}</dd></div>
                <div><dt>Committed</dt><dd>{fmt.money(budget.data.committed)}</dd></div>
              </>
            )}
          </dl>
          <h2>By type</h2>
          {Object.keys(q.data.by_type).length ? (
            <table>
              <tbody>
                {Object.entries(q.data.by_type).map(([t, v]) => (
                  <tr key={t}><th scope="row">{t}</th><td>{fmt.money(v)}</td></tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>No costs in this period.</Empty>
          )}
          {q.data.by_day.length > 0 && (
            <>
              <h2>By day</h2>
              <div className="histogram">
                {q.data.by_day.map((d) => (
                  <div className="bar-row" key={d.date}>
                    <span className="bar-label">{d.date}</span>
                    <span className="bar" style={{ width: `${(100 * d.amount) / max}%` }} />
                    <span className="bar-count">{fmt.money(d.amount)}</span>
                  </div>
                ))}
              </div>
            </>
          )}
        </>
      )}
      <h2>Jobs</h2>
      {jobs.isError && <ErrorBox error={jobs.error} />}
      {jobs.data && (
        <table>
          <thead><tr><th>Job</th><th>Status</th><th>Cost</th><th>Created</th></tr></thead>
          <tbody>
            {jobs.data.jobs.map((j) => (
              <tr key={j.id}>
                <td><Link to={`/training/jobs/${j.id}`}>{j.dataset_name || j.id.slice(0, 8)}</Link></td>
                <td>{j.status}</td>
                <td>{fmt.money(j.final_cost ?? j.current_cost)}</td>
                <td>{fmt.date(j.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
