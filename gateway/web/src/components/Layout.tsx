import { useState } from "react";
import { NavLink, Outlet, useNavigate } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "../api";
import { claims, signOut } from "../auth";
import { fmt } from "./States";
import { NotificationList } from "../types";

function NotificationsBell() {
  const [open, setOpen] = useState(false);
  const qc = useQueryClient();
  const navigate = useNavigate();
  const q = useQuery({
    queryKey: ["notifications"],
    queryFn: () => api<NotificationList>("/api/notifications?limit=20"),
    refetchInterval: 5000,
  });
  const markRead = useMutation({
    mutationFn: (id: string) => api(`/api/notifications/${id}/read`, { method: "PATCH" }),
    onSuccess: () => qc.invalidateQueries({ queryKey: ["notifications"] }),
  });
  const markAll = useMutation({
    mutationFn: () => api("/api/notifications/read-all", { method: "POST" }),
    onSuccess: () => qc.invalidateQueries({ queryKey: ["notifications"] }),
  });
  const unread = q.data?.unread_count ?? 0;
  return (
    <div className="bell">
      <button
        type="button"
        aria-expanded={open}
        aria-controls="notifications-panel"
        aria-label={`Notifications, ${unread} unread`}
        onClick={() => setOpen(!open)}
      >
        <svg aria-hidden="true" width="16" height="16" viewBox="0 0 24 24" fill="currentColor">
          <path d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1z" />
        </svg>{" "}
        <span className="count" data-testid="unread-count">{unread}</span>
      </button>
      {open && (
        <section id="notifications-panel" className="panel" aria-label="Notifications">
          <header>
            <strong>Notifications</strong>
            <button type="button" onClick={() => markAll.mutate()} disabled={!unread || markAll.isPending}>
              Mark all read
            </button>
          </header>
          {q.isError && <p className="error">Could not load notifications.</p>}
          {q.data && !q.data.notifications.length && <p className="muted">Nothing yet.</p>}
          <ul>
            {q.data?.notifications.map((n) => (
              <li key={n.id} className={n.read ? "read" : "unread"} data-testid="notification">
                <div>
                  <strong>{n.title}</strong> <small className="muted">{fmt.date(n.created_at)}</small>
                </div>
                <div>{n.message}</div>
                <div className="row">
                  {n.action_url && (
                    <button
                      type="button"
                      className="link"
                      onClick={() => {
                        setOpen(false);
                        navigate(n.action_url!.replace(/^\/dashboard/, ""));
                      }}
                    >
                      Open
                    </button>
                  )}
                  {!n.read && (
                    <button type="button" onClick={() => markRead.mutate(n.id)} aria-label={`Mark "${n.title}" read`}>
                      Mark read
                    </button>
                  )}
                </div>
              </li>
            ))}
          </ul>
        </section>
      )}
    </div>
  );
}

export function Layout() {
  const navigate = useNavigate();
  const user = claims()?.sub ?? "unknown";
  return (
    <div className="app">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">BrightRun</span>
        <nav aria-label="Main">
          <NavLink to="/datasets">Datasets</NavLink>
          <NavLink to="/training/jobs">Training</NavLink>
          <NavLink to="/models">Models</NavLink>
          <NavLink to="/costs">Costs</NavLink>
        </nav>
        <div className="user">
          <NotificationsBell />
          <span title={user} data-testid="current-user">
            User {user.slice(0, 8)}
          </span>
          <button
            type="button"
            onClick={() => {
              signOut("You signed out.");
              navigate("/signin");
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <main id="main">
        <Outlet />
      </main>
    </div>
  );
}
