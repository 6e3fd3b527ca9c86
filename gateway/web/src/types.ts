// The HTTP API's shapes, as /openapi.json describes them (gateway/declare.py and
// gateway/routes/*.py declare both the checks and the document). Every answer is
// `{success: true, data}`; `api()` resolves with `data`.

/** Every list's `pagination` (gateway.http.Page.pagination). */
export interface Pagination {
  page: number;
  limit: number;
  total: number;
  totalPages: number;
}

/** A job's or a model's dataset: its name is null once the dataset is deleted. */
export interface DatasetRef {
  id: string;
  name: string | null;
}

export interface ValidationErrorRow {
  line: number;
  code: string;
  error: string;
  suggestion: string;
}

export type DatasetStatus = "uploading" | "validating" | "ready" | "error";

export interface Dataset {
  id: string;
  user_id: string;
  name: string;
  description: string | null;
  format: string;
  status: DatasetStatus;
  file_name: string;
  file_size: number;
  total_training_pairs: number | null;
  total_validation_pairs: number | null;
  total_tokens: number | null;
  avg_turns_per_conversation: number | null;
  avg_tokens_per_turn: number | null;
  training_ready: boolean;
  validation_errors: ValidationErrorRow[];
  sample_data: { line: number; conversation_id: string | null; tokens: number; trained_tokens: number; segments?: { text: string; trained: boolean }[] }[] | null;
  statistics: Record<string, any> | null;
  base_model: string;
  created_at: string | null;
  updated_at: string | null;
  validated_at: string | null;
}

export interface MetricPoint {
  job_id?: string;
  step: number;
  epoch: number;
  timestamp: string;
  training_loss: number | null;
  validation_loss: number | null;
  learning_rate: number | null;
  gradient_norm?: number | null;
  throughput: number | null;
  gpu_utilization?: number | null;
  samples_per_second: number | null;
  perplexity: number | null;
  gpu_memory_gb?: number | null;
}

export type JobStatus = "queued" | "initializing" | "running" | "completed" | "failed" | "cancelled";

export interface Hyperparameters {
  base_model: string;
  learning_rate: number | null;
  batch_size: number | null;
  epochs: number | null;
  rank: number | null;
  alpha: number | null;
  dropout: number | null;
  warmup_steps?: number | null;
  weight_decay?: number | null;
  max_seq_length?: number | null;
  seed?: number | null;
  packing?: boolean;
}

/** A job, the same object from create, get, list, cancel and the event stream's `status` frames. */
export interface Job {
  id: string;
  user_id: string;
  dataset_id: string;
  dataset: DatasetRef;
  preset_id: string;
  status: JobStatus;
  current_stage: string;
  progress: number | null;
  current_epoch: number;
  total_epochs: number;
  current_step: number;
  total_steps: number;
  current_metrics: Record<string, number | null> | null;
  hyperparameters: Hyperparameters;
  gpu_config: { type: string; count: number; gpu_memory_gb: number | null; cost_per_gpu_hour: number | null };
  current_cost: number | null;
  estimated_total_cost: number | null;
  final_cost: number | null;
  error_message: string | null;
  retry_count: number;
  artifact_id: string | null;
  queued_at: string | null;
  started_at: string | null;
  completed_at: string | null;
  estimated_completion_at: string | null;
  attempt_started_at: string | null;
  /** Seconds it waited queued before an agent took it; null until one does. */
  queue_wait_seconds: number | null;
  created_at: string | null;
  updated_at: string | null;
}

export interface CostRecord {
  id: string;
  user_id: string;
  job_id: string | null;
  /** "compute" or "storage" */
  cost_type: string;
  amount: number;
  details: Record<string, unknown> | null;
  /** First day of the billing month, YYYY-MM-DD. */
  billing_period: string;
  recorded_at: string | null;
}

/** GET /api/jobs/{id}: the job's latest metric points; older ones through `older_metrics_before_step`. */
export interface JobDetail {
  job: Job;
  metrics: MetricPoint[];
  /** Set when older points exist: GET /api/jobs/{id}/metrics?before_step= this pages back to them. */
  older_metrics_before_step: number | null;
  cost_records: CostRecord[];
}

/** GET /api/jobs/{id}/metrics?before_step=N: the latest points below N, and where the next page back starts. */
export interface MetricPage {
  metrics: MetricPoint[];
  older_before_step: number | null;
}

/** POST /api/jobs: `{job}` (its `warnings` travel beside `data`). */
export interface CreatedJob {
  job: Job;
}

