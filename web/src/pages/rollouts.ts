// Rollouts: the list; one rollout's live progress (stages, strata, halts with their
// statistical reasons, the engine's events, a chart over time) with the operator's
// buttons; and a new rollout from a form, previewed before it is created and started.
import { ApiError, get, post } from "../api";
import { timelineChart } from "../chart";
import { counts, h, link, table, time } from "../dom";
import type { Context, Page } from "../main";
import type { Artifact, PlanPreview, Prediction, Rollout, RolloutEvent, RolloutSummary, Timeline } from "../types";

// Seconds as "2h 5m", "4m 10s", "35s"; null (it never got there): "never".
function span(seconds: number | null | undefined): string {
  if (seconds == null) return "never";
  const s = Math.round(seconds);
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const parts = d ? [`${d}d`, `${hh}h`] : hh ? [`${hh}h`, `${m}m`] : m ? [`${m}m`, `${sec}s`] : [`${sec}s`];
  return parts.join(" ");
}

const OVER = new Set(["completed", "completed_partial", "failed", "aborted", "rolled_back", "rollback_incomplete"]);

export function rolloutsPage(ctx: Context): Page {
  return {
    title: "Rollouts",
    controls: ctx.can("operator") ? h("p", {}, h("a", { href: "#/rollouts/new", class: "button" }, "New rollout")) : undefined,
    async render() {
      const { rollouts } = await get<{ rollouts: RolloutSummary[] }>("/rollouts");
      if (rollouts.length === 0) return h("p", {}, "No rollouts yet.");
      return table(
        ["Rollout", "Name", "Artifact", "State", "Stage", "Targets", "Created"],
        [...rollouts]
          .reverse()
          .map((r) => [link(`#/rollouts/${encodeURIComponent(r.id)}`, r.id), r.name, r.artifact, r.state, r.stage ?? "-", r.targets, time(r.created_at)]),
        { class: "rollouts" },
      );
    },
  };
}

// The buttons an operator has in each state (src/rollout/rollout_machine.cc; the engine
// refuses the others with 409). Resume also reopens strata halted under the pause policy,
// so it is offered while the rollout runs with halted groups.
function actions(state: string, halted: boolean): string[] {
  switch (state) {
    case "created":
      return ["start", "abort"];
    case "running":
    case "watching":
      return halted ? ["resume", "pause", "abort", "rollback"] : ["pause", "abort", "rollback"];
    case "paused":
      return ["resume", "abort", "rollback"];
    case "completed":
    case "completed_partial":
    case "failed":
    case "aborted":
    case "rolling_back":
    case "rollback_incomplete":
      return ["rollback"];
    default:
      return [];
  }
}

