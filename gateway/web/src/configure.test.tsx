import { act, renderHook } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { formFromPreset, localErrors, toRequest, useDebounced } from "./configure";

const preset = {
  id: "conservative",
  name: "Conservative",
  description: "",
  hyperparameters: { learning_rate: 0.0001, batch_size: 4, epochs: 3, rank: 8, alpha: 16, dropout: 0.05, base_model: "m" },
};

describe("configure form", () => {
  it("fills from a preset; an unedited named preset is sent as its id alone", () => {
    const form = formFromPreset(preset, "CPU", "1");
    expect(localErrors(form)).toEqual({});
    expect(form.hyper).toEqual({ learning_rate: "0.0001", batch_size: "4", epochs: "3", rank: "8", alpha: "16", dropout: "0.05" });
    expect(toRequest(form, "d1")).toEqual({
      dataset_id: "d1",
      preset_id: "conservative",
      gpu_config: { type: "CPU", count: 1 },
    });
  });

  it("sends every hyperparameter once the user edits one, and always for custom", () => {
    const edited = { ...formFromPreset(preset, "CPU", "1"), preset_id: "custom", edited: true };
    edited.hyper = { ...edited.hyper, epochs: "6" };
    expect(toRequest(edited, "d1")).toEqual({
      dataset_id: "d1",
      preset_id: "custom",
      gpu_config: { type: "CPU", count: 1 },
      hyperparameters: { learning_rate: 0.0001, batch_size: 4, epochs: 6, rank: 8, alpha: 16, dropout: 0.05 },
    });
    // custom has no values of its own: its four required fields always travel, even unedited.
    const custom = formFromPreset({ ...preset, id: "custom" }, "CPU", "1");
    expect(toRequest(custom, "d1").hyperparameters).toEqual({
      learning_rate: 0.0001, batch_size: 4, epochs: 3, rank: 8, alpha: 16, dropout: 0.05,
    });
  });

  it("flags empty, non-numeric, out-of-range and fractional values", () => {
    const form = formFromPreset(preset, "CPU", "0");
    form.hyper.learning_rate = "0.5";
    form.hyper.epochs = "";
    form.hyper.rank = "8.5";
    form.hyper.dropout = "abc";
    const errs = localErrors(form);
    expect(errs.learning_rate[0]).toMatch(/between 0.00001 and 0.001|between 1e-5 and 0.001/);
    expect(errs.epochs).toEqual(["Enter a number"]);
    expect(errs.rank).toEqual(["Must be a whole number"]);
    expect(errs.dropout).toEqual(["Enter a number"]);
    expect(errs.gpu_count).toBeDefined();
  });
});

describe("useDebounced", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("settles only after 500 ms without a change", () => {
    const { result, rerender } = renderHook(({ v }) => useDebounced(v, 500), { initialProps: { v: 1 } });
    rerender({ v: 2 });
    act(() => void vi.advanceTimersByTime(300));
    rerender({ v: 3 });
    act(() => void vi.advanceTimersByTime(300));
    expect(result.current).toBe(1); // still typing
    act(() => void vi.advanceTimersByTime(200));
    expect(result.current).toBe(3); // one estimate, for the last value
  });
});
