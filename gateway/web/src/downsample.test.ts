import { describe, expect, it } from "vitest";
import { downsample, mergePoints } from "./downsample";

describe("downsample", () => {
  it("leaves a short series alone", () => {
    const xs = [1, 2, 3];
    expect(downsample(xs, [3, 2, 1], 100)).toEqual({ x: xs, y: [3, 2, 1] });
  });

  it("bounds 10,000 points to the target and keeps the extremes and ends", () => {
    const xs = Array.from({ length: 10_000 }, (_, i) => i + 1);
    const ys = xs.map((x) => 2 + Math.sin(x / 50));
    ys[4321] = 100; // a spike
    ys[7777] = -5; // a dip
    const out = downsample(xs, ys, 1000);
    expect(out.x.length).toBeLessThanOrEqual(1000);
    expect(out.x.length).toBeGreaterThan(500);
    expect(out.y).toContain(100);
    expect(out.y).toContain(-5);
    expect(out.x[0]).toBe(1);
    expect(out.x[out.x.length - 1]).toBe(10_000);
    expect([...out.x].sort((a, b) => a - b)).toEqual(out.x);
  });

  it("skips nulls (steps without a validation loss)", () => {
    const xs = Array.from({ length: 100 }, (_, i) => i);
    const ys = xs.map((x) => (x % 10 === 9 ? x : null));
    const out = downsample(xs, ys, 20);
    expect(out.y.filter((v) => v != null)).toContain(99);
  });
});

describe("mergePoints", () => {
  it("appends newer steps and deduplicates a replay", () => {
    const a = [{ step: 1, v: 1 }, { step: 2, v: 2 }];
    expect(mergePoints(a, [{ step: 3, v: 3 }]).map((p) => p.step)).toEqual([1, 2, 3]);
    const replay = mergePoints(a, [{ step: 2, v: 20 }, { step: 3, v: 3 }]);
    expect(replay.map((p) => p.step)).toEqual([1, 2, 3]);
    expect(replay[1].v).toBe(20);
  });
});
