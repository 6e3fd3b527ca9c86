// The gateway's error body is `{success: false, error, details, code}`: details is
// a string or, for validation errors, `{field: [problems]}` with dotted field
// names; code is a stable machine-readable name (validation_failed, not_found,
// conflict, budget_exceeded, unauthenticated, ...; see gateway/errors.py).

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly details: unknown,
    /** The gateway's `code`; for an answer without one, the code its status stands for. */
    readonly code: string = codeForStatus(status),
  ) {
    super(`${error}${typeof details === "string" && details ? `: ${details}` : ""}`);
    this.name = "ApiError";
  }
}

/** The code the gateway gives an error of this status that names none (gateway/errors.py CODES). */
export function codeForStatus(status: number): string {
  const codes: Record<number, string> = {
    400: "validation_failed",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "idempotency_key_reused",
    429: "resource_exhausted",
    500: "internal",
    503: "unavailable",
  };
  return codes[status] ?? "error";
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

/** True for a 400 about the address's id alone (not a UUID): what it names cannot exist. */
export function isInvalidId(err: unknown): boolean {
  if (!(err instanceof ApiError) || err.code !== "validation_failed") return false;
  const fields = Object.keys(fieldErrors(err));
  return fields.length === 1 && fields[0] === "id";
}

/** True when what was asked for is not there for this user: a 404, or an id that cannot be one. */
export function isNotFound(err: unknown): boolean {
  return err instanceof ApiError && (err.code === "not_found" || isInvalidId(err));
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

/** An error answer's body (`{error, details, code}`) as an ApiError; a body that is not one, as text. */
export function errorFromBody(status: number, body: string): ApiError {
  try {
    const parsed = JSON.parse(body);
    if (parsed && typeof parsed === "object" && typeof parsed.error === "string")
      return new ApiError(status, parsed.error, parsed.details ?? null, parsed.code || codeForStatus(status));
  } catch {
    /* not JSON */
  }
  return new ApiError(status, `HTTP ${status}`, body.slice(0, 200));
}

function money(v: unknown): string {
  return typeof v === "number" ? `$${v.toFixed(2)}` : String(v ?? "?");
}

/** One sentence for a person: what went wrong and, where the code says, what to do. */
export function describeError(err: unknown, action = "This request"): string {
  if (err instanceof ApiError) {
    const detail = typeof err.details === "string" ? err.details : "";
    switch (err.code) {
      case "unauthenticated":
        return `Your session ended: ${detail || err.error}. Sign in again.`;
      case "not_found":
        return "Not found: it does not exist, was deleted, or belongs to another user.";
      case "budget_exceeded": {
        const d = (err.details && typeof err.details === "object" ? err.details : {}) as Record<string, unknown>;
        return "remaining" in d
          ? `Over your monthly budget: this costs about ${money(d.estimated_cost)} and ${money(d.remaining)} of the ` +
              `${money(d.budget)} budget for ${d.month ?? "this month"} remains. Raise the budget or choose a cheaper configuration.`
          : `Over your monthly budget: ${detail || err.error}`;
      }
      case "conflict":
        return `${action} conflicts with the current state: ${detail || err.error}`;
      case "idempotency_key_reused":
        return `${action} was already sent with other values; try again: ${detail || err.error}`;
      case "payload_too_large":
        return `Too large: ${detail || err.error}`;
      case "unavailable":
        return `The service is unavailable right now (${detail || err.error}); try again shortly.`;
      case "resource_exhausted":
        return `Too many requests right now (${detail || err.error}); try again shortly.`;
      case "internal":
        return `Something went wrong on the server (${detail || err.error}).`;
      case "validation_failed":
        if (isInvalidId(err))
          return `Not found: the address's id is not a valid id (${fieldErrors(err).id.join("; ")}).`;
      // fall through
      default: {
        const fields = Object.entries(fieldErrors(err)).map(([f, p]) => `${f}: ${p.join("; ")}`);
        return [err.error, detail, ...fields].filter(Boolean).join(" — ");
      }
    }
  }
  if (err instanceof Error) return err.message;
  return String(err);
}
