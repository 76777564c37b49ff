// Monitoring: the fleet's health (GET /fleet/health: devices by status, the month's loss,
// the devices at risk with their reasons, the failures forecast), the remediation rules'
// alerts with their lifecycle (GET /alerts; acknowledge and resolve for operators), and the
// parts of a device's page that say what is wrong with it and what was done about it.
import { ApiError, get, post } from "../api";
import { card, h, link, table, time } from "../dom";
import type { Context, Page } from "../main";
import type { Alert, DeviceHealth, FleetHealth, Forecast } from "../types";

const deviceLink = (id: string) => link(`#/devices/${encodeURIComponent(id)}`, id);

// "3d 4h", "25m": a span in seconds, to the two largest units.
export function span(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return "never";
  if (s <= 0) return "now";
  const units: [string, number][] = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]];
  const parts: string[] = [];
  let left = Math.round(s);
  for (const [u, n] of units) {
    if (left >= n && parts.length < 2) {
      parts.push(`${Math.floor(left / n)}${u}`);
      left %= n;
    }
  }
  return parts.join(" ") || "now";
}

function status(d: DeviceHealth): HTMLElement {
  return h("span", { class: `health ${d.status}` }, d.status);
}

function forecastRows(forecasts: Forecast[], withDevice: boolean): HTMLElement {
  const head = ["Resource", "Runs out in", "90% interval", "Now", "Limit"];
  return table(
    withDevice ? ["Device", ...head] : head,
    forecasts.map((f) => {
      const row = [
        f.resource,
        span(f.expected_s),
        `${span(f.earliest_s)} – ${span(f.latest_s)}`,
        f.level_now.toPrecision(3),
        f.limit.toPrecision(3),
      ];
      return withDevice ? [deviceLink(f.device ?? ""), ...row] : row;
    }),
    { class: "forecasts" },
  );
}

export function fleetHealthPage(ctx: Context): Page {
  const days = Number(ctx.params.get("days") ?? "30") || 30;
  return {
    title: "Fleet health",
    // Every device's week of series is read and judged: not asked every 5 seconds.
    refreshMs: 30_000,
    async render() {
      const f = await get<FleetHealth>(`/fleet/health?days=${days}&limit=50`);
      return h(
        "div",
        {},
        h(
          "div",
          { class: "cards" },
          card("devices", f.devices),
          card("healthy", f.by_status.healthy),
          card("degraded", f.by_status.degraded, null, true),
          card("critical", f.by_status.critical, null, true),
          card("unknown", f.by_status.unknown),
          card("lost a month", `${(f.loss_rate_per_month * 100).toFixed(1)}%`),
        ),
        h(
          "p",
          { class: "hint", "data-loss": "" },
          `${f.lost} lost (quiet for ${f.lost_after} or more), ${f.lost_last_30_days} of them within the last 30 days` +
            (f.unreadable ? `; ${f.unreadable} whose data could not be read` : "") + ".",
        ),
        h("h2", {}, `At risk (${f.at_risk_total})`),
        f.at_risk.length === 0
          ? h("p", {}, "Every device is healthy.")
          : table(
              ["Device", "Type", "Status", "Score", "Reasons"],
              f.at_risk.map((d) => [
                deviceLink(d.device),
                d.device_type,
                status(d),
                d.score,
                d.reasons.map((r) => `${r.kind}: ${r.text}`).join("; "),
              ]),
              { class: "at-risk" },
            ),
        f.at_risk_total > f.at_risk.length ? h("p", { class: "hint" }, `The lowest ${f.at_risk.length} scores; drover health fleet --limit N lists more.`) : "",
        h("h2", {}, `Forecast to run out within ${f.days} days (${f.predicted_total})`),
        f.predicted_failures.length === 0 ? h("p", {}, "Nothing.") : forecastRows(f.predicted_failures, true),
      );
    },
  };
}

