// The fleet at a glance, from one answer (GET /fleet/summary): devices in service, waiting
// for acceptance, overdue; by state, type, revision, installed version, site and check-in;
// the rollouts under way.
import { get } from "../api";
import { card, h, link, table, time } from "../dom";
import type { Context, Page } from "../main";
import type { FleetSummary, RolloutSummary, Site } from "../types";

const ACTIVE = new Set(["created", "running", "paused", "watching", "rolling_back"]);

// A small table of counts, largest first, each a link to the device list filtered by it
// (when `filter` names a filter of GET /devices).
function breakdown(title: string, counts: Record<string, number>, filter?: string): HTMLElement {
  const rows = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return h(
    "section",
    { class: "breakdown", "data-breakdown": title },
    h("h3", {}, title),
    rows.length === 0
      ? h("p", { class: "hint" }, "none")
      : table(
          [title, "Devices"],
          rows.map(([k, n]) => [
            filter && k ? link(`#/devices?${filter}=${encodeURIComponent(k)}`, k) : k || "(none)",
            n,
          ]),
        ),
  );
}

export function overviewPage(_ctx: Context): Page {
  return {
    title: "Overview",
    async render() {
      const [sum, sites, rollouts] = await Promise.all([
        get<FleetSummary>("/fleet/summary"),
        get<{ sites: Site[] }>("/sites"),
        get<{ rollouts: RolloutSummary[] }>("/rollouts"),
      ]);
      const firmware: Record<string, number> = {};
      for (const [component, versions] of Object.entries(sum.by_installed)) {
        for (const [version, n] of Object.entries(versions)) firmware[`${component}@${version}`] = n;
      }
      const active = rollouts.rollouts.filter((r) => ACTIVE.has(r.state));
      return h(
        "div",
        {},
        h(
          "div",
          { class: "cards" },
          card("devices", sum.devices, "#/devices?decommissioned=false"),
          card("waiting for acceptance", sum.by_enrollment.pending, "#/devices?enrollment=pending&decommissioned=false", true),
          card("rejected", sum.by_enrollment.rejected, "#/devices?enrollment=rejected&decommissioned=false"),
          // No filter finds them: the device list marks each overdue device in red.
          card("overdue", sum.check_ins.overdue, null, true),
          card("decommissioned", sum.decommissioned, "#/devices?decommissioned=true"),
        ),
        h(
          "p",
          { class: "hint", "data-check-ins": "" },
          `Check-ins: ${sum.check_ins.last_hour} within the hour, ${sum.check_ins.last_day} within the day, ` +
            `${sum.check_ins.before} before, ${sum.check_ins.never} not since the server started; ` +
            `${sum.check_ins.overdue} overdue (past the check-in they were told to make by more than a minute).`,
        ),
        h("h2", {}, "Rollouts under way"),
        active.length === 0
          ? h("p", {}, "None.")
          : table(
              ["Rollout", "Name", "Artifact", "State", "Stage", "Targets", "Created"],
              active.map((r) => [link(`#/rollouts/${encodeURIComponent(r.id)}`, r.id), r.name, r.artifact, r.state, r.stage ?? "-", r.targets, time(r.created_at)]),
            ),
        h(
          "div",
          { class: "breakdowns" },
          breakdown("Update state", sum.by_state),
          breakdown("Device type", sum.by_device_type, "device_type"),
          breakdown("Hardware revision", sum.by_hardware_revision, "hardware_revision"),
          breakdown("Installed", firmware),
          breakdown("Connectivity", sum.by_connectivity, "connectivity"),
        ),
        h("h2", {}, "Sites"),
        sites.sites.length === 0
          ? h("p", {}, "No sites yet (drover site put).")
          : table(
              ["Site", "Time zone", "Devices", "Maintenance windows"],
              sites.sites.map((s) => [
                link(`#/devices?site=${encodeURIComponent(s.name)}`, s.name),
                s.time_zone,
                sum.by_site[s.name] ?? 0,
                s.maintenance_windows.length === 0
                  ? "always open"
                  : s.maintenance_windows.map((w) => `${w.days} ${w.start} for ${w.length}`).join("; "),
              ]),
              { class: "sites" },
            ),
      );
    },
  };
}
