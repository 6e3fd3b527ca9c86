import { FormEvent, useState } from "react";
import { useLocation, useNavigate } from "react-router-dom";
import { setToken, takeSignInReason } from "../auth";

export function SignIn() {
  const navigate = useNavigate();
  const location = useLocation();
  const [token, setValue] = useState("");
  const reason = takeSignInReason();
  const from = (location.state as { from?: string } | null)?.from ?? "/datasets";
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!token.trim()) return;
    setToken(token.replace(/^Bearer\s+/i, ""));
    navigate(from.startsWith("/signin") ? "/datasets" : from, { replace: true });
  };
  return (
    <main id="main" className="signin">
      <h1>Sign in to BrightRun</h1>
      {reason && (
        <p className="error" role="alert" data-testid="signin-reason">
          {reason}
        </p>
      )}
      <p>
        Open the URL <code>make up</code> prints (it signs you in), or paste a bearer token (
        <code>python -m gateway.token --user &lt;uuid&gt;</code>).
      </p>
      <form onSubmit={submit}>
        <label htmlFor="token">Bearer token</label>
        <textarea id="token" rows={4} value={token} onChange={(e) => setValue(e.target.value)} autoFocus />
        <button type="submit" disabled={!token.trim()}>
          Sign in
        </button>
      </form>
    </main>
  );
}
