// A rollout's progress over time as a uPlot chart: finished, succeeded, failed and in flight
// against the clock. The samples are what this tab has seen since it opened the rollout
// (one per refresh, none once the rollout is over and nothing changes; the newest
// MAX_SAMPLES), kept per rollout for the tab's life.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { Progress } from "./types";

interface Series {
  t: number[];
  finished: number[];
  succeeded: number[];
  failed: number[];
  inFlight: number[];
  el: HTMLElement;
  plot: uPlot | null;
}

const charts = new Map<string, Series>();
const MAX_SAMPLES = 5000; // about 7 hours at one sample per 5 s
const FAILED = ["failed", "unhealthy", "rolled_back", "lost", "revert_failed"];

export function progressChart(id: string, p: Progress, over: boolean, now = Date.now()): HTMLElement {
  let s = charts.get(id);
  if (!s) {
    s = { t: [], finished: [], succeeded: [], failed: [], inFlight: [], el: document.createElement("div"), plot: null };
    s.el.className = "chart";
    s.el.dataset.chart = id;
    charts.set(id, s);
  }
  const failed = FAILED.reduce((n, k) => n + (p.states[k] ?? 0), 0);
  const last = s.t.length - 1;
  const same =
    last >= 0 &&
    s.finished[last] === p.finished &&
    s.succeeded[last] === (p.states.succeeded ?? 0) &&
    s.failed[last] === failed &&
    s.inFlight[last] === p.in_flight;
  if (!(over && same)) {
    s.t.push(now / 1000);
    s.finished.push(p.finished);
    s.succeeded.push(p.states.succeeded ?? 0);
    s.failed.push(failed);
    s.inFlight.push(p.in_flight);
    if (s.t.length > MAX_SAMPLES) {
      for (const a of [s.t, s.finished, s.succeeded, s.failed, s.inFlight]) a.splice(0, a.length - MAX_SAMPLES);
    }
  }
  s.el.dataset.samples = String(s.t.length);
  const data: uPlot.AlignedData = [s.t, s.finished, s.succeeded, s.failed, s.inFlight];
  if (s.plot) {
    s.plot.setData(data);
  } else {
    s.plot = new uPlot(
      {
        width: 860,
        height: 260,
        scales: { y: { range: (_u, _min, max) => [0, Math.max(max, p.devices)] } },
        series: [
          {},
          { label: "finished", stroke: "#1f6feb", width: 2 },
          { label: "succeeded", stroke: "#2e7d32", width: 2 },
          { label: "failed", stroke: "#c62828", width: 2 },
          { label: "in flight", stroke: "#b26a00", width: 1, dash: [4, 4] },
        ],
        axes: [{}, { label: "devices" }],
      },
      data,
      s.el,
    );
  }
  return s.el;
}
