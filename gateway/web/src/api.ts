import { ApiError } from "./errors";
import { getToken, signOut } from "./auth";

export const UNAUTHORIZED_EVENT = "brightrun:unauthorized";

/** Called on any 401: forget the token and let the app return to sign-in with the reason. */
export function handleUnauthorized(reason: string): void {
  signOut(reason);
  window.dispatchEvent(new CustomEvent(UNAUTHORIZED_EVENT, { detail: reason }));
}

export async function toApiError(res: Response): Promise<ApiError> {
  let body: { error?: string; details?: unknown; code?: string } = {};
  try {
    body = await res.json();
  } catch {
    /* not JSON */
  }
  return new ApiError(
    res.status,
    body.error || res.statusText || `HTTP ${res.status}`,
    body.details ?? null,
    typeof body.code === "string" && body.code ? body.code : undefined,
  );
}

/** A fresh Idempotency-Key: a retried create with the same key and body answers with the first result. */
export function newIdempotencyKey(): string {
  return typeof crypto !== "undefined" && "randomUUID" in crypto
    ? crypto.randomUUID()
    : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

/** A call to the gateway's API; resolves with `data`, rejects with ApiError. */
export async function api<T = any>(path: string, init: RequestInit & { json?: unknown } = {}): Promise<T> {
  return (await apiWithWarnings<T>(path, init)).data;
}

/** Like `api`, with the `warnings` the gateway sends beside `data` (sentences about a request that succeeded). */
export async function apiWithWarnings<T = any>(
  path: string,
  init: RequestInit & { json?: unknown } = {},
): Promise<{ data: T; warnings: string[] }> {
  const headers = new Headers(init.headers);
  const token = getToken();
  if (token) headers.set("Authorization", `Bearer ${token}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set("Content-Type", "application/json");
    body = JSON.stringify(init.json);
  }
  const res = await fetch(path, { ...init, headers, body });
  if (!res.ok) {
    const err = await toApiError(res);
    if (res.status === 401) handleUnauthorized(typeof err.details === "string" ? err.details : err.error);
    throw err;
  }
  const payload = await res.json();
  return { data: payload.data as T, warnings: Array.isArray(payload.warnings) ? payload.warnings : [] };
}

export const TERMINAL_JOB: readonly string[] = ["completed", "failed", "cancelled"];
