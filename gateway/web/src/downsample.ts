// Keeps a chart's cost bounded however long the run: above `target` points,
// each bucket of x keeps its first, min, max and last point, so spikes survive.

export type Series = { x: number[]; y: (number | null)[] };

export function downsample(xs: number[], ys: (number | null)[], target: number): Series {
  const n = xs.length;
  if (n <= target || target < 8) return { x: xs, y: ys };
  const buckets = Math.floor(target / 4);
  const size = n / buckets;
  const x: number[] = [];
  const y: (number | null)[] = [];
  for (let b = 0; b < buckets; b++) {
    const start = Math.floor(b * size);
    const end = Math.min(n, Math.floor((b + 1) * size));
    if (end <= start) continue;
    let minI = -1;
    let maxI = -1;
    for (let i = start; i < end; i++) {
      const v = ys[i];
      if (v == null) continue;
      if (minI < 0 || v < (ys[minI] as number)) minI = i;
      if (maxI < 0 || v > (ys[maxI] as number)) maxI = i;
    }
    const keep = new Set([start, end - 1]);
    if (minI >= 0) keep.add(minI);
    if (maxI >= 0) keep.add(maxI);
    for (const i of [...keep].sort((a, b) => a - b)) {
      x.push(xs[i]);
      y.push(ys[i]);
    }
  }
  return { x, y };
}

/** Metric points by step, deduplicated (a replay after reconnect repeats none) and sorted. */
export function mergePoints<T extends { step: number }>(existing: T[], incoming: T[]): T[] {
  if (!incoming.length) return existing;
  const last = existing.length ? existing[existing.length - 1].step : -Infinity;
  if (incoming.every((p, i) => p.step > (i ? incoming[i - 1].step : last))) return existing.concat(incoming);
  const byStep = new Map<number, T>();
  for (const p of existing) byStep.set(p.step, p);
  for (const p of incoming) byStep.set(p.step, { ...byStep.get(p.step), ...p });
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}
