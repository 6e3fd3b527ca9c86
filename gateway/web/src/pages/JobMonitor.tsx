import { useEffect, useMemo, useRef, useState } from "react";
import { Link, useLocation, useParams } from "react-router-dom";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, handleUnauthorized, TERMINAL_JOB } from "../api";
import { getToken } from "../auth";
import { describeError, errorFromBody } from "../errors";
import { streamEvents } from "../sse";
import { mergePoints } from "../downsample";
import { CompletedEvent, Job, JobDetail, MetricPage, MetricPoint, jobLabel } from "../types";
import { ConfirmButton, ErrorBox, Loading, StatusBadge, fmt } from "../components/States";
import { LineChart } from "../components/LineChart";

export default function JobMonitor() {
  const { id } = useParams();
  // Set by the configure page when the launch came with warnings.
  const launchWarnings: string[] = (useLocation().state as { warnings?: string[] } | null)?.warnings ?? [];
  const qc = useQueryClient();
  const completedRef = useRef(false);
  const detail = useQuery({
    queryKey: ["job", id],
    queryFn: () => api<JobDetail>(`/api/jobs/${id}`),
    // After the end, until the model is registered (when the stream's `completed` event did not say already).
    refetchInterval: (q) =>
      q.state.data?.job.status === "completed" && !q.state.data.job.artifact_id && !completedRef.current ? 2000 : false,
  });
  const [job, setJob] = useState<Job | null>(null);
  // From the stream's `completed` event: where the trained adapter is.
  const [completedArtifact, setCompletedArtifact] = useState<string | null>(null);
  const [points, setPoints] = useState<MetricPoint[]>([]);
  const [connection, setConnection] = useState<"open" | "reconnecting" | "closed">("closed");
  const [streamError, setStreamError] = useState<string | null>(null);
  const [cancelError, setCancelError] = useState<string | null>(null);
  const pending = useRef<MetricPoint[]>([]);
  const started = useRef(false);

  useEffect(() => {
    if (!detail.data) return;
    setJob((prev) => (prev && (prev.updated_at ?? "") > (detail.data.job.updated_at ?? "") ? prev : detail.data.job));
    setPoints((prev) => mergePoints(prev, detail.data.metrics));
  }, [detail.data]);

  // The detail carries the latest points; a long run's older ones are read back page by page for the chart.
  const olderBefore = detail.data?.older_metrics_before_step ?? null;
  useEffect(() => {
    if (!olderBefore) return;
    let cancelled = false;
    (async () => {
      let before: number | null = olderBefore;
      while (before && !cancelled) {
        const page: MetricPage = await api<MetricPage>(`/api/jobs/${id}/metrics?before_step=${before}&limit=10000`);
        if (cancelled) return;
        setPoints((prev) => mergePoints(prev, page.metrics));
        before = page.older_before_step;
      }
    })().catch((e) => setStreamError(`Older metric points could not be read: ${describeError(e)}`));
    return () => {
      cancelled = true;
    };
  }, [id, olderBefore]);

  useEffect(() => {
    if (!detail.data || started.current) return;
    started.current = true;
    const initial = detail.data;
    if (TERMINAL_JOB.includes(initial.job.status)) return;
    const abort = new AbortController();
    let done = false;
    const last = initial.metrics.length ? initial.metrics[initial.metrics.length - 1].step : 0;
    // Points arriving faster than frames are drawn in batches.
    const flush = setInterval(() => {
      if (!pending.current.length) return;
      const batch = pending.current;
      pending.current = [];
      setPoints((prev) => mergePoints(prev, batch));
    }, 200);
    streamEvents({
      url: `/api/jobs/${id}/events`,
      token: getToken,
      lastEventId: last ? String(last) : undefined,
      signal: abort.signal,
      isDone: () => done,
      onConnectionChange: setConnection,
      onUnauthorized: handleUnauthorized,
      onFatal: (status, body) => setStreamError(`Live updates stopped: ${describeError(errorFromBody(status, body))}`),
      onMessage: (msg) => {
        if (msg.event === "status") {
          const next = JSON.parse(msg.data) as Job;
          setJob(next);
          if (TERMINAL_JOB.includes(next.status)) {
            done = true;
            qc.invalidateQueries({ queryKey: ["job", id] });
            qc.invalidateQueries({ queryKey: ["notifications"] });
          }
        } else if (msg.event === "metric") {
          pending.current.push(JSON.parse(msg.data));
        } else if (msg.event === "completed") {
          // The last frame: the job's adapter is stored under this model id.
          const completed = JSON.parse(msg.data) as CompletedEvent;
          if (completed.artifact_id) {
            completedRef.current = true;
            setCompletedArtifact(completed.artifact_id);
          }
          qc.invalidateQueries({ queryKey: ["models"] });
        } else if (msg.event === "error") {
          setStreamError(`Live updates stopped: ${describeError(errorFromBody(500, msg.data))}`);
        }
      },
    });
    return () => {
      abort.abort();
      clearInterval(flush);
      started.current = false;
    };
  }, [detail.data, id, qc]);

  const series = useMemo(() => {
    const x = points.map((p) => p.step);
    return {
      x,
      train: points.map((p) => p.training_loss),
      val: points.map((p) => p.validation_loss ?? null),
      lr: points.map((p) => p.learning_rate),
    };
  }, [points]);

  if (detail.isPending) return <Loading what="training job" />;
  if (detail.isError) return <ErrorBox error={detail.error} retry={() => detail.refetch()} />;
  const j = job ?? detail.data.job;
  const artifactId = completedArtifact ?? j.artifact_id ?? detail.data.job.artifact_id;
  const lastPoint = points[points.length - 1];
  const throughput = j.current_metrics?.throughput ?? lastPoint?.throughput;
  const etaSeconds = j.estimated_completion_at ? (Date.parse(j.estimated_completion_at) - Date.now()) / 1000 : null;
  const ended = TERMINAL_JOB.includes(j.status);
  const cancel = async () => {
    setCancelError(null);
    try {
      const r = await api<{ job: Job }>(`/api/jobs/${id}/cancel`, { method: "POST" });
      setJob(r.job);
    } catch (err) {
      setCancelError(describeError(err, "Cancelling"));
    }
  };
  return (
    <section>
      <div className="page-head">
        <h1>Training: {jobLabel(j)}</h1>
        <StatusBadge status={j.status} />
        <span className="muted" data-testid="job-status">{j.status}</span>
      </div>
      {launchWarnings.length > 0 && (
        <div className="notice" role="status" data-testid="launch-warnings">
          Launched with {launchWarnings.length === 1 ? "a warning" : "warnings"}:
          <ul>
            {launchWarnings.map((w) => (
              <li key={w}>{w}</li>
            ))}
          </ul>
        </div>
      )}
      <p className="muted">
        {j.gpu_config.count}× {j.gpu_config.type} · preset {j.preset_id} · live updates:{" "}
        <span data-testid="connection">{ended ? "finished" : connection}</span>
      </p>
      <div className="progress-block">
        <label htmlFor="job-progress">
          Progress: step {j.current_step} of {j.total_steps || "?"}, epoch {j.current_epoch} of {j.total_epochs}
          {j.current_stage ? ` (${j.current_stage})` : ""}
        </label>
        <progress id="job-progress" max={100} value={j.progress ?? 0} data-testid="job-progress" />
        <span>{Math.round(j.progress ?? 0)}%</span>
      </div>
      <dl className="stats">
        <div><dt>ETA</dt><dd>{ended ? "—" : fmt.duration(etaSeconds)}</dd></div>
        <div><dt>Cost so far</dt><dd data-testid="cost-so-far">{fmt.money(j.final_cost ?? j.current_cost)}</dd></div>
        <div><dt>Estimated total</dt><dd>{fmt.money(j.estimated_total_cost)}</dd></div>
        <div><dt>Throughput</dt><dd>{throughput == null ? "—" : `${fmt.num(throughput)} tokens/s`}</dd></div>
        <div><dt>Training loss</dt><dd>{fmt.num(lastPoint?.training_loss)}</dd></div>
        <div><dt>Started</dt><dd>{fmt.date(j.started_at)}</dd></div>
      </dl>
      {j.status === "failed" && (
        <div className="error" role="alert" data-testid="failure-reason">
          Failed: {j.error_message || "no reason recorded"}
        </div>
      )}
      {j.status === "cancelled" && <p role="status">Cancelled{j.error_message ? `: ${j.error_message}` : ""}.</p>}
      {j.status === "completed" &&
        (artifactId ? (
          <p role="status">
            Completed. <Link to={`/models/${artifactId}`} data-testid="model-link">Open the trained model</Link>
          </p>
        ) : (
          <p role="status">Completed; registering the model…</p>
        ))}
      {!ended && (
        <ConfirmButton label="Cancel job" confirmLabel="Cancel training" question="Stop this training job? Charges so far stay." onConfirm={cancel} />
      )}
      {cancelError && <p className="error" role="alert">{cancelError}</p>}
      {streamError && <p className="error" role="alert">{streamError}</p>}
      <LineChart
        title="Loss"
        testId="loss-chart"
        x={series.x}
        series={[
          { label: "training loss", color: "#2563eb", y: series.train },
          { label: "validation loss", color: "#dc2626", y: series.val, points: true },
        ]}
      />
      <LineChart title="Learning rate" testId="lr-chart" x={series.x} series={[{ label: "learning rate", color: "#059669", y: series.lr }]} />
    </section>
  );
}
