import { FormEvent, useEffect, useMemo, useRef, useState } from "react";
import { useNavigate, useSearchParams } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { api, apiWithWarnings, newIdempotencyKey } from "../api";
import { describeError, fieldErrors, mapToFormFields, FieldErrors } from "../errors";
import {
  ConfigForm, FORM_FIELDS, HYPER_FIELDS, Preset, RANGES, formFromPreset, localErrors, toRequest, useDebounced,
} from "../configure";
import { CreatedJob, Dataset, DatasetList, Estimate, GpuType } from "../types";
import { ErrorBox, Loading, fmt } from "../components/States";

export default function ConfigurePage() {
  const [params, setParams] = useSearchParams();
  const datasetId = params.get("datasetId") ?? "";
  const navigate = useNavigate();
  const presets = useQuery({ queryKey: ["presets"], queryFn: () => api<{ presets: Preset[] }>("/api/jobs/presets") });
  const gpus = useQuery({ queryKey: ["gpu-types"], queryFn: () => api<{ gpu_types: GpuType[] }>("/api/gpu-types") });
  const dataset = useQuery({
    queryKey: ["dataset", datasetId],
    queryFn: () => api<{ dataset: Dataset }>(`/api/datasets/${datasetId}`).then((r) => r.dataset),
    enabled: !!datasetId,
  });
  const ready = useQuery({
    queryKey: ["datasets", "ready"],
    queryFn: () => api<DatasetList>("/api/datasets?status=ready&limit=100"),
    enabled: !datasetId,
  });
  const [form, setForm] = useState<ConfigForm | null>(null);
  const [submitErrors, setSubmitErrors] = useState<FieldErrors>({});
  const [submitError, setSubmitError] = useState<string | null>(null);
  const [submitting, setSubmitting] = useState(false);
  const key = useRef(newIdempotencyKey());

  useEffect(() => {
    if (form || !presets.data || !gpus.data) return;
    const first = presets.data.presets.find((p) => p.id === "balanced") ?? presets.data.presets[0];
    const gpu = gpus.data.gpu_types.find((g) => g.type === "CPU") ?? gpus.data.gpu_types[0];
    if (first && gpu) setForm(formFromPreset(first, gpu.type, "1"));
  }, [presets.data, gpus.data, form]);

  const local = useMemo(() => (form ? localErrors(form) : {}), [form]);
  const settled = useDebounced(form, 500);
  const request = settled && datasetId && !Object.keys(localErrors(settled)).length ? toRequest(settled, datasetId) : null;
  const estimate = useQuery({
    queryKey: ["estimate", request],
    queryFn: () => api<Estimate>("/api/jobs/estimate", { method: "POST", json: request }),
    enabled: !!request,
    retry: false,
    placeholderData: (prev) => prev,
  });
  const serverErrors = mapToFormFields({ ...fieldErrors(estimate.error), ...submitErrors }, FORM_FIELDS);
  const errorsFor = (f: string) => [...(local[f] ?? []), ...(local[f] ? [] : serverErrors[f] ?? [])];

  if (presets.isPending || gpus.isPending) return <Loading what="presets and GPU types" />;
  if (presets.isError) return <ErrorBox error={presets.error} />;
  if (gpus.isError) return <ErrorBox error={gpus.error} />;
  if (!datasetId)
    return (
      <section>
        <h1>Configure training</h1>
        <label>
          Dataset
          <select onChange={(e) => setParams({ datasetId: e.target.value })} defaultValue="">
            <option value="" disabled>
              Choose a ready dataset
            </option>
            {ready.data?.datasets.map((d) => (
              <option key={d.id} value={d.id}>
                {d.name}
              </option>
            ))}
          </select>
        </label>
        {ready.data && !ready.data.datasets.length && <p className="empty">No ready dataset yet: upload one first.</p>}
      </section>
    );
  if (dataset.isError) return <ErrorBox error={dataset.error} />;
  if (!form) return <Loading what="form" />;

  const gpu = gpus.data.gpu_types.find((g) => g.type === form.gpu_type);
  const setHyper = (f: string, v: string) => {
    setSubmitErrors({});
    // Edited values are the user's own configuration: custom, with every hyperparameter sent.
    setForm({ ...form, preset_id: "custom", edited: true, hyper: { ...form.hyper, [f]: v } });
  };
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (Object.keys(local).length) return;
    setSubmitting(true);
    setSubmitError(null);
    try {
      const { data: created, warnings } = await apiWithWarnings<CreatedJob>("/api/jobs", {
        method: "POST",
        json: toRequest(form, datasetId),
        headers: { "Idempotency-Key": key.current },
      });
      // The monitor shows what the launch warned about (no agent seen for this GPU, ...).
      navigate(`/training/jobs/${created.job.id}`, { state: { warnings } });
    } catch (err) {
      const fields = fieldErrors(err);
      setSubmitErrors(fields);
      setSubmitError(describeError(err, "Launching"));
      key.current = newIdempotencyKey();
    } finally {
      setSubmitting(false);
    }
  };
  const est = estimate.data;
  return (
    <section>
      <h1>Configure training</h1>
      <p>
        Dataset: <strong>{dataset.data?.name ?? "…"}</strong>{" "}
        {dataset.data && dataset.data.status !== "ready" && (
          <span className="error">(status {dataset.data.status}: only a ready dataset can be trained)</span>
        )}
      </p>
      <form onSubmit={submit} className="configure" noValidate>
        <fieldset className="presets">
          <legend>Preset</legend>
          {presets.data.presets.map((p) => (
            <label key={p.id} className={`preset${form.preset_id === p.id ? " selected" : ""}`} data-testid={`preset-${p.id}`}>
              <input
                type="radio"
                name="preset"
                value={p.id}
                checked={form.preset_id === p.id}
                onChange={() => setForm(formFromPreset(p, form.gpu_type, form.gpu_count))}
              />
              <strong>{p.name}</strong>
              <small>{p.description}</small>
            </label>
          ))}
        </fieldset>
        <fieldset>
          <legend>Hyperparameters</legend>
          <div className="grid">
            {HYPER_FIELDS.map((f) => {
              const r = RANGES[f];
              const errs = errorsFor(f);
              return (
                <div key={f} className="field">
                  <label htmlFor={`f-${f}`}>{r.label}</label>
                  <input
                    id={`f-${f}`}
                    type="number"
                    inputMode="decimal"
                    min={r.min}
                    max={r.max}
                    step={r.step}
                    value={form.hyper[f]}
                    aria-invalid={errs.length > 0}
                    aria-describedby={`h-${f}`}
                    onChange={(e) => setHyper(f, e.target.value)}
                  />
                  <small id={`h-${f}`} className={errs.length ? "error" : "muted"}>
                    {errs.length ? errs.join("; ") : `${r.min} – ${r.max}`}
                  </small>
                </div>
              );
            })}
          </div>
        </fieldset>
        <fieldset>
          <legend>Hardware</legend>
          <div className="grid">
            <div className="field">
              <label htmlFor="f-gpu_type">GPU type</label>
              <select
                id="f-gpu_type"
                value={form.gpu_type}
                onChange={(e) => setForm({ ...form, gpu_type: e.target.value, gpu_count: "1" })}
              >
                {gpus.data.gpu_types.map((g) => (
                  <option key={g.type} value={g.type}>
                    {g.type} — {g.memory_gb} GB, {fmt.money(g.price_per_gpu_hour)}/GPU-hour
                  </option>
                ))}
              </select>
              <small className={errorsFor("gpu_type").length ? "error" : "muted"}>{errorsFor("gpu_type").join("; ")}</small>
            </div>
            <div className="field">
              <label htmlFor="f-gpu_count">GPU count</label>
              <input
                id="f-gpu_count"
                type="number"
                min={1}
                max={gpu?.max_count ?? 8}
                step={1}
                value={form.gpu_count}
                aria-describedby="h-gpu_count"
                aria-invalid={errorsFor("gpu_count").length > 0}
                onChange={(e) => setForm({ ...form, gpu_count: e.target.value })}
              />
              <small id="h-gpu_count" className={errorsFor("gpu_count").length ? "error" : "muted"}>
                {errorsFor("gpu_count").length ? errorsFor("gpu_count").join("; ") : `1 – ${gpu?.max_count ?? "?"}`}
              </small>
            </div>
          </div>
        </fieldset>
        <aside className="card estimate" aria-live="polite" data-testid="estimate">
          <h2>Estimate</h2>
          {estimate.isFetching && <p className="muted">Estimating…</p>}
          {estimate.isError && !Object.keys(fieldErrors(estimate.error)).length && <ErrorBox error={estimate.error} />}
          {serverErrors._form && <p className="error">{serverErrors._form.join("; ")}</p>}
          {est && !estimate.isError && (
            <dl className="stats">
              <div><dt>Estimated cost</dt><dd data-testid="estimated-cost">{fmt.money(est.estimated_cost)}</dd></div>
              <div><dt>Compute</dt><dd>{fmt.money(est.cost_breakdown?.compute)}</dd></div>
              <div><dt>Storage</dt><dd>{fmt.money(est.cost_breakdown?.storage)}</dd></div>
              <div><dt>Hourly rate</dt><dd>{fmt.money(est.hourly_rate)}</dd></div>
              <div><dt>Duration</dt><dd>{fmt.duration(est.estimated_duration_seconds || (est.estimated_duration_hours ?? 0) * 3600)}</dd></div>
              <div><dt>Total steps</dt><dd data-testid="estimated-steps">{est.training_details?.total_steps ?? "—"}</dd></div>
              <div><dt>Memory per GPU</dt><dd>{fmt.num(est.memory_per_gpu_gb, 3)} GB {est.fits_gpu_memory ? "(fits)" : "(does not fit)"}</dd></div>
              <div><dt>Basis</dt><dd>{est.basis}</dd></div>
            </dl>
          )}
          {est?.warnings?.map((w) => (
            <p key={w} className="warning">
              {w}
            </p>
          ))}
        </aside>
        {submitError && (
          <p className="error" role="alert">
            {submitError}
          </p>
        )}
        <button type="submit" className="primary" disabled={submitting || Object.keys(local).length > 0}>
          {submitting ? "Launching…" : "Launch training"}
        </button>
      </form>
    </section>
  );
}
