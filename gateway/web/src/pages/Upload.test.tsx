import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MemoryRouter } from "react-router-dom";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import UploadPage from "./Upload";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("Upload page", () => {
  it("sends one Idempotency-Key per form content, so a resubmitted upload gets the same dataset back", async () => {
    const keys: (string | null)[] = [];
    vi.stubGlobal("fetch", vi.fn(async (_url: string, init: RequestInit) => {
      keys.push(new Headers(init.headers).get("Idempotency-Key"));
      const data = { dataset: { id: "6f1c1a2e-0000-4000-8000-0000000000e1" }, uploadUrl: "http://store/upload" };
      return new Response(JSON.stringify({ success: true, data }), { status: 201 });
    }));
    // The dataset is created, then its PUT to the store fails, so the form can be sent again.
    class UnreachableStore {
      upload = {};
      onerror: (() => void) | null = null;
      open() {}
      send() {
        setTimeout(() => this.onerror?.());
      }
    }
    vi.stubGlobal("XMLHttpRequest", UnreachableStore);
    render(
      <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>
        <MemoryRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }}>
          <UploadPage />
        </MemoryRouter>
      </QueryClientProvider>,
    );
    const file = new File(['{"turns": []}\n'], "chats.jsonl", { type: "application/jsonl" });
    fireEvent.change(screen.getByLabelText(/file/i, { selector: "input" }), { target: { files: [file] } });
    const send = () => fireEvent.submit(screen.getByRole("button", { name: /upload/i }).closest("form")!);

    send();
    await waitFor(() => expect(keys).toHaveLength(1));
    await screen.findByRole("alert");
    send();
    await waitFor(() => expect(keys).toHaveLength(2));
    expect(keys[0]).toBeTruthy();
    expect(keys[1]).toBe(keys[0]);

    fireEvent.change(screen.getByDisplayValue("chats"), { target: { value: "chats, renamed" } });
    await screen.findByRole("alert");
    send();
    await waitFor(() => expect(keys).toHaveLength(3));
    expect(keys[2]).not.toBe(keys[0]);
  });
});