/** The event stream's last frame: where the trained adapter is. */
export interface CompletedEvent {
  job_id: string;
  artifact_id: string;
}

export interface Model {
  id: string;
  user_id: string;
  job_id: string;
  dataset_id: string;
  name: string;
  version: string;
  description: string | null;
  status: string;
  quality_metrics: Record<string, any> | null;
  training_summary: Record<string, any> | null;
  configuration: Record<string, any> | null;
  artifacts: Record<string, { key: string; size_bytes: number; sha256: string }> | null;
  created_at: string | null;
  updated_at: string | null;
  /** Whether vLLM and LoRAX can serve it, checked when it was recorded. */
  serving?: ServingCheck[];
  /** The model whose adapter its job continued, if any. */
  parent_model_id?: string | null;
  /** Its ancestors, oldest first (GET /api/models/{id} only). */
  lineage?: ModelRef[];
}

export interface ServingCheck {
  server: string;
  status: "pass" | "warning" | "fail";
  check: string;
  reason: string;
}

export interface ModelRef {
  id: string;
  name: string;
  job_id: string;
  created_at: string | null;
}

/** An export of a model (kind "merged"), made by a trainer agent. */
export interface ModelExport {
  id: string;
  artifact_id: string;
  kind: string;
  status: "queued" | "running" | "completed" | "failed";
  error: string;
  created_at: string | null;
  completed_at: string | null;
}

/** GET /api/models/{id}/exports/{export_id}: the export and, once completed, its download URLs. */
export interface ExportDetail {
  export: ModelExport;
  download_urls: { file: string; url: string; size_bytes: number }[];
  expires_at: string | null;
}

/** One answer of POST /api/models/{id}/generate; base_completion only when include_base was asked. */
export interface GenerationResult {
  prompt: string;
  completion: string;
  base_completion?: string;
}

/** POST /api/models/{id}/generate. */
export interface Generation {
  model_id: string;
  results: GenerationResult[];
}

/** A held-out validation conversation the model answered at the end of training (quality_metrics.smoke_samples). */
export interface SmokeSample {
  prompt: string;
  expected: string;
  completion: string;
  base_completion: string;
}

/** A model as GET /api/models lists it: with its dataset. */
export interface ListedModel extends Model {
  dataset: DatasetRef;
}

export interface CostSummary {
  total: number | null;
  by_type: Record<string, number>;
  by_day: { date: string; amount: number | null }[];
  /** The period's name, or "custom" for start_date..end_date. */
  period: string;
  record_count: number;
  /** The records summed, oldest first; at most the newest 1000 (record_count counts them all). */
  records: CostRecord[];
}

export interface Budget {
  amount: number | null;
  month: string;
  spent: number | null;
  committed: number | null;
  remaining: number | null;
}

export interface Notification {
  id: string;
  type: string;
  title: string;
  message: string;
  priority: string;
  read: boolean;
  action_url: string | null;
  metadata?: Record<string, unknown>;
  created_at: string | null;
}

export interface GpuType {
  type: string;
  memory_gb: number | null;
  price_per_gpu_hour: number | null;
  throughput_tokens_per_second?: number | null;
  max_count: number;
}

export interface Estimate {
  estimated_cost: number | null;
  cost_breakdown: { compute: number | null; storage: number | null } | null;
  estimated_duration_hours: number | null;
  estimated_duration_seconds: number | null;
  hourly_rate: number | null;
  training_details: { total_steps: number; steps_per_epoch: number; estimated_throughput_tokens_per_sec: number | null; dataset_name?: string } | null;
  memory_per_gpu_gb: number | null;
  fits_gpu_memory: boolean;
  warnings: string[];
  basis: string;
}

export interface DownloadUrls {
  download_urls: { file: string; url: string; size_bytes: number }[];
  expires_at: string | null;
}

// The lists' `data`.
export interface DatasetList {
  datasets: Dataset[];
  pagination: Pagination;
}
export interface JobList {
  jobs: Job[];
  pagination: Pagination;
}
export interface ModelList {
  models: ListedModel[];
  pagination: Pagination;
}
export interface NotificationList {
  notifications: Notification[];
  unread_count: number;
  pagination: Pagination;
}

/** What a person calls a job: its dataset's name, else the start of its id. */
export function jobLabel(job: Pick<Job, "id" | "dataset">): string {
  return job.dataset?.name || job.id.slice(0, 8);
}
