export interface ValidationErrorRow {
  line: number;
  code: string;
  error: string;
  suggestion: string;
}

export interface Dataset {
  id: string;
  name: string;
  description: string | null;
  status: string;
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
  created_at: string;
  validated_at: string | null;
}

export interface MetricPoint {
  step: number;
  epoch: number;
  timestamp: string;
  training_loss: number | null;
  validation_loss: number | null;
  learning_rate: number | null;
  throughput: number | null;
  samples_per_second: number | null;
  perplexity: number | null;
}

export interface Job {
  id: string;
  dataset_id: string;
  dataset_name: string;
  preset_id: string;
  status: string;
  current_stage: string;
  progress: number;
  current_epoch: number;
  total_epochs: number;
  current_step: number;
  total_steps: number;
  current_metrics: Record<string, number | null> | null;
  hyperparameters: Record<string, unknown>;
  gpu_config: { type: string; count: number; cost_per_gpu_hour: number };
  current_cost: number;
  estimated_total_cost: number;
  final_cost: number | null;
  error_message: string | null;
  artifact_id: string | null;
  estimated_completion_at: string | null;
  started_at: string | null;
  completed_at: string | null;
  created_at: string;
  updated_at?: string;
}