// Acknowledge and resolve, for operators, on an alert not resolved yet; a refused action's
// message goes to `message`.
function alertActions(ctx: Context, a: Alert, message: HTMLElement): HTMLElement | string {
  if (!ctx.can("operator") || a.state === "resolved") return "";
  const act = (verb: "acknowledge" | "resolve") => async () => {
    try {
      let body: unknown = {};
      if (verb === "resolve") {
        const note = window.prompt(`Resolve ${a.id}: what was done? (optional)`, "");
        if (note === null) return;
        body = note ? { note } : {};
      }
      await post(`/alerts/${encodeURIComponent(a.id)}/${verb}`, body);
      message.textContent = "";
    } catch (e) {
      message.textContent = `${verb}: ${e instanceof Error ? e.message : String(e)}`;
    }
    ctx.refresh();
  };
  return h(
    "span",
    { class: "actions" },
    a.state === "open" ? h("button", { "data-action": "acknowledge", onclick: act("acknowledge") }, "Acknowledge") : "",
    h("button", { "data-action": "resolve", onclick: act("resolve") }, "Resolve"),
  );
}

function who(at: number | null, by: string): string {
  return at ? `${time(at)}${by ? ` by ${by}` : ""}` : "-";
}

// The alerts as a table; null for a server that runs no remediation rules (404).
async function alertTable(ctx: Context, query: string, message: HTMLElement, withDevice: boolean): Promise<HTMLElement | null> {
  let alerts: Alert[];
  try {
    alerts = (await get<{ alerts: Alert[] }>(`/alerts?${query}`)).alerts;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
  if (alerts.length === 0) return h("p", {}, "No alerts.");
  const head = ["Opened", "Rule", "State", "What was seen", "Commands", "Handed to a person", "Acknowledged", "Resolved", ""];
  return table(
    withDevice ? ["Device", ...head] : head,
    alerts.map((a) => {
      const row = [
        time(a.opened_at),
        a.rule,
        h("span", { class: `alert ${a.state}` }, a.state),
        a.summary,
        a.commands.length ? a.commands.join(", ") : "-",
        a.escalated ? a.escalation || "yes" : "-",
        who(a.acknowledged_at, a.acknowledged_by),
        a.resolved_at ? `${who(a.resolved_at, a.resolved_by)}: ${a.resolution}` : "-",
        alertActions(ctx, a, message),
      ];
      return withDevice ? [deviceLink(a.device_id), ...row] : row;
    }),
    { class: "alerts", "data-alerts": "" },
  );
}

const NO_RULES = "This server runs no remediation rules (drover serve --no-remediation).";

export function alertsPage(ctx: Context): Page {
  const all = ctx.params.get("state") === "all";
  const message = h("p", { class: "error", role: "alert" });
  return {
    title: "Alerts",
    controls: h(
      "div",
      {},
      h("p", { class: "hint" }, all ? link("#/alerts", "Show the unresolved only") : link("#/alerts?state=all", "Show resolved ones too")),
      message,
    ),
    async render() {
      const alerts = await alertTable(ctx, `state=${all ? "all" : "unresolved"}&limit=100`, message, true);
      return alerts ?? h("p", {}, NO_RULES);
    },
  };
}

// A part of a page that says why it could not be read instead of failing the page.
async function orSay(part: Promise<HTMLElement>): Promise<HTMLElement> {
  try {
    return await part;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) throw e;
    return h("p", { class: "error" }, `Could not be read: ${e instanceof Error ? e.message : String(e)}`);
  }
}

async function healthOf(path: string): Promise<HTMLElement> {
  const d = await get<DeviceHealth>(`/devices/${path}/health`);
  return h(
    "div",
    {},
    h("p", { "data-health": d.status }, status(d), ` — score ${d.score} of 100`),
    d.reasons.length
      ? table(
          ["Reason", "Severity", "Points", "What"],
          d.reasons.map((r) => [r.kind, r.severity, r.points, r.text]),
          { class: "reasons" },
        )
      : "",
    d.forecasts.length ? forecastRows(d.forecasts, false) : "",
  );
}

// A device's health and its remediation history, for its page: each part says so when it
// cannot be read, and the rest of the page still shows.
export async function deviceHealth(ctx: Context, id: string, message: HTMLElement): Promise<HTMLElement> {
  const path = encodeURIComponent(id);
  const [health, alerts] = await Promise.all([
    orSay(healthOf(path)),
    orSay(alertTable(ctx, `device=${path}&state=all&limit=20`, message, false).then((t) => t ?? h("p", {}, NO_RULES))),
  ]);
  return h("section", { class: "device-health" }, h("h2", {}, "Health"), health, h("h2", {}, "Alerts and remediation"), alerts);
}
