// The bearer token lives in sessionStorage (gone when the tab closes). `make up`
// prints a URL with it in the fragment, which never reaches a server.
const KEY = "brightrun.token";
const REASON = "brightrun.signin_reason";

export function getToken(): string | null {
  return sessionStorage.getItem(KEY);
}

export function setToken(token: string): void {
  sessionStorage.setItem(KEY, token.trim());
  sessionStorage.removeItem(REASON);
}

export function signOut(reason?: string): void {
  sessionStorage.removeItem(KEY);
  if (reason) sessionStorage.setItem(REASON, reason);
}

export function takeSignInReason(): string | null {
  return sessionStorage.getItem(REASON);
}

/** Takes `#token=...` off the address into sessionStorage; true when it did. */
export function adoptTokenFromFragment(loc: Location = window.location, hist: History = window.history): boolean {
  const params = new URLSearchParams(loc.hash.replace(/^#/, ""));
  const token = params.get("token");
  if (!token) return false;
  setToken(token);
  hist.replaceState(null, "", loc.pathname + loc.search);
  return true;
}

/** The token's claims, unverified (the gateway verifies); null when it is not a JWT. */
export function claims(token: string | null = getToken()): { sub?: string; exp?: number } | null {
  if (!token) return null;
  try {
    const part = token.split(".")[1];
    return JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/")));
  } catch {
    return null;
  }
}
