import { useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { api } from "../api";
import { DatasetList } from "../types";
import { Empty, ErrorBox, Loading, StatusBadge, fmt } from "../components/States";
import { useDebounced } from "../configure";

const STATUSES = ["", "uploading", "validating", "ready", "error"];

export function DatasetsPage() {
  const [params, setParams] = useSearchParams();
  const status = params.get("status") ?? "";
  const page = Number(params.get("page") ?? "1");
  const [search, setSearch] = useState(params.get("search") ?? "");
  const settledSearch = useDebounced(search, 300);
  const query = new URLSearchParams({ page: String(page), limit: "10" });
  if (status) query.set("status", status);
  if (settledSearch) query.set("search", settledSearch);
  const q = useQuery({
    queryKey: ["datasets", query.toString()],
    queryFn: () => api<DatasetList>(`/api/datasets?${query}`),
    placeholderData: keepPreviousData,
    refetchInterval: (query) =>
      query.state.data?.datasets.some((d) => d.status === "validating" || d.status === "uploading") ? 2000 : false,
  });
  const update = (changes: Record<string, string>) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) v ? next.set(k, v) : next.delete(k);
    setParams(next, { replace: true });
  };
  return (
    <section>
      <div className="page-head">
        <h1>Datasets</h1>
        <Link className="button primary" to="/datasets/upload">
          Upload dataset
        </Link>
      </div>
      <div className="filters">
        <label>
          Status
          <select value={status} onChange={(e) => update({ status: e.target.value, page: "" })}>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s || "all"}
              </option>
            ))}
          </select>
        </label>
        <label>
          Search
          <input type="search" value={search} placeholder="name" onChange={(e) => setSearch(e.target.value)} />
        </label>
      </div>
      {q.isPending && <Loading what="datasets" />}
      {q.isError && <ErrorBox error={q.error} retry={() => q.refetch()} />}
      {q.data && !q.data.datasets.length && (
        <Empty>
          No datasets {status || settledSearch ? "match" : "yet"}. <Link to="/datasets/upload">Upload one</Link>.
        </Empty>
      )}
      {q.data && q.data.datasets.length > 0 && (
        <>
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Status</th>
                <th>Pairs</th>
                <th>Tokens</th>
                <th>Size</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {q.data.datasets.map((d) => (
                <tr key={d.id}>
                  <td>
                    <Link to={`/datasets/${d.id}`}>{d.name}</Link>
                  </td>
                  <td>
                    <StatusBadge status={d.status} />
                  </td>
                  <td>{fmt.num(d.total_training_pairs)}</td>
                  <td>{fmt.num(d.total_tokens)}</td>
                  <td>{fmt.bytes(d.file_size)}</td>
                  <td>{fmt.date(d.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <nav className="pager" aria-label="Pages">
            <button type="button" disabled={page <= 1} onClick={() => update({ page: String(page - 1) })}>
              Previous
            </button>
            <span>
              Page {page} of {Math.max(1, q.data.pagination.totalPages)} ({q.data.pagination.total} datasets)
            </span>
            <button
              type="button"
              disabled={page >= q.data.pagination.totalPages}
              onClick={() => update({ page: String(page + 1) })}
            >
              Next
            </button>
          </nav>
        </>
      )}
    </section>
  );
}
