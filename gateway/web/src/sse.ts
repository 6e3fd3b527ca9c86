// Server-Sent Events over fetch, so the bearer token travels in the
// Authorization header (EventSource cannot send one). A dropped stream is
// reopened with Last-Event-ID = the last id seen (the job's last metric step),
// and the gateway replays the points after it.

export interface SseMessage {
  event: string;
  data: string;
  id?: string;
}

/** Incremental parser of the text/event-stream format. */
export class SseParser {
  private buffer = "";
  private event = "";
  private data: string[] = [];
  private id: string | undefined;

  push(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const out: SseMessage[] = [];
    let newline: number;
    while ((newline = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, newline);
      const sep = this.buffer.startsWith("\r\n", newline) ? 2 : 1;
      this.buffer = this.buffer.slice(newline + sep);
      if (line === "") {
        if (this.data.length) out.push({ event: this.event || "message", data: this.data.join("\n"), id: this.id });
        this.event = "";
        this.data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") this.event = value;
      else if (field === "data") this.data.push(value);
      else if (field === "id") this.id = value;
    }
    return out;
  }
}

export interface StreamOptions {
  url: string;
  token: () => string | null;
  onMessage: (msg: SseMessage) => void;
  /** True once nothing more will come (the job ended): no reconnect. */
  isDone: () => boolean;
  onUnauthorized?: (reason: string) => void;
  onFatal?: (status: number, body: string) => void;
  onConnectionChange?: (state: "open" | "reconnecting" | "closed") => void;
  lastEventId?: string;
  signal: AbortSignal;
  fetchImpl?: typeof fetch;
  retryMs?: (attempt: number) => number;
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Reads the stream until isDone() or abort, reconnecting with replay; resolves when it stops. */
export async function streamEvents(opts: StreamOptions): Promise<void> {
  const doFetch = opts.fetchImpl ?? fetch.bind(globalThis);
  const sleep = opts.sleep ?? defaultSleep;
  const retryMs = opts.retryMs ?? ((n: number) => Math.min(500 * 2 ** n, 10_000));
  let lastId = opts.lastEventId;
  let failures = 0;
  while (!opts.signal.aborted && !opts.isDone()) {
    const headers: Record<string, string> = { Accept: "text/event-stream" };
    const token = opts.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (lastId) headers["Last-Event-ID"] = lastId;
    try {
      const res = await doFetch(opts.url, { headers, signal: opts.signal, cache: "no-store" });
      if (res.status === 401) {
        let reason = "Unauthorized";
        try {
          const body = await res.json();
          reason = body.details || body.error || reason;
        } catch {
          /* keep the default */
        }
        opts.onUnauthorized?.(reason);
        break;
      }
      if (res.status >= 400 && res.status < 500) {
        opts.onFatal?.(res.status, await res.text());
        break;
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      opts.onConnectionChange?.("open");
      failures = 0;
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      const parser = new SseParser();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const msg of parser.push(decoder.decode(value, { stream: true }))) {
          if (msg.id) lastId = msg.id;
          opts.onMessage(msg);
        }
      }
    } catch (err) {
      if (opts.signal.aborted) break;
      failures += 1;
    }
    if (opts.signal.aborted || opts.isDone()) break;
    opts.onConnectionChange?.("reconnecting");
    await sleep(retryMs(failures));
  }
  opts.onConnectionChange?.("closed");
}
