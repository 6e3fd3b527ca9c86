import { useState } from "react";
import { Link } from "react-router-dom";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { api, TERMINAL_JOB } from "../api";
import { JobList, jobLabel } from "../types";
import { Empty, ErrorBox, Loading, StatusBadge, fmt } from "../components/States";

export default function JobsPage() {
  const [page, setPage] = useState(1);
  const [status, setStatus] = useState("");
  const q = useQuery({
    queryKey: ["jobs", page, status],
    queryFn: () =>
      api<JobList>(`/api/jobs?page=${page}&limit=10${status ? `&status=${status}` : ""}`),
    placeholderData: keepPreviousData,
    refetchInterval: (q) => (q.state.data?.jobs.some((j) => !TERMINAL_JOB.includes(j.status)) ? 3000 : false),
  });
  const pages = Math.max(1, q.data?.pagination.totalPages ?? 1);
  return (
    <section>
      <div className="page-head">
        <h1>Training jobs</h1>
        <Link className="button primary" to="/training/configure">
          New training job
        </Link>
      </div>
      <div className="filters">
        <label>
          Status
          <select value={status} onChange={(e) => (setStatus(e.target.value), setPage(1))}>
            {["", "queued", "initializing", "running", "completed", "failed", "cancelled"].map((s) => (
              <option key={s} value={s}>
                {s || "all"}
              </option>
            ))}
          </select>
        </label>
      </div>
      {q.isPending && <Loading what="jobs" />}
      {q.isError && <ErrorBox error={q.error} retry={() => q.refetch()} />}
      {q.data && !q.data.jobs.length && (
        <Empty>
          No training jobs yet. <Link to="/datasets">Pick a ready dataset</Link> to configure one.
        </Empty>
      )}
      {q.data && q.data.jobs.length > 0 && (
        <>
          <table>
            <thead>
              <tr>
                <th>Dataset</th>
                <th>Status</th>
                <th>Progress</th>
                <th>GPU</th>
                <th>Cost</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {q.data.jobs.map((j) => (
                <tr key={j.id}>
                  <td>
                    <Link to={`/training/jobs/${j.id}`}>{jobLabel(j)}</Link>
                  </td>
                  <td>
                    <StatusBadge status={j.status} />
                  </td>
                  <td>{Math.round(j.progress ?? 0)}%</td>
                  <td>
                    {j.gpu_config.count}× {j.gpu_config.type}
                  </td>
                  <td>{fmt.money(j.final_cost ?? j.current_cost)}</td>
                  <td>{fmt.date(j.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <nav className="pager" aria-label="Pages">
            <button type="button" disabled={page <= 1} onClick={() => setPage(page - 1)}>
              Previous
            </button>
            <span>
              Page {page} of {pages} ({q.data.pagination.total} jobs)
            </span>
            <button type="button" disabled={page >= pages} onClick={() => setPage(page + 1)}>
              Next
            </button>
          </nav>
        </>
      )}
    </section>
  );
}
