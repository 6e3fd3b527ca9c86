import { describe, expect, it, vi } from "vitest";
import { SseParser, SseMessage, streamEvents } from "./sse";

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      c.close();
    },
  });
}

describe("SseParser", () => {
  it("parses events split across chunks, ids, comments and CRLF", () => {
    const p = new SseParser();
    expect(p.push(": keepalive\n\nevent: met")).toEqual([]);
    const out = p.push('ric\r\nid: 7\r\ndata: {"step":7}\r\n\r\nevent: status\ndata: a\ndata: b\n\n');
    expect(out).toEqual([
      { event: "metric", id: "7", data: '{"step":7}' },
      { event: "status", id: "7", data: "a\nb" },
    ]);
  });
});

describe("streamEvents", () => {
  it("sends the bearer token and reconnects with Last-Event-ID after a dropped stream", async () => {
    const calls: Record<string, string>[] = [];
    let done = false;
    const bodies = [
      'event: status\ndata: {"status":"running"}\n\nevent: metric\nid: 3\ndata: {"step":3}\n\n',
      'event: metric\nid: 4\ndata: {"step":4}\n\nevent: status\ndata: {"status":"completed"}\n\n',
    ];
    const fetchImpl = vi.fn(async (_url: string, init: RequestInit) => {
      calls.push(init.headers as Record<string, string>);
      return new Response(streamOf([bodies[calls.length - 1]]), { status: 200 });
    });
    const seen: SseMessage[] = [];
    await streamEvents({
      url: "/api/jobs/j/events",
      token: () => "tok",
      lastEventId: "2",
      signal: new AbortController().signal,
      isDone: () => done,
      fetchImpl: fetchImpl as unknown as typeof fetch,
      sleep: async () => {},
      onMessage: (m) => {
        seen.push(m);
        if (m.event === "status" && JSON.parse(m.data).status === "completed") done = true;
      },
    });
    expect(calls).toHaveLength(2);
    expect(calls[0].Authorization).toBe("Bearer tok");
    expect(calls[0]["Last-Event-ID"]).toBe("2");
    expect(calls[1]["Last-Event-ID"]).toBe("3"); // replay after the last step seen
    expect(seen.filter((m) => m.event === "metric").map((m) => JSON.parse(m.data).step)).toEqual([3, 4]);
  });

  it("retries a network error with backoff, and stops on 401 with the reason", async () => {
    let n = 0;
    const waits: number[] = [];
    const fetchImpl = vi.fn(async () => {
      n += 1;
      if (n === 1) throw new TypeError("network down");
      return new Response(JSON.stringify({ error: "Unauthorized", details: "Token has expired; sign in again" }), {
        status: 401,
      });
    });
    const onUnauthorized = vi.fn();
    await streamEvents({
      url: "/x",
      token: () => "t",
      signal: new AbortController().signal,
      isDone: () => false,
      fetchImpl: fetchImpl as unknown as typeof fetch,
      sleep: async (ms) => void waits.push(ms),
      onMessage: () => {},
      onUnauthorized,
    });
    expect(n).toBe(2);
    expect(waits).toEqual([1000]);
    expect(onUnauthorized).toHaveBeenCalledWith("Token has expired; sign in again");
  });

  it("gives up on a 404 instead of reconnecting", async () => {
    const fetchImpl = vi.fn(async () => new Response('{"error":"Not found"}', { status: 404 }));
    const onFatal = vi.fn();
    await streamEvents({
      url: "/x",
      token: () => "t",
      signal: new AbortController().signal,
      isDone: () => false,
      fetchImpl: fetchImpl as unknown as typeof fetch,
      sleep: async () => {},
      onMessage: () => {},
      onFatal,
    });
    expect(fetchImpl).toHaveBeenCalledTimes(1);
    expect(onFatal).toHaveBeenCalledWith(404, '{"error":"Not found"}');
  });
});