export function rolloutDetailPage(ctx: Context, id: string): Page {
  const path = `/rollouts/${encodeURIComponent(id)}`;
  const events: RolloutEvent[] = [];
  let after = 0;
  let truncated = false;
  const message = h("p", { class: "error", role: "alert" });
  // The chart: the whole rollout, one of its stages or one stratum, as the select says.
  const chart = h("div", { "data-chart": id });
  const show = h("select", { name: "chart-series", onchange: () => ctx.refresh() }) as HTMLSelectElement;
  const options = (r: Rollout, t: Timeline, chosen: string) => {
    const names = ["all", ...r.plan.stages.map((s) => `stage:${s.name}`), ...Object.keys(t.strata).map((k) => `stratum:${k}`)];
    if ([...show.options].map((o) => o.value).join("\n") !== names.join("\n")) {
      show.replaceChildren(...names.map((n) => h("option", { value: n }, n === "all" ? "whole rollout" : n.replace(":", " "))));
    }
    show.value = chosen;
  };
  const act = (verb: string) => async () => {
    if ((verb === "abort" || verb === "rollback") && !window.confirm(`${verb} ${id}?`)) return;
    try {
      await post(`${path}/${verb}`);
      message.textContent = "";
      ctx.refresh();
    } catch (e) {
      message.textContent = e instanceof Error ? e.message : String(e);
    }
  };
  return {
    title: `Rollout ${id}`,
    controls: message,
    async render() {
      const r = await get<Rollout>(path);
      const chosen = show.value || "all";
      const timeline =
        r.started_at > 0
          ? await get<Timeline>(
              `${path}/timeline${chosen.startsWith("stratum:") ? `?stratum=${encodeURIComponent(chosen.slice(8))}` : ""}`,
            )
          : null;
      const fresh = await get<{ events: RolloutEvent[]; last: number; truncated: boolean }>(
        `${path}/events?after=${after}&limit=1000`,
      );
      events.push(...fresh.events);
      after = fresh.last;
      truncated ||= fresh.truncated;
      const p = r.progress;
      const buttons = h("div", { class: "actions" });
      if (ctx.can("operator")) {
        for (const verb of actions(r.state, r.halted.length > 0)) {
          buttons.append(h("button", { onclick: act(verb), "data-action": verb }, verb[0].toUpperCase() + verb.slice(1)));
        }
      }
      const stage = r.stages[r.stage];
      const facts: [string, string][] = [
        ["Plan", `${r.plan.name}: ${r.plan.artifact.name}@${r.plan.artifact.version}`],
        ["State", r.state],
        ["Stage", stage ? `${r.stage + 1} of ${r.plan.stages.length}, ${stage.name}` : "-"],
        ["Targets", String(r.targets)],
        ["Created", `${time(r.created_at)}${r.created_by ? ` by ${r.created_by}` : ""}`],
        ["Started", time(r.started_at || null)],
        ["Finished", time(r.finished_at || null)],
      ];
      const parts: (HTMLElement | string)[] = [
        buttons,
        h("dl", { class: "facts" }, ...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { "data-fact": k }, v)])),
      ];
      if (r.halted.length) {
        parts.push(
          h("h2", {}, "Halted"),
          table(
            ["Group", "Reason", "Policy", "Halted at"],
            r.halted.map((x) => [x.key, x.reason, x.policy, time(x.halted_at)]),
            { class: "halted" },
          ),
        );
      }
      if (timeline) {
        options(r, timeline, chosen);
        const series = timeline.series.find((s) => s.name === chosen) ?? timeline.series[0];
        const size = chosen.startsWith("stratum:") ? (timeline.strata[chosen.slice(8)] ?? 0) : r.targets;
        parts.push(
          h("h2", {}, "Over time"),
          h("label", { class: "hint" }, "Show ", show),
          timelineChart(chart, timeline, series, size),
        );
      }
      if (p) {
        const pct = p.devices ? Math.floor((p.finished * 100) / p.devices) : 0;
        parts.push(
          h("h2", {}, "Progress"),
          h(
            "p",
            { class: "progress-line" },
            `${p.finished} of ${p.devices} finished (${pct}%), ${p.in_flight} in flight: ${counts(p.states)}`,
          ),
          h("h3", {}, "Stages"),
          table(
            ["Stage", "Devices", "Finished", "In flight", "States", "Started", "Settled"],
            p.stages.map((s, i) => [
              s.name,
              s.devices,
              s.finished,
              s.in_flight,
              counts(s.states),
              time(r.stages[i]?.started_at || null),
              time(r.stages[i]?.settled_at || null),
            ]),
            { class: "stages" },
          ),
          h("h3", {}, "Strata"),
          table(
            ["Stratum", "Devices", "Succeeded", "Failed", "Halted", "States"],
            p.strata.map((s) => [
              s.key,
              s.devices,
              s.successes,
              s.failures,
              s.halted ? h("span", { class: "error" }, "HALTED") : "-",
              counts(s.states),
            ]),
            { class: "strata" },
          ),
        );
        if (p.health?.length) {
          parts.push(
            h("h3", {}, "Health gates"),
            table(
              ["Group", "Metric", "Measure", "Pairs", "Updated worse", "Tied", "Evidence", "Halts at", "Halted"],
              p.health.map((g) => [
                g.group,
                g.metric,
                g.measure,
                g.pairs,
                g.worse,
                g.ties,
                g.evidence.toFixed(2),
                g.threshold.toFixed(2),
                g.halted ? h("span", { class: "error" }, "HALTED") : "-",
              ]),
              { class: "health-gates" },
            ),
            h(
              "p",
              { class: "hint", "data-health-waiting": String(p.health_waiting ?? 0) },
              `${p.health_waiting ?? 0} updated device(s) still in the window after their commit, not paired yet. ` +
                "Each pair compares an updated device with one of its stratum not updated (docs/gates.md, \"Health gates\").",
            ),
          );
        }
        const o = p.outcome;
        if (o && OVER.has(r.state)) {
          parts.push(
            h(
              "p",
              { class: "outcome" },
              `Outcome: ${o.updated} of ${o.targets} updated, ${o.failed} failed, ${o.reverted} sent back, ` +
                `${o.never_offered} never offered, ${o.skipped} excluded by a rule.`,
            ),
          );
        }
      } else {
        parts.push(h("p", {}, "This rollout ended long ago: its progress is no longer held in memory (its record and history are)."));
      }
      parts.push(
        h("h2", {}, "Events"),
        truncated ? h("p", { class: "hint" }, "Some events were dropped before this page read them (the server keeps 256 per rollout).") : "",
        events.length === 0
          ? h("p", {}, "None since the server started.")
          : table(
              ["Time", "Event", "What happened"],
              [...events].reverse().map((e) => [time(e.at), e.event, e.text]),
              { class: "events" },
            ),
      );
      return h("div", {}, ...parts);
    },
  };
}

