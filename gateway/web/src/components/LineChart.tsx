import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { downsample } from "../downsample";

/** A y tick that stays readable for a learning rate (2e-4) as for a loss (2.31). */
export function tick(v: number | null): string {
  if (v == null) return "";
  if (v !== 0 && Math.abs(v) < 0.01) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

export interface LineSeries {
  label: string;
  color: string;
  y: (number | null)[];
  points?: boolean;
}

/** A uPlot line chart; redraws at most once a frame, downsampled to ~4 points a pixel column. */
export function LineChart({
  title,
  x,
  series,
  xLabel = "step",
  height = 240,
  testId,
  logY = false,
}: {
  title: string;
  x: number[];
  series: LineSeries[];
  xLabel?: string;
  height?: number;
  testId?: string;
  logY?: boolean;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const frame = useRef(0);
  const latest = useRef({ x, series });
  latest.current = { x, series };

  const dataFor = (width: number): uPlot.AlignedData => {
    const { x: xs, series: ss } = latest.current;
    const target = Math.max(200, Math.floor(width) * 4);
    if (xs.length <= target) return [xs, ...ss.map((s) => s.y)] as uPlot.AlignedData;
    // Downsample on the first series' shape, others sampled at the same x.
    const first = downsample(xs, ss[0].y, target);
    const index = new Map(xs.map((v, i) => [v, i]));
    return [first.x, first.y, ...ss.slice(1).map((s) => first.x.map((v) => s.y[index.get(v)!] ?? null))] as uPlot.AlignedData;
  };

  useEffect(() => {
    const el = box.current!;
    const width = Math.max(280, el.clientWidth);
    const opts: uPlot.Options = {
      width,
      height,
      scales: { x: { time: false }, y: logY ? { distr: 3 } : {} },
      axes: [{ label: xLabel }, { values: (_u, vals) => vals.map(tick), size: 60 }],
      series: [
        { label: xLabel },
        ...latest.current.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          spanGaps: true,
          points: { show: s.points ?? false, size: 6, fill: s.color },
        })),
      ],
      legend: { show: true },
    };
    plot.current = new uPlot(opts, dataFor(width), el);
    const observer = new ResizeObserver(() => {
      const w = Math.max(280, el.clientWidth);
      if (plot.current && Math.abs(plot.current.width - w) > 2) plot.current.setSize({ width: w, height });
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      cancelAnimationFrame(frame.current);
      plot.current?.destroy();
      plot.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [series.length, height, logY]);

  useEffect(() => {
    cancelAnimationFrame(frame.current);
    frame.current = requestAnimationFrame(() => {
      if (plot.current) plot.current.setData(dataFor(plot.current.width));
    });
  }, [x, series]);

  const points = series.length ? series[0].y.filter((v) => v != null).length : 0;
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} data-testid={testId} data-points={points} aria-label={`${title}: ${points} points`} role="img" />
    </figure>
  );
}
