import { ReactNode, useState } from "react";
import { describeError, isNotFound } from "../errors";

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function ErrorBox({ error, action, retry }: { error: unknown; action?: string; retry?: () => void }) {
  return (
    <div className="error" role="alert">
      {describeError(error, action)}
      {retry && !isNotFound(error) && (
        <button type="button" className="link" onClick={retry}>
          Retry
        </button>
      )}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

/** A button that asks once more inline before it acts. */
export function ConfirmButton({
  label,
  confirmLabel,
  question,
  onConfirm,
  busy,
  danger = true,
}: {
  label: string;
  confirmLabel: string;
  question: string;
  onConfirm: () => void;
  busy?: boolean;
  danger?: boolean;
}) {
  const [asking, setAsking] = useState(false);
  if (!asking)
    return (
      <button type="button" className={danger ? "danger" : ""} onClick={() => setAsking(true)} disabled={busy}>
        {label}
      </button>
    );
  return (
    <span className="confirm" role="group" aria-label={question}>
      <span>{question}</span>
      <button
        type="button"
        className={danger ? "danger" : ""}
        autoFocus
        onClick={() => {
          setAsking(false);
          onConfirm();
        }}
      >
        {confirmLabel}
      </button>
      <button type="button" onClick={() => setAsking(false)}>
        Keep
      </button>
    </span>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge badge-${status}`}>{status}</span>;
}

export const fmt = {
  money: (v: number | null | undefined) => (v == null ? "—" : `$${v.toFixed(v !== 0 && Math.abs(v) < 0.01 ? 4 : 2)}`),
  num: (v: number | null | undefined, digits = 4) =>
    v == null ? "—" : Number.isInteger(v) ? v.toLocaleString() : Number(v.toPrecision(digits)).toString(),
  bytes: (v: number | null | undefined) => {
    if (v == null) return "—";
    const units = ["B", "KB", "MB", "GB"];
    let n = v;
    let u = 0;
    while (n >= 1024 && u < units.length - 1) (n /= 1024), u++;
    return `${n.toFixed(u ? 1 : 0)} ${units[u]}`;
  },
  date: (v: string | null | undefined) => (v ? new Date(v).toLocaleString() : "—"),
  duration: (seconds: number | null | undefined) => {
    if (seconds == null || !Number.isFinite(seconds)) return "—";
    const s = Math.max(0, Math.round(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return h ? `${h} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
  },
};
