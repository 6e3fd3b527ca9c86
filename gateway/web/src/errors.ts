// The gateway's error body is `{success: false, error, details}`; details is a
// string or, for validation errors, `{field: [problems]}` with dotted field names.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly details: unknown,
  ) {
    super(`${error}${typeof details === "string" && details ? `: ${details}` : ""}`);
    this.name = "ApiError";
  }
}

export type FieldErrors = Record<string, string[]>;

/** The per-field problems of a validation error (400 with a details object), else {}. */
export function fieldErrors(err: unknown): FieldErrors {
  if (!(err instanceof ApiError) || !err.details || typeof err.details !== "object" || Array.isArray(err.details)) {
    return {};
  }
  const out: FieldErrors = {};
  for (const [field, problems] of Object.entries(err.details as Record<string, unknown>)) {
    if (Array.isArray(problems)) out[field] = problems.map(String);
    else if (typeof problems === "string") out[field] = [problems];
  }
  return out;
}

/** Field errors keyed by the form's field names: "hyperparameters.learning_rate" -> "learning_rate",
 * "gpu_config.count" -> "gpu_count"; anything the form has no field for goes under "_form". */
export function mapToFormFields(errors: FieldErrors, formFields: readonly string[]): FieldErrors {
  const out: FieldErrors = {};
  const add = (key: string, problems: string[]) => (out[key] = [...(out[key] ?? []), ...problems]);
  for (const [path, problems] of Object.entries(errors)) {
    const last = path.split(".").pop() ?? path;
    const gpu = path.startsWith("gpu_config.") ? `gpu_${last}` : null;
    if (gpu && formFields.includes(gpu)) add(gpu, problems);
    else if (formFields.includes(last)) add(last, problems);
    else add("_form", problems.map((p) => `${path}: ${p}`));
  }
  return out;
}

/** One sentence for a person: what went wrong and, where the status says, what to do. */
export function describeError(err: unknown, action = "This request"): string {
  if (err instanceof ApiError) {
    const detail = typeof err.details === "string" ? err.details : "";
    switch (err.status) {
      case 401:
        return `Your session ended: ${detail || err.error}. Sign in again.`;
      case 404:
        return "Not found: it does not exist, was deleted, or belongs to another user.";
      case 409:
        return `${action} conflicts with the current state: ${detail || err.error}`;
      case 413:
        return `Too large: ${detail || err.error}`;
      case 503:
        return `The service is unavailable right now (${detail || err.error}); try again shortly.`;
      default: {
        const fields = Object.entries(fieldErrors(err)).map(([f, p]) => `${f}: ${p.join("; ")}`);
        return [err.error, detail, ...fields].filter(Boolean).join(" — ");
      }
    }
  }
  if (err instanceof Error) return err.message;
  return String(err);
}
