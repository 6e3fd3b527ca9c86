import { useState } from "react";
import { Link } from "react-router-dom";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { api } from "../api";
import { Empty, ErrorBox, Loading, fmt } from "../components/States";
import { ModelList } from "../types";

export function Stars({ n }: { n: number | null | undefined }) {
  const stars = Math.max(0, Math.min(5, Math.round(n ?? 0)));
  return (
    <span className="stars" aria-label={`${stars} of 5 stars`} title={`${stars} of 5`}>
      {"★".repeat(stars)}
      {"☆".repeat(5 - stars)}
    </span>
  );
}

export default function ModelsPage() {
  const [sort, setSort] = useState("created");
  const [page, setPage] = useState(1);
  const q = useQuery({
    queryKey: ["models", sort, page],
    queryFn: () => api<ModelList>(`/api/models?sort=${sort}&page=${page}&limit=12`),
    placeholderData: keepPreviousData,
  });
  const pages = Math.max(1, q.data?.pagination.totalPages ?? 1);
  return (
    <section>
      <h1>Models</h1>
      <div className="filters">
        <label>
          Sort by
          <select value={sort} onChange={(e) => (setSort(e.target.value), setPage(1))}>
            <option value="created">Newest</option>
            <option value="quality">Quality</option>
          </select>
        </label>
      </div>
      {q.isPending && <Loading what="models" />}
      {q.isError && <ErrorBox error={q.error} retry={() => q.refetch()} />}
      {q.data && !q.data.models.length && <Empty>No trained models yet: a completed training job registers one.</Empty>}
      <ul className="cards">
        {q.data?.models.map((m) => (
          <li key={m.id} className="card">
            <Link to={`/models/${m.id}`}>
              <strong>{m.name}</strong>
            </Link>
            <div>
              <Stars n={m.quality_metrics?.overall_score} /> {m.quality_metrics?.convergence_quality ?? ""}
            </div>
            <small className="muted">
              {m.dataset.name ? `trained on ${m.dataset.name}` : "dataset deleted"} · final loss{" "}
              {fmt.num(m.quality_metrics?.final_training_loss)} · {fmt.date(m.created_at)}
            </small>
          </li>
        ))}
      </ul>
      {q.data && pages > 1 && (
        <nav className="pager" aria-label="Pages">
          <button type="button" disabled={page <= 1} onClick={() => setPage(page - 1)}>Previous</button>
          <span>Page {page} of {pages}</span>
          <button type="button" disabled={page >= pages} onClick={() => setPage(page + 1)}>Next</button>
        </nav>
      )}
    </section>
  );
}