// The form: the plan's usual fields, written into the plan document below them (which may
// be edited by hand for anything else the plan takes, docs/scenarios.md), previewed with
// POST /rollouts/plan, then created and started.
export function newRolloutPage(ctx: Context): Page {
  const field = (label: string, input: HTMLElement) => h("label", {}, label, input);
  const input = (name: string, value: string, attrs: Record<string, string> = {}) =>
    h("input", { name, value, ...attrs }) as HTMLInputElement;
  const artifact = h("select", { name: "artifact" }) as HTMLSelectElement;
  const name = input("name", "");
  const deviceTypes = input("device_types", "", { placeholder: "all" });
  const stratify = input("stratify_by", "hardware_revision");
  const stages = input("stages", "canary:5:10m, all:100");
  const maxFailure = input("max_failure_rate", "0.05", { type: "number", step: "0.01", min: "0", max: "1" });
  const minSample = input("min_sample", "10", { type: "number", min: "1" });
  const onFailure = h("select", { name: "on_failure" }, h("option", { value: "pause" }, "pause"), h("option", { value: "rollback" }, "rollback")) as HTMLSelectElement;
  const doc = h("textarea", { name: "plan", rows: 14, cols: 90, spellcheck: "false" }) as HTMLTextAreaElement;
  const preview = h("div", { class: "preview" });
  const prediction = h("div", { class: "prediction" });
  // What the twin assumes where the server's records say nothing (docs/api/operator.md,
  // "Prediction"); empty: the server's defaults.
  const installTime = input("install_time", "", { placeholder: "2m" });
  const rebootTime = input("reboot_time", "", { placeholder: "90s" });
  const bandwidth = input("bandwidth", "", { placeholder: "10Mbps" });
  const horizon = input("horizon", "", { placeholder: "14d" });
  const message = h("p", { class: "error", role: "alert" });
  const list = (v: string) => v.split(",").map((s) => s.trim()).filter(Boolean);

  let edited = false; // the plan document was changed by hand since the fields wrote it
  doc.addEventListener("input", () => {
    edited = true;
  });
  const number = (el: HTMLInputElement, what: string) => {
    const v = el.value.trim();
    if (v === "" || !Number.isFinite(Number(v))) throw new Error(`${what} must be a number`);
    return Number(v);
  };
  const write = () => {
    message.textContent = "";
    if (!artifact.value) {
      message.textContent = "No artifact uploaded yet: drover artifact upload FILE --name N --version V.";
      return;
    }
    if (edited && !window.confirm("Replace your edits to the plan with what the fields say?")) return;
    try {
      const [aName, aVersion] = artifact.value.split("@");
      const plan = {
        name: name.value.trim() || `${aName}-${aVersion}`,
        artifact: { name: aName, version: aVersion },
        filter: { device_types: list(deviceTypes.value) },
        stratify_by: list(stratify.value),
        stages: list(stages.value).map((s) => {
          const [n, pct, soak] = s.split(":").map((x) => x.trim());
          if (!n || !pct || !Number.isFinite(Number(pct))) throw new Error(`stage "${s}": write name:percent[:soak]`);
          return soak ? { name: n, percent: Number(pct), soak } : { name: n, percent: Number(pct) };
        }),
        gate: { max_failure_rate: number(maxFailure, "max failure rate"), min_sample: number(minSample, "min sample") },
        on_failure: onFailure.value,
      };
      doc.value = JSON.stringify(plan, null, 2);
      edited = false;
      preview.replaceChildren();
      prediction.replaceChildren();
    } catch (e) {
      message.textContent = e instanceof Error ? e.message : String(e);
    }
  };
  const plan = (): unknown => {
    try {
      return JSON.parse(doc.value);
    } catch (e) {
      throw new Error(`the plan is not JSON: ${e instanceof Error ? e.message : e}`);
    }
  };
  const showPreview = (pv: PlanPreview) => {
    preview.replaceChildren(
      h("h2", {}, "Preview"),
      h(
        "p",
        { "data-preview": "targets" },
        `${pv.targets} devices targeted; ${pv.already_current} already current; ${pv.excluded_count} excluded.`,
      ),
      table(
        ["Stage", "Adds", "Cumulative", "Asked", "Why more"],
        pv.stages.map((s) => [s.name, s.adds, s.cumulative, s.asked, s.why || "-"]),
      ),
      h("h3", {}, "Strata"),
      table(["Stratum", "Devices"], pv.strata.map((s) => [s.key, s.devices])),
      h("h3", {}, "If it had to be rolled back"),
      h(
        "p",
        {},
        `${pv.rollback.switch_back} would switch back to their other slot, ${pv.rollback.download} would download ` +
          `their previous version, ${pv.rollback.not_revertible} could not be sent back.`,
      ),
      pv.rollback.gaps.length
        ? table(
            ["Ran", "Devices", "Why not", "Upload"],
            pv.rollback.gaps.map((g) => [g.ran ?? "-", g.devices, g.reason, g.missing_artifact ?? "-"]),
          )
        : "",
      pv.excluded.length
        ? table(["Excluded device", "Why"], pv.excluded.map((x) => [x.device_id, x.reason]))
        : "",
    );
  };
  const showPrediction = (p: Prediction) => {
    const r = p.report;
    const never = r.never_reached ?? [];
    prediction.replaceChildren(
      h("h2", {}, "Prediction on the live fleet"),
      h(
        "p",
        { "data-prediction": "fleet" },
        `The twin ran this plan on the ${p.fleet.devices} devices in service as they are ` +
          `(${p.fleet.dark} long overdue, taken as gone; ${p.fleet.unknown_schedule} not heard from since the server started).`,
      ),
      h(
        "p",
        { "data-prediction": "times" },
        `${r.devices_eligible} targeted; 50% updated after ${span(r.time_to_50_percent_s)}, ` +
          `95% after ${span(r.time_to_95_percent_s)}, all after ${span(r.time_to_100_percent_s)}; the rollout ends ${r.rollout_state}.`,
      ),
      table(
        ["Stage", "Devices", "Starts after", "Takes", "Bound by"],
        r.stages.map((s) => [
          s.name,
          s.devices,
          span(s.started_at_s),
          s.finished_at_s == null ? "does not finish" : span(s.finished_at_s - s.started_at_s),
          s.bound_by || "-",
        ]),
        { class: "predicted-stages" },
      ),
      never.length
        ? h(
            "div",
            {},
            h("h3", {}, `Never reached within ${p.assumptions.horizon}: ${never.length}`),
            table(["Device", "Why"], never.slice(0, 50).map((u) => [link(`#/devices/${encodeURIComponent(u.device_id)}`, u.device_id), u.reason]), {
              class: "never-reached",
            }),
          )
        : "",
      h(
        "p",
        { class: "hint" },
        `Assumed: check-ins every ${p.assumptions.poll_interval}, judged every ${p.assumptions.engine_tick}, ` +
          `install ${p.assumptions.install_time}, reboot ${p.assumptions.reboot_time}, ` +
          `${(p.assumptions.bandwidth_bps / 1e6).toLocaleString()} Mbit/s; ${p.assumptions.defects}; ${p.assumptions.other_rollouts}.`,
      ),
    );
  };
  const predictQuery = () => {
    const q = new URLSearchParams();
    for (const el of [installTime, rebootTime, bandwidth, horizon]) if (el.value.trim()) q.set(el.name, el.value.trim());
    const text = q.toString();
    return text ? `?${text}` : "";
  };
  const run = (what: () => Promise<void>) => async (ev: Event) => {
    ev.preventDefault();
    message.textContent = "";
    try {
      await what();
    } catch (e) {
      message.textContent = e instanceof ApiError || e instanceof Error ? e.message : String(e);
    }
  };
  const previewButton = h("button", { type: "button", onclick: run(async () => showPreview(await post<PlanPreview>("/rollouts/plan", plan()))) }, "Preview");
  // The twin runs for up to seconds on a large fleet: the button waits, and says so.
  const predictButton = h("button", { type: "button" }, "Predict") as HTMLButtonElement;
  predictButton.addEventListener(
    "click",
    run(async () => {
      predictButton.disabled = true;
      prediction.replaceChildren(h("p", { class: "hint" }, "The twin is running the plan on the live fleet…"));
      try {
        showPrediction(await post<Prediction>(`/rollouts/predict${predictQuery()}`, plan()));
      } catch (e) {
        prediction.replaceChildren();
        throw e;
      } finally {
        predictButton.disabled = false;
      }
    }),
  );
  // Creates, then starts. Disabled while it runs (a second click would create a second
  // rollout); when the start is refused, the rollout stays created and is linked to.
  const startButton = h("button", { type: "button", class: "primary" }, "Create and start") as HTMLButtonElement;
  startButton.addEventListener(
    "click",
    run(async () => {
      startButton.disabled = true;
      let created: { id: string } | null = null;
      try {
        created = await post<{ id: string }>("/rollouts", plan());
        await post(`/rollouts/${encodeURIComponent(created.id)}/start`);
        location.hash = `#/rollouts/${encodeURIComponent(created.id)}`;
      } catch (e) {
        if (!created) {
          startButton.disabled = false;
          throw e;
        }
        message.replaceChildren(
          `${created.id} was created but not started: ${e instanceof Error ? e.message : String(e)} — `,
          link(`#/rollouts/${encodeURIComponent(created.id)}`, `open ${created.id}`),
        );
      }
    }),
  );
  for (const el of [artifact, name, deviceTypes, stratify, stages, maxFailure, minSample, onFailure]) {
    el.addEventListener("change", write);
  }
  const form = h(
    "form",
    { class: "plan-form" },
    h(
      "div",
      { class: "fields" },
      field("Artifact", artifact),
      field("Name", name),
      field("Device types (comma-separated)", deviceTypes),
      field("Stratify by", stratify),
      field("Stages (name:percent[:soak], …)", stages),
      field("Max failure rate", maxFailure),
      field("Min sample", minSample),
      field("On failure", onFailure),
    ),
    h("label", {}, "The plan (docs/scenarios.md): edit it for anything the fields do not set", doc),
    h(
      "details",
      { class: "assumptions" },
      h("summary", {}, "What the prediction assumes"),
      h(
        "div",
        { class: "fields" },
        field("Install time", installTime),
        field("Reboot time", rebootTime),
        field("Link speed", bandwidth),
        field("Look ahead at most", horizon),
      ),
    ),
    h("div", { class: "actions" }, previewButton, predictButton, ctx.can("operator") ? startButton : ""),
    message,
    preview,
    prediction,
  );
  let loaded = false;
  return {
    title: "New rollout",
    controls: form,
    async render() {
      if (!loaded) {
        const { artifacts } = await get<{ artifacts: Artifact[] }>("/artifacts");
        artifact.replaceChildren(
          ...artifacts.map((a) => h("option", { value: `${a.name}@${a.version}` }, `${a.name}@${a.version}`)),
        );
        if (artifacts.length) artifact.value = `${artifacts[artifacts.length - 1].name}@${artifacts[artifacts.length - 1].version}`;
        write();
        loaded = true;
      }
      return h("span");
    },
  };
}
