// The fleet at a glance: how many devices, how many wait for an operator, per site; the
// rollouts under way.
import { get } from "../api";
import { h, link, table, time } from "../dom";
import type { Context, Page } from "../main";
import type { DevicePage, RolloutSummary, Site } from "../types";

const MAX_SITES = 25;
const ACTIVE = new Set(["created", "running", "paused", "rolling_back"]);

async function matched(query: string): Promise<number> {
  return (await get<DevicePage>(`/devices?limit=1${query ? "&" + query : ""}`)).matched;
}

export function overviewPage(_ctx: Context): Page {
  return {
    title: "Overview",
    async render() {
      const [all, pending, rejected, retired, sites, rollouts] = await Promise.all([
        matched("decommissioned=false"),
        matched("enrollment=pending&decommissioned=false"),
        matched("enrollment=rejected&decommissioned=false"),
        matched("decommissioned=true"),
        get<{ sites: Site[] }>("/sites"),
        get<{ rollouts: RolloutSummary[] }>("/rollouts"),
      ]);
      // One count per site: the first MAX_SITES only (each is a request at every refresh).
      const perSite = await Promise.all(
        sites.sites.slice(0, MAX_SITES).map(async (s) => [s, await matched(`site=${encodeURIComponent(s.name)}&decommissioned=false`)] as const),
      );
      const card = (label: string, n: number, href: string) =>
        h("a", { class: "card", href, "data-card": label }, h("span", { class: "n" }, String(n)), h("span", {}, label));
      const active = rollouts.rollouts.filter((r) => ACTIVE.has(r.state));
      return h(
        "div",
        {},
        h(
          "div",
          { class: "cards" },
          card("devices", all, "#/devices"),
          card("waiting for acceptance", pending, "#/devices?enrollment=pending"),
          card("rejected", rejected, "#/devices?enrollment=rejected"),
          card("decommissioned", retired, "#/devices?decommissioned=true"),
        ),
        h("h2", {}, "Sites"),
        perSite.length === 0
          ? h("p", {}, "No sites yet (drover site put).")
          : table(
              ["Site", "Time zone", "Devices", "Maintenance windows"],
              perSite.map(([s, n]) => [
                link(`#/devices?site=${encodeURIComponent(s.name)}`, s.name),
                s.time_zone,
                n,
                s.maintenance_windows.length === 0
                  ? "always open"
                  : s.maintenance_windows.map((w) => `${w.days} ${w.start} for ${w.length}`).join("; "),
              ]),
            ),
        sites.sites.length > MAX_SITES
          ? h("p", { class: "hint" }, `… and ${sites.sites.length - MAX_SITES} more sites (filter the device list by site).`)
          : "",
        h("h2", {}, "Rollouts under way"),
        active.length === 0
          ? h("p", {}, "None.")
          : table(
              ["Rollout", "Name", "Artifact", "State", "Stage", "Targets", "Created"],
              active.map((r) => [r.id, r.name, r.artifact, r.state, r.stage ?? "-", r.targets, time(r.created_at)]),
            ),
      );
    },
  };
}
