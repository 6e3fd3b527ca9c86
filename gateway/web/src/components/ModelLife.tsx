import { useState } from "react";
import { Link } from "react-router-dom";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "../api";
import { describeError } from "../errors";
import { fmt } from "./States";
import { ExportDetail, Model, ModelExport, ServingCheck } from "../types";

/** How often an export still under way is looked at again. */
export const EXPORT_POLL_MS = 2000;

/** The chain of models this one continued from, oldest first, ending with this one. */
export function Lineage({ model }: { model: Model }) {
  const ancestors = model.lineage ?? [];
  if (!ancestors.length) return <p className="muted" data-testid="lineage">Trained from a fresh adapter.</p>;
  return (
    <ol className="lineage" data-testid="lineage">
      {ancestors.map((a) => (
        <li key={a.id}>
          <Link to={`/models/${a.id}`}>{a.name}</Link> <span className="muted">{fmt.date(a.created_at)}</span>
        </li>
      ))}
      <li aria-current="page">{model.name} (this model)</li>
    </ol>
  );
}

/** Whether vLLM and LoRAX can serve the adapter as trained, one row a check. */
export function ServingChecks({ checks }: { checks: ServingCheck[] | undefined }) {
  if (!checks?.length) return <p className="muted">Not checked.</p>;
  return (
    <table data-testid="serving-checks">
      <thead>
        <tr>
          <th>Server</th>
          <th>Check</th>
          <th>Status</th>
          <th>Why</th>
        </tr>
      </thead>
      <tbody>
        {checks.map((c) => (
          <tr key={`${c.server}-${c.check}`} data-status={c.status}>
            <td>{c.server === "vllm" ? "vLLM" : c.server === "lorax" ? "LoRAX" : c.server}</td>
            <td>{c.check.replace(/_/g, " ")}</td>
            <td className={`status-${c.status}`}>{c.status}</td>
            <td>{c.reason}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const settled = (e: ModelExport | undefined) => !e || e.status === "completed" || e.status === "failed";

/** The "Export merged" button, the latest merged export's status and, once completed, its download links. */
export function ExportPanel({ modelId }: { modelId: string }) {
  const client = useQueryClient();
  const [error, setError] = useState<string | null>(null);
  const [asking, setAsking] = useState(false);
  const exports = useQuery({
    queryKey: ["model-exports", modelId],
    queryFn: () => api<{ exports: ModelExport[] }>(`/api/models/${modelId}/exports`).then((r) => r.exports),
  });
  const latest = exports.data?.find((e) => e.kind === "merged");
  const detail = useQuery({
    queryKey: ["model-export", modelId, latest?.id],
    enabled: !!latest,
    queryFn: () => api<ExportDetail>(`/api/models/${modelId}/exports/${latest!.id}`),
    refetchInterval: (q) => (settled(q.state.data?.export) && q.state.data ? false : EXPORT_POLL_MS),
  });
  const current = detail.data?.export ?? latest;
  const busy = asking || (!!current && !settled(current));
  const ask = async () => {
    setError(null);
    setAsking(true);
    try {
      await api(`/api/models/${modelId}/exports`, { method: "POST", json: { kind: "merged" } });
      await client.invalidateQueries({ queryKey: ["model-exports", modelId] });
    } catch (err) {
      setError(describeError(err, "Exporting"));
    } finally {
      setAsking(false);
    }
  };
  return (
    <div data-testid="export-panel">
      <p className="muted">
        The base model with this adapter merged into its weights, as safetensors shards with its config and
        tokenizer: it loads with transformers or vLLM alone, without PEFT.
      </p>
      <button type="button" onClick={ask} disabled={busy}>
        Export merged
      </button>
      {current && (
        <p data-testid="export-status">
          Merged export: <strong>{current.status}</strong>
          {current.error ? ` (${current.error})` : ""}
        </p>
      )}
      {error && <p className="error" role="alert">{error}</p>}
      {detail.data?.download_urls.length ? (
        <ul data-testid="export-files">
          {detail.data.download_urls.map((u) => (
            <li key={u.file}>
              <a href={u.url} download={u.file} rel="noopener">{u.file}</a> <span className="muted">{fmt.bytes(u.size_bytes)}</span>
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
