// The few DOM helpers the pages are built from: no framework, the pages are small.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | null | undefined>;

// An element with attributes ("on…" are listeners; false/null/undefined are left out) and
// children (strings become text, never HTML).
export function h(tag: string, attrs: Attrs = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on")) {
      // Listeners only: an inline handler attribute would be script from text.
      if (typeof v !== "function") throw new Error(`h(): ${k} must be a function`);
      el.addEventListener(k.slice(2), v);
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function table(head: string[], rows: Child[][], attrs: Attrs = {}): HTMLElement {
  return h(
    "table",
    attrs,
    h("thead", {}, h("tr", {}, ...head.map((c) => h("th", {}, c)))),
    h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c) => h("td", {}, c))))),
  );
}

export function link(href: string, text: string): HTMLElement {
  return h("a", { href }, text);
}

// A figure on a card (the overview's, the fleet health page's): a link when `href` is given;
// red when `bad` and not zero.
export function card(label: string, n: number | string, href: string | null = null, bad = false): HTMLElement {
  return h(
    href ? "a" : "div",
    { class: bad && n !== 0 ? "card bad" : "card", href, "data-card": label },
    h("span", { class: "n" }, String(n)),
    h("span", {}, label),
  );
}

// "12:04:05 UTC, 3 Dec" style absolute times (UTC, as the CLI prints them).
export function time(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "-";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

// "2m ago", "in 8s": relative to now.
export function ago(ms: number | null | undefined, now = Date.now()): string {
  if (ms === null || ms === undefined) return "-";
  const d = Math.round((now - ms) / 1000);
  const span = (s: number) =>
    s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m` : s < 86400 ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 86400)}d`;
  if (d === 0) return "now";
  return d > 0 ? `${span(d)} ago` : `in ${span(-d)}`;
}

export function counts(m: Record<string, number> | undefined): string {
  if (!m) return "-";
  return Object.entries(m)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ") || "-";
}
