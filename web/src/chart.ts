// A rollout's progress over time as a uPlot chart: how many of its devices had been offered
// the update, had it, had failed with it and had been sent back, against the clock. The
// figures are the server's (GET /rollouts/{id}/timeline), computed from every deployment's
// first offer and last change, so a page opened late, or after a restart, sees the whole
// rollout; one chart per element, its data replaced at each refresh.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { Timeline, TimelineSeries } from "./types";

// Per element: its plot, and the size of what it shows (the y axis reaches at least that).
const plots = new WeakMap<HTMLElement, { plot: uPlot; devices: number }>();

// Draws `series` of `t` into `el` (made once per page and kept across refreshes).
export function timelineChart(el: HTMLElement, t: Timeline, series: TimelineSeries, devices: number): HTMLElement {
  el.classList.add("chart");
  const last = (a: number[]) => (a.length ? a[a.length - 1] : 0);
  el.dataset.points = String(t.at.length);
  el.dataset.series = series.name;
  el.dataset.offered = String(last(series.offered));
  el.dataset.updated = String(last(series.succeeded));
  el.dataset.failed = String(last(series.failed));
  el.dataset.reverted = String(last(series.reverted));
  el.dataset.size = String(devices);
  const data: uPlot.AlignedData = [t.at.map((ms) => ms / 1000), series.offered, series.succeeded, series.failed, series.reverted];
  const existing = plots.get(el);
  if (existing) {
    existing.devices = devices; // before setData, which asks for the range again
    existing.plot.setData(data);
    return el;
  }
  const held = { plot: null as uPlot | null, devices };
  held.plot = new uPlot(
    {
      width: 860,
      height: 260,
      scales: { y: { range: (_u, _min, max) => [0, Math.max(max, held.devices, 1)] } },
      series: [
        {},
        { label: "offered", stroke: "#1f6feb", width: 2 },
        { label: "updated", stroke: "#2e7d32", width: 2 },
        { label: "failed", stroke: "#c62828", width: 2 },
        { label: "sent back", stroke: "#b26a00", width: 1, dash: [4, 4] },
      ],
      axes: [{}, { label: "devices" }],
    },
    data,
    el,
  );
  plots.set(el, held as { plot: uPlot; devices: number });
  return el;
}
