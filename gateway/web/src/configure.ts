import { useEffect, useState } from "react";

// The job_svc's accepted ranges (services/job_svc/hyperparameters.py); the server stays the judge.
export const RANGES = {
  learning_rate: { min: 1e-5, max: 1e-3, step: 1e-5, label: "Learning rate" },
  batch_size: { min: 1, max: 64, step: 1, label: "Batch size" },
  epochs: { min: 1, max: 20, step: 1, label: "Epochs" },
  rank: { min: 4, max: 128, step: 1, label: "LoRA rank" },
  alpha: { min: 1, max: 1024, step: 1, label: "LoRA alpha" },
  dropout: { min: 0, max: 0.5, step: 0.01, label: "Dropout" },
} as const;

export type HyperField = keyof typeof RANGES;
export const HYPER_FIELDS = Object.keys(RANGES) as HyperField[];
export const FORM_FIELDS = [...HYPER_FIELDS, "gpu_type", "gpu_count"] as const;

export interface ConfigForm {
  preset_id: string;
  /** True once the user changed a hyperparameter: the request then carries them all. */
  edited: boolean;
  hyper: Record<HyperField, string>;
  gpu_type: string;
  gpu_count: string;
}

export interface Preset {
  id: string;
  name: string;
  description: string;
  hyperparameters: Record<string, unknown>;
}

export function formFromPreset(preset: Preset, gpu_type: string, gpu_count: string): ConfigForm {
  const hyper = {} as Record<HyperField, string>;
  for (const f of HYPER_FIELDS) {
    const v = preset.hyperparameters[f];
    hyper[f] = v == null ? "" : String(v);
  }
  return { preset_id: preset.id, edited: false, hyper, gpu_type, gpu_count };
}

/** Problems the browser can see before asking (empty, not a number, out of range). */
export function localErrors(form: ConfigForm): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const f of HYPER_FIELDS) {
    const raw = form.hyper[f].trim();
    const r = RANGES[f];
    const n = Number(raw);
    if (raw === "" || !Number.isFinite(n)) out[f] = ["Enter a number"];
    else if (n < r.min || n > r.max) out[f] = [`Must be between ${r.min} and ${r.max}`];
    else if (r.step === 1 && !Number.isInteger(n)) out[f] = ["Must be a whole number"];
  }
  if (!form.gpu_type) out.gpu_type = ["Choose a GPU type"];
  const count = Number(form.gpu_count);
  if (!Number.isInteger(count) || count < 1) out.gpu_count = ["Must be a whole number of 1 or more"];
  return out;
}

export interface JobRequest {
  dataset_id: string;
  preset_id: string;
  gpu_config: { type: string; count: number };
  hyperparameters?: Record<HyperField, number>;
}

/** The body of /api/jobs/estimate and /api/jobs. A named preset as it is: `{dataset_id, preset_id,
 * gpu_config}` (the server fills in the preset's values). Edited values, or custom (which has none of its
 * own), carry every hyperparameter explicitly. */
export function toRequest(form: ConfigForm, datasetId: string): JobRequest {
  const request: JobRequest = {
    dataset_id: datasetId,
    preset_id: form.preset_id,
    gpu_config: { type: form.gpu_type, count: Number(form.gpu_count) },
  };
  if (form.edited || form.preset_id === "custom") {
    const hyperparameters = {} as Record<HyperField, number>;
    for (const f of HYPER_FIELDS) hyperparameters[f] = Number(form.hyper[f]);
    request.hyperparameters = hyperparameters;
  }
  return request;
}

/** `value`, once it has stayed unchanged for `ms`. */
export function useDebounced<T>(value: T, ms = 500): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return settled;
}
