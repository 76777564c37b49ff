// The device list (filters and paging, as GET /devices takes them) and one device's page:
// identity, inventory, last seen and next check-in, and its update story across rollouts
// with every step's time and message.
import { get, post } from "../api";
import { ago, h, link, table, time } from "../dom";
import type { Context, Page } from "../main";
import { deviceHealth } from "./health";
import type { Device, DeviceDeployment, DevicePage } from "../types";

const FILTERS = ["device_type", "hardware_revision", "site", "connectivity", "tag", "enrollment", "decommissioned"] as const;
const PAGE = 50;
const HISTORY = 20; // the newest rollouts shown on a device's page

function installed(d: Device): string {
  return Object.entries(d.installed).map(([k, v]) => `${k}@${v}`).join(", ") || "-";
}

function enrollment(d: Device): string {
  return d.decommissioned ? "decommissioned" : (d.enrollment ?? "accepted");
}

// Overdue: past the check-in it was told to make (with a minute's grace).
function seen(d: Device, now: number): HTMLElement {
  const late = d.next_checkin !== null && now > d.next_checkin + 60_000;
  return h("span", { class: late ? "late" : null, title: time(d.last_seen) }, ago(d.last_seen, now));
}

export function devicesPage(ctx: Context): Page {
  const params = ctx.params;
  const form = h("form", { class: "filters" }) as HTMLFormElement;
  for (const f of FILTERS) {
    form.append(
      h("label", {}, f.replace("_", " "), h("input", { name: f, value: params.get(f) ?? "", size: 12 })),
    );
  }
  form.append(h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (String(v).trim()) q.set(k, String(v).trim());
    location.hash = `#/devices${q.size ? "?" + q.toString() : ""}`;
  });
  return {
    title: "Devices",
    controls: form,
    async render() {
      const q = new URLSearchParams();
      for (const f of FILTERS) if (params.get(f)) q.set(f, params.get(f)!);
      q.set("limit", String(PAGE));
      if (params.get("after")) q.set("after", params.get("after")!);
      const page = await get<DevicePage>(`/devices?${q.toString()}`);
      const now = Date.now();
      const rows = page.devices.map((d) => [
        link(`#/devices/${encodeURIComponent(d.id)}`, d.id),
        d.device_type,
        d.hardware_revision,
        d.site || "-",
        d.tags.join(", ") || "-",
        enrollment(d),
        d.update_state,
        installed(d),
        seen(d, now),
        ago(d.next_checkin, now),
      ]);
      const nextQ = new URLSearchParams(params);
      if (page.next) nextQ.set("after", page.next);
      const firstQ = new URLSearchParams(params);
      firstQ.delete("after");
      return h(
        "div",
        {},
        h("p", { class: "matched" }, `${page.matched} matching device${page.matched === 1 ? "" : "s"}`),
        table(
          ["ID", "Type", "Revision", "Site", "Tags", "Enrollment", "State", "Installed", "Last seen", "Next check-in"],
          rows,
          { class: "devices" },
        ),
        h(
          "p",
          { class: "pager" },
          params.get("after") ? link(`#/devices?${firstQ.toString()}`, "« first page") : "",
          " ",
          page.next ? link(`#/devices?${nextQ.toString()}`, "next page »") : "",
        ),
      );
    },
  };
}

export function deviceDetailPage(ctx: Context, id: string): Page {
  const path = `/devices/${encodeURIComponent(id)}`;
  const message = h("p", { class: "error", role: "alert" });
  const act = (verb: string) => async () => {
    try {
      await post(`${path}/${verb}`);
      message.textContent = "";
    } catch (e) {
      message.textContent = `${verb}: ${e instanceof Error ? e.message : String(e)}`;
    }
    ctx.refresh();
  };
  return {
    title: `Device ${id}`,
    controls: message,
    async render() {
      const [d, story, health] = await Promise.all([
        get<Device>(path),
        get<{ deployments: DeviceDeployment[] }>(`${path}/deployments?limit=${HISTORY}`),
        deviceHealth(ctx, id, message),
      ]);
      const now = Date.now();
      const facts: [string, string | HTMLElement][] = [
        ["Type", d.device_type],
        ["Hardware revision", d.hardware_revision],
        ["Site", d.site || "-"],
        ["Connectivity", d.connectivity || "-"],
        ["Tags", d.tags.join(", ") || "-"],
        ["Enrollment", `${enrollment(d)}${d.enrolled_by ? ` (${d.enrolled_by}, ${time(d.enrolled_at)})` : ""}`],
        ["Update state", d.update_state],
        ["Installed", installed(d)],
        ["Last seen", h("span", {}, seen(d, now), ` (${time(d.last_seen)})`)],
        ["Next check-in", `${ago(d.next_checkin, now)} (${time(d.next_checkin)})`],
      ];
      for (const [k, v] of Object.entries(d.attributes ?? {})) facts.push([k, v]);
      const buttons = h("div", { class: "actions" });
      if (ctx.can("operator") && !d.decommissioned) {
        if (d.enrollment === "pending") {
          buttons.append(h("button", { onclick: act("accept") }, "Accept"), h("button", { onclick: act("reject") }, "Reject"));
        }
      }
      if (ctx.can("admin") && d.enrollment === "rejected") {
        buttons.append(h("button", { onclick: act("unreject") }, "Undo the rejection"));
      }
      const deployments = story.deployments.map((dep) =>
        h(
          "section",
          { class: "deployment" },
          h(
            "h3",
            {},
            `${dep.rollout.id} · ${dep.rollout.artifact} · `,
            h("span", { class: `state ${dep.state}` }, dep.state),
            dep.error ? h("span", { class: "error" }, ` — ${dep.error}`) : "",
          ),
          table(
            ["Time", "Event", "State", "Message"],
            dep.history.map((s) => [time(s.at), s.event, s.state, s.message ?? ""]),
            { class: "history" },
          ),
        ),
      );
      return h(
        "div",
        {},
        buttons,
        h("dl", { class: "facts" }, ...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
        health,
        h("h2", {}, "Deployments"),
        deployments.length ? h("div", {}, ...deployments) : h("p", {}, "This device has been in no rollout."),
        deployments.length === HISTORY
          ? h("p", { class: "hint" }, `The newest ${HISTORY} rollouts; drover device history ${id} lists more.`)
          : "",
      );
    },
  };
}
