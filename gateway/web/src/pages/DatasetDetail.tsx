import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { useMutation, useQuery } from "@tanstack/react-query";
import { api } from "../api";
import { ApiError, describeError } from "../errors";
import { Dataset } from "../types";
import { ConfirmButton, ErrorBox, Loading, StatusBadge, fmt } from "../components/States";
import { Histogram } from "../components/Histogram";

export function countsByCode(rows: { code: string }[], stored?: Record<string, number> | null): [string, number][] {
  const counts: Record<string, number> = { ...(stored ?? {}) };
  if (!stored) for (const r of rows) counts[r.code] = (counts[r.code] ?? 0) + 1;
  return Object.entries(counts).sort((a, b) => b[1] - a[1]);
}

export default function DatasetDetail() {
  const { id } = useParams();
  const navigate = useNavigate();
  const [deleteError, setDeleteError] = useState<string | null>(null);
  const q = useQuery({
    queryKey: ["dataset", id],
    queryFn: () => api<{ dataset: Dataset }>(`/api/datasets/${id}`).then((r) => r.dataset),
    refetchInterval: (q) => (q.state.data && ["uploading", "validating"].includes(q.state.data.status) ? 1500 : false),
  });
  const del = useMutation({
    mutationFn: () => api(`/api/datasets/${id}`, { method: "DELETE" }),
    onSuccess: () => navigate("/datasets"),
    onError: (err) =>
      setDeleteError(
        err instanceof ApiError && err.status === 409
          ? `This dataset cannot be deleted while a training job uses it (${typeof err.details === "string" ? err.details : err.error}). Cancel or wait for the job, then try again.`
          : describeError(err, "Deleting"),
      ),
  });
  if (q.isPending) return <Loading what="dataset" />;
  if (q.isError) return <ErrorBox error={q.error} retry={() => q.refetch()} />;
  const d = q.data;
  const stats = d.statistics ?? {};
  const errors = d.validation_errors ?? [];
  const counts = countsByCode(errors, stats.error_counts);
  return (
    <section>
      <div className="page-head">
        <h1>{d.name}</h1>
        <StatusBadge status={d.status} />
      </div>
      <p className="muted">
        {d.file_name} · {fmt.bytes(d.file_size)} · uploaded {fmt.date(d.created_at)} · base model{" "}
        <code>{d.base_model || "default"}</code>
      </p>
      <div className="row">
        {d.status === "ready" && (
          <Link className="button primary" to={`/training/configure?datasetId=${d.id}`}>
            Configure training
          </Link>
        )}
        <ConfirmButton
          label="Delete dataset"
          confirmLabel="Delete"
          question={`Delete “${d.name}”?`}
          onConfirm={() => del.mutate()}
          busy={del.isPending}
        />
      </div>
      {deleteError && (
        <p className="error" role="alert">
          {deleteError}
        </p>
      )}
      {(d.status === "validating" || d.status === "uploading") && (
        <p role="status">{d.status === "uploading" ? "Waiting for the upload to be confirmed." : "Validating…"}</p>
      )}
      {d.status === "ready" || d.total_tokens != null ? (
        <>
          <h2>Statistics</h2>
          <dl className="stats" data-testid="dataset-stats">
            <div><dt>Training pairs</dt><dd>{fmt.num(d.total_training_pairs)}</dd></div>
            <div><dt>Validation pairs</dt><dd>{fmt.num(d.total_validation_pairs)}</dd></div>
            <div><dt>Total tokens</dt><dd>{fmt.num(d.total_tokens)}</dd></div>
            <div><dt>Turns per conversation</dt><dd>{fmt.num(d.avg_turns_per_conversation)}</dd></div>
            <div><dt>Tokens per turn</dt><dd>{fmt.num(d.avg_tokens_per_turn)}</dd></div>
            {stats.p50_tokens != null && <div><dt>Median tokens</dt><dd>{fmt.num(stats.p50_tokens)}</dd></div>}
            {stats.p99_tokens != null && <div><dt>p99 tokens</dt><dd>{fmt.num(stats.p99_tokens)}</dd></div>}
            {stats.over_max_seq_length != null && (
              <div><dt>Over max length ({stats.max_seq_length})</dt><dd>{fmt.num(stats.over_max_seq_length)}</dd></div>
            )}
          </dl>
          {Array.isArray(stats.token_histogram) && <Histogram buckets={stats.token_histogram} />}
        </>
      ) : null}
      {d.sample_data && d.sample_data.length > 0 && (
        <>
          <h2>Samples</h2>
          <p className="muted">
            Highlighted text is what the model is trained on (assistant turns); the rest is masked from the loss.
          </p>
          {d.sample_data.map((s, i) => (
            <figure className="sample" key={i}>
              <figcaption>
                Line {s.line} · {s.tokens} tokens, {s.trained_tokens} trained
              </figcaption>
              <pre>
                {(s.segments ?? []).map((seg, j) =>
                  seg.trained ? <mark key={j}>{seg.text}</mark> : <span key={j}>{seg.text}</span>,
                )}
              </pre>
            </figure>
          ))}
        </>
      )}
      {errors.length > 0 && (
        <>
          <h2>Validation errors</h2>
          <ul className="chips" aria-label="Errors per code" data-testid="error-counts">
            {counts.map(([code, n]) => (
              <li key={code}>
                <code>{code}</code>: {n}
              </li>
            ))}
          </ul>
          <table data-testid="validation-errors">
            <thead>
              <tr>
                <th>Line</th>
                <th>Code</th>
                <th>Message</th>
                <th>Suggestion</th>
              </tr>
            </thead>
            <tbody>
              {errors.map((e, i) => (
                <tr key={i}>
                  <td>{e.line}</td>
                  <td><code>{e.code}</code></td>
                  <td>{e.error}</td>
                  <td>{e.suggestion}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
