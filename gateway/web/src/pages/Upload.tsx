import { DragEvent, FormEvent, useMemo, useRef, useState } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { api, newIdempotencyKey } from "../api";
import { describeError } from "../errors";
import { putWithProgress } from "../upload";
import { Dataset } from "../types";
import { StatusBadge, fmt } from "../components/States";

type Phase = "choose" | "uploading" | "confirming" | "watching" | "failed";

export default function UploadPage() {
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [phase, setPhase] = useState<Phase>("choose");
  const [progress, setProgress] = useState({ loaded: 0, total: 0 });
  const [error, setError] = useState<string | null>(null);
  const [datasetId, setDatasetId] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  // One key per form content: sending the same file and name again (a double submit, a retry after a
  // dropped answer) gets the same dataset back, with a fresh upload URL, instead of a second one.
  const key = useMemo(newIdempotencyKey, [file, name, description]);

  const watch = useQuery({
    queryKey: ["dataset", datasetId],
    queryFn: () => api<{ dataset: Dataset }>(`/api/datasets/${datasetId}`).then((r) => r.dataset),
    enabled: phase === "watching" && !!datasetId,
    refetchInterval: (q) => (q.state.data && ["ready", "error"].includes(q.state.data.status) ? false : 1000),
  });

  const choose = (f: File | undefined | null) => {
    if (!f) return;
    setFile(f);
    if (!name) setName(f.name.replace(/\.(jsonl|json)$/i, ""));
    setError(null);
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    choose(e.dataTransfer.files?.[0]);
  };
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!file) return;
    setError(null);
    try {
      setPhase("uploading");
      const created = await api<{ dataset: Dataset; uploadUrl: string }>("/api/datasets", {
        method: "POST",
        headers: { "Idempotency-Key": key },
        json: { name, file_name: file.name, file_size: file.size, ...(description ? { description } : {}) },
      });
      setDatasetId(created.dataset.id);
      await putWithProgress(created.uploadUrl, file, (loaded, total) => setProgress({ loaded, total }));
      setPhase("confirming");
      await api(`/api/datasets/${created.dataset.id}/confirm`, { method: "POST" });
      setPhase("watching");
    } catch (err) {
      setError(describeError(err, "The upload"));
      setPhase("failed");
    }
  };
  const percent = progress.total ? Math.round((100 * progress.loaded) / progress.total) : 0;
  const busy = phase === "uploading" || phase === "confirming";
  const d = watch.data;
  return (
    <section>
      <h1>Upload a dataset</h1>
      <p className="muted">
        JSONL, one conversation a line: <code>{'{"conversation_id": "...", "turns": [{"role": "user", "content": "..."}, …]}'}</code>
      </p>
      <form onSubmit={submit} className="stack">
        <div
          className={`dropzone${dragging ? " dragging" : ""}`}
          onDragOver={(e) => {
            e.preventDefault();
            setDragging(true);
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={onDrop}
          data-testid="dropzone"
        >
          <p>{file ? `${file.name} (${fmt.bytes(file.size)})` : "Drag a .jsonl file here, or"}</p>
          <label className="button">
            Choose file
            <input
              ref={input}
              type="file"
              accept=".jsonl,.json,application/json"
              className="visually-hidden"
              onChange={(e) => choose(e.target.files?.[0])}
              aria-label="Dataset file"
            />
          </label>
        </div>
        <label>
          Name
          <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} />
        </label>
        <label>
          Description (optional)
          <input value={description} onChange={(e) => setDescription(e.target.value)} />
        </label>
        <button type="submit" className="primary" disabled={!file || !name || busy || phase === "watching"}>
          Upload
        </button>
      </form>
      {(phase === "uploading" || phase === "confirming" || phase === "watching") && (
        <div className="stack">
          <label>
            Upload progress
            <progress max={100} value={percent} data-testid="upload-progress" />
          </label>
          <span>
            {fmt.bytes(progress.loaded)} of {fmt.bytes(progress.total || file?.size)} ({percent}%)
            {phase === "confirming" && " — confirming…"}
          </span>
        </div>
      )}
      {phase === "watching" && (
        <div className="card" role="status" aria-live="polite" data-testid="upload-status">
          {!d && "Validating…"}
          {d && (
            <>
              Status: <StatusBadge status={d.status} />{" "}
              {d.status === "validating" && "checking every line with the base model's tokenizer…"}
              {d.status === "ready" && `${fmt.num(d.total_training_pairs)} training pairs, ${fmt.num(d.total_tokens)} tokens.`}
              {d.status === "error" && `${d.validation_errors.length} problem(s) found.`}{" "}
              <Link to={`/datasets/${d.id}`}>Open dataset</Link>
              {d.status === "ready" && (
                <>
                  {" · "}
                  <Link to={`/training/configure?datasetId=${d.id}`}>Configure training</Link>
                </>
              )}
            </>
          )}
        </div>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}
