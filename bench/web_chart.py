"""Render time of the dashboard's loss chart (uPlot) with 10,000 points, in headless Chromium.

    PYTHONPATH=gen .venv/bin/python bench/web_chart.py [--points 10000] [--frames 120]

Draws a 1100x240 two-series chart of N points (what the training monitor
shows at N steps, before its downsampling to 4 points a pixel column), then
appends one point a frame, as live metrics do, timing each setData until its
redraw (uPlot's draw hook, a microtask later) and the frame interval. Uses
gateway/web/node_modules (npm ci) and /usr/bin/chromium; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from playwright.sync_api import sync_playwright

WEB = Path(__file__).resolve().parents[1] / "gateway" / "web" / "node_modules" / "uplot" / "dist"

SCRIPT = """async ([n, frames]) => {
  const el = document.getElementById('c');
  const xs = [], train = [], val = [];
  for (let i = 1; i <= n; i++) { xs.push(i); train.push(3 * Math.exp(-i / 3000) + 0.1 * Math.random());
                                 val.push(i % 500 === 0 ? 3 * Math.exp(-i / 3000) + 0.2 : null); }
  let drawn = 0;
  const opts = { width: 1100, height: 240, scales: { x: { time: false } }, hooks: { draw: [() => { drawn = performance.now(); }] },
                 series: [{}, { stroke: '#2563eb', width: 2 }, { stroke: '#dc2626', spanGaps: true, points: { show: true } }] };
  let t0 = performance.now();
  const u = new uPlot(opts, [xs, train, val], el);
  await Promise.resolve();
  const create = drawn - t0;
  const draws = [], intervals = [];
  let last = performance.now();
  for (let f = 0; f < frames; f++) {
    await new Promise(r => requestAnimationFrame(r));
    const now = performance.now(); intervals.push(now - last); last = now;
    const i = xs.length + 1; xs.push(i); train.push(3 * Math.exp(-i / 3000)); val.push(null);
    t0 = performance.now();
    drawn = 0;
    u.setData([xs, train, val]);
    await Promise.resolve(); await Promise.resolve();  // uPlot commits its redraw in a microtask
    u.ctx.getImageData(0, 0, 1, 1);  // and the canvas work is done
    if (!drawn) throw new Error('no redraw');
    draws.push(performance.now() - t0);
  }
  const sorted = a => [...a].sort((p, q) => p - q);
  const pct = (a, p) => sorted(a)[Math.min(a.length - 1, Math.floor(p / 100 * a.length))];
  return { points: n, create_ms: create, draw_median_ms: pct(draws, 50), draw_p95_ms: pct(draws, 95),
           frame_median_ms: pct(intervals.slice(1), 50), frame_p95_ms: pct(intervals.slice(1), 95) };
}"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=args.chromium, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 400})
        page.set_content('<div id="c"></div>')
        page.add_style_tag(path=str(WEB / "uPlot.min.css"))
        page.add_script_tag(path=str(WEB / "uPlot.iife.min.js"))
        result = page.evaluate(SCRIPT, [args.points, args.frames])
        browser.close()
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    main()
