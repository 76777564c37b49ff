// Artifacts (with delete for operators), API tokens and their roles (admin only: create,
// with the secret shown once, and revoke), and the audit log, newest first.
import { call, get, post } from "../api";
import { h, table, time } from "../dom";
import type { Context, Page } from "../main";
import type { ApiToken, Artifact, AuditEntry } from "../types";

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1 << 30) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${(n / (1 << 30)).toFixed(2)} GiB`;
}

export function artifactsPage(ctx: Context): Page {
  const message = h("p", { class: "error", role: "alert" });
  const remove = (a: Artifact) => async () => {
    if (!window.confirm(`Delete ${a.name}@${a.version}?`)) return;
    try {
      await call("DELETE", `/artifacts/${encodeURIComponent(a.name)}/${encodeURIComponent(a.version)}`);
      message.textContent = "";
      ctx.refresh();
    } catch (e) {
      message.textContent = e instanceof Error ? e.message : String(e);
    }
  };
  return {
    title: "Artifacts",
    controls: h("div", {}, h("p", { class: "hint" }, "Upload with drover artifact upload FILE --name N --version V (docs/api/operator.md)."), message),
    async render() {
      const { artifacts } = await get<{ artifacts: Artifact[] }>("/artifacts");
      if (artifacts.length === 0) return h("p", {}, "No artifacts yet.");
      return table(
        ["Artifact", "Version", "Device types", "Revisions", "Size", "SHA-256", "Signed", ""],
        artifacts.map((a) => [
          a.name,
          a.version,
          a.device_types.join(", ") || "any",
          a.hardware_revisions.join(", ") || "any",
          bytes(a.size),
          h("code", { title: a.sha256 }, a.sha256.slice(0, 16) + "…"),
          a.signed === undefined ? "-" : a.signed ? "yes" : "no",
          ctx.can("operator") ? h("button", { onclick: remove(a) }, "Delete") : "",
        ]),
        { class: "artifacts" },
      );
    },
  };
}

export function tokensPage(ctx: Context): Page {
  const name = h("input", { name: "name", required: true, placeholder: "ci-pipeline" }) as HTMLInputElement;
  const role = h(
    "select",
    { name: "role" },
    ...["viewer", "operator", "admin"].map((r) => h("option", { value: r }, r)),
  ) as HTMLSelectElement;
  const lifetime = h("input", { name: "lifetime", placeholder: "90d (empty: none)" }) as HTMLInputElement;
  const message = h("div", { role: "alert" });
  const form = h(
    "form",
    { class: "filters" },
    h("label", {}, "name", name),
    h("label", {}, "role", role),
    h("label", {}, "lifetime", lifetime),
    h("button", { type: "submit" }, "Create token"),
  ) as HTMLFormElement;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const body: Record<string, string> = { name: name.value.trim(), role: role.value };
      if (lifetime.value.trim()) body.lifetime = lifetime.value.trim();
      const made = await post<ApiToken & { token: string }>("/tokens", body);
      message.replaceChildren(
        h(
          "p",
          { class: "secret" },
          `Token for ${made.name} (${made.role}), shown only this once: `,
          h("code", { "data-secret": "" }, made.token),
        ),
      );
      name.value = "";
    } catch (e) {
      message.replaceChildren(h("p", { class: "error" }, e instanceof Error ? e.message : String(e)));
    }
  });
  const revoke = (t: ApiToken) => async () => {
    if (!window.confirm(`Revoke ${t.name}?`)) return;
    try {
      await post(`/tokens/${encodeURIComponent(t.id)}/revoke`);
    } catch (e) {
      message.replaceChildren(h("p", { class: "error" }, e instanceof Error ? e.message : String(e)));
    }
    ctx.refresh();
  };
  return {
    title: "API tokens",
    controls: h("div", {}, form, message),
    async render() {
      const { tokens } = await get<{ tokens: ApiToken[] }>("/tokens");
      return table(
        ["Name", "Role", "ID", "Created", "Expires", "Revoked", ""],
        tokens.map((t) => [
          t.name,
          t.role,
          t.id,
          time(t.created_at),
          time(t.expires_at || null),
          time(t.revoked_at || null),
          t.revoked_at || t.id === ctx.me.id ? "" : h("button", { onclick: revoke(t) }, "Revoke"),
        ]),
        { class: "tokens" },
      );
    },
  };
}

export function auditPage(_ctx: Context): Page {
  const PAGE = 100;
  return {
    title: "Audit log",
    controls: h("p", { class: "hint" }, "Every change, who made it and its outcome; tamper-evident (drover audit verify, docs/security.md)."),
    async render() {
      const { size } = await get<{ size: number }>("/audit/entries?from=0&limit=1");
      const from = Math.max(0, size - PAGE);
      const { entries } = await get<{ entries: AuditEntry[] }>(`/audit/entries?from=${from}&limit=${PAGE}`);
      return h(
        "div",
        {},
        h("p", {}, `${size} entries; the newest ${entries.length}:`),
        table(
          ["#", "Time", "Actor", "Action", "Subject", "Detail"],
          [...entries].reverse().map((e) => [e.index, time(e.at), e.actor, e.action, e.subject, h("code", {}, JSON.stringify(e.detail))]),
          { class: "audit" },
        ),
      );
    },
  };
}
