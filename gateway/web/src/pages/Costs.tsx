import { useMemo, useState } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { api } from "../api";
import { Empty, ErrorBox, Loading, fmt } from "../components/States";
import { Budget, CostRecord, CostSummary, JobList, jobLabel } from "../types";

const PERIODS = ["week", "month", "quarter", "year", "dates"] as const;
// Records shown before "Show all" (the summary carries at most the newest 1000).
const FIRST_RECORDS = 25;

/** The query of GET /api/costs: a named period, or start_date..end_date (whole UTC days) once both are set. */
export function costsQuery(period: string, start: string, end: string): string | null {
  if (period !== "dates") return `period=${encodeURIComponent(period)}`;
  if (!start || !end) return null;
  return `start_date=${encodeURIComponent(start)}&end_date=${encodeURIComponent(end)}`;
}

/** Newest first; the API sends them oldest first. */
export function newestFirst(records: CostRecord[]): CostRecord[] {
  return [...records].sort((a, b) => (b.recorded_at ?? "").localeCompare(a.recorded_at ?? ""));
}

export default function CostsPage() {
  const [period, setPeriod] = useState<string>("month");
  const [start, setStart] = useState("");
  const [end, setEnd] = useState("");
  const [showAll, setShowAll] = useState(false);
  const query = costsQuery(period, start, end);
  const q = useQuery({
    queryKey: ["costs", query],
    queryFn: () => api<CostSummary>(`/api/costs?${query}`),
    enabled: query !== null,
  });
  const budget = useQuery({ queryKey: ["budget"], queryFn: () => api<Budget>("/api/budget") });
  const jobs = useQuery({ queryKey: ["jobs", "costs"], queryFn: () => api<JobList>("/api/jobs?limit=50") });
  const jobNames = useMemo(
    () => new Map((jobs.data?.jobs ?? []).map((j) => [j.id, jobLabel(j)] as const)),
    [jobs.data],
  );
  const records = useMemo(() => newestFirst(q.data?.records ?? []), [q.data]);
  const shown = showAll ? records : records.slice(0, FIRST_RECORDS);
  const max = Math.max(1e-9, ...(q.data?.by_day.map((d) => d.amount ?? 0) ?? [0]));
  const periodName = q.data?.period === "custom" ? `${start} to ${end}` : `this ${q.data?.period || period}`;
  return (
    <section>
      <h1>Costs</h1>
      <div className="filters">
        <label>
          Period
          <select value={period} onChange={(e) => (setPeriod(e.target.value), setShowAll(false))}>
            {PERIODS.map((p) => (
              <option key={p} value={p}>
                {p === "dates" ? "between dates" : p}
              </option>
            ))}
          </select>
        </label>
        {period === "dates" && (
          <>
            <label>
              From
              <input type="date" value={start} max={end || undefined} onChange={(e) => setStart(e.target.value)} />
            </label>
            <label>
              To (included)
              <input type="date" value={end} min={start || undefined} onChange={(e) => setEnd(e.target.value)} />
            </label>
          </>
        )}
      </div>
      {query === null && <p className="muted">Choose the first and the last day.</p>}
      {query !== null && q.isPending && <Loading what="costs" />}
      {q.isError && <ErrorBox error={q.error} retry={() => q.refetch()} />}
      {q.data && (
        <>
          <dl className="stats">
            <div><dt>Total {periodName}</dt><dd data-testid="cost-total">{fmt.money(q.data.total ?? 0)}</dd></div>
            <div><dt>Cost records</dt><dd data-testid="cost-record-count">{q.data.record_count}</dd></div>
            {budget.data && (
              <>
                <div><dt>Budget ({budget.data.month})</dt><dd>{budget.data.amount == null ? "not set" : fmt.money(budget.data.amount)}</dd></div>
                <div><dt>Spent this month</dt><dd>{fmt.money(budget.data.spent ?? 0)}</dd></div>
                <div><dt>Committed</dt><dd>{fmt.money(budget.data.committed ?? 0)}</dd></div>
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
                    <span className="bar" style={{ width: `${(100 * (d.amount ?? 0)) / max}%` }} />
                    <span className="bar-count">{fmt.money(d.amount ?? 0)}</span>
                  </div>
                ))}
              </div>
            </>
          )}
          <h2>Records</h2>
          {records.length === 0 ? (
            <Empty>No cost records in this period.</Empty>
          ) : (
            <>
              <p className="muted">
                Newest first
                {q.data.record_count > records.length
                  ? `; the newest ${records.length} of ${q.data.record_count} records`
                  : `; ${records.length} record${records.length === 1 ? "" : "s"}`}
                .
              </p>
              <table data-testid="cost-records">
                <thead>
                  <tr><th>Recorded</th><th>Type</th><th>Job</th><th>Amount</th></tr>
                </thead>
                <tbody>
                  {shown.map((r) => (
                    <tr key={r.id}>
                      <td>{fmt.date(r.recorded_at)}</td>
                      <td>{r.cost_type}</td>
                      <td>
                        {r.job_id ? (
                          <Link to={`/training/jobs/${r.job_id}`}>{jobNames.get(r.job_id) ?? r.job_id.slice(0, 8)}</Link>
                        ) : (
                          "—"
                        )}
                      </td>
                      <td>{fmt.money(r.amount)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {records.length > shown.length && (
                <button type="button" onClick={() => setShowAll(true)}>
                  Show all {records.length} records
                </button>
              )}
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
                <td><Link to={`/training/jobs/${j.id}`}>{jobLabel(j)}</Link></td>
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
