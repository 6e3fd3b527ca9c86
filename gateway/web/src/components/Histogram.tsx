/** Conversations per token-length bucket, as accessible bars. */
export function Histogram({ buckets }: { buckets: { upper_bound: number | null; count: number }[] }) {
  const max = Math.max(1, ...buckets.map((b) => b.count));
  let lower = 0;
  return (
    <figure className="chart">
      <figcaption>Token length per conversation</figcaption>
      <div className="histogram" data-testid="token-histogram">
        {buckets.map((b) => {
          const label = b.upper_bound == null ? `> ${lower}` : `${lower + (lower ? 1 : 0)}–${b.upper_bound}`;
          if (b.upper_bound != null) lower = b.upper_bound;
          return (
            <div className="bar-row" key={label}>
              <span className="bar-label">{label}</span>
              <span className="bar" style={{ width: `${(100 * b.count) / max}%` }} />
              <span className="bar-count">{b.count}</span>
            </div>
          );
        })}
      </div>
    </figure>
  );
}
