// The console's shell: login, navigation, the page router (#/devices, #/devices/ID, …) and
// the live refresh. Pages read the operator API only (api.ts); every few seconds the page
// on screen asks again (docs/console.md, "Live updates").
import "./style.css";
import { ApiError, get, storeToken, storedToken, type Whoami } from "./api";
import { h } from "./dom";
import { artifactsPage, auditPage, tokensPage } from "./pages/admin";
import { deviceDetailPage, devicesPage } from "./pages/devices";
import { loginPage } from "./pages/login";
import { overviewPage } from "./pages/overview";
import { newRolloutPage, rolloutDetailPage, rolloutsPage } from "./pages/rollouts";

export const REFRESH_MS = 5000;

export interface Context {
  me: Whoami;
  // Whether the token's role may do what `need` names (the server checks again).
  can(need: "operator" | "admin"): boolean;
  params: URLSearchParams;
  // Re-renders the page now (after an action).
  refresh(): void;
}

export interface Page {
  title: string;
  // The page's content, asked again at every refresh; the element returned replaces the
  // last one. Inputs a user is typing into belong in `controls`, built once.
  controls?: HTMLElement;
  render(): Promise<HTMLElement>;
}

type Route = (ctx: Context, arg: string) => Page;

const routes: [RegExp, Route][] = [
  [/^\/?$/, (ctx) => overviewPage(ctx)],
  [/^\/devices$/, (ctx) => devicesPage(ctx)],
  [/^\/devices\/(.+)$/, (ctx, id) => deviceDetailPage(ctx, decodeURIComponent(id))],
  [/^\/rollouts$/, (ctx) => rolloutsPage(ctx)],
  [/^\/rollouts\/new$/, (ctx) => newRolloutPage(ctx)],
  [/^\/rollouts\/(.+)$/, (ctx, id) => rolloutDetailPage(ctx, decodeURIComponent(id))],
  [/^\/artifacts$/, (ctx) => artifactsPage(ctx)],
  [/^\/tokens$/, (ctx) => tokensPage(ctx)],
  [/^\/audit$/, (ctx) => auditPage(ctx)],
];

const app = document.getElementById("app")!;
let me: Whoami | null = null;
let timer: number | undefined;
let generation = 0;

function parseHash(): { path: string; params: URLSearchParams } {
  const raw = location.hash.replace(/^#/, "");
  const [path, query] = raw.split("?", 2);
  return { path: path || "/", params: new URLSearchParams(query ?? "") };
}

function nav(who: Whoami): HTMLElement {
  const here = parseHash().path;
  const item = (href: string, text: string, match: RegExp) =>
    h("a", { href, class: match.test(here) ? "active" : null }, text);
  return h(
    "nav",
    {},
    h("span", { class: "brand" }, "drover"),
    item("#/", "Overview", /^\/?$/),
    item("#/devices", "Devices", /^\/devices/),
    item("#/rollouts", "Rollouts", /^\/rollouts/),
    item("#/artifacts", "Artifacts", /^\/artifacts/),
    who.role === "admin" ? item("#/tokens", "Tokens", /^\/tokens/) : null,
    item("#/audit", "Audit", /^\/audit/),
    h("span", { class: "spacer" }),
    h("span", { class: "who", "data-role": who.role }, `${who.name} (${who.role})`),
    h("button", { class: "link", onclick: () => logout() }, "Log out"),
  );
}

function logout(): void {
  storeToken(null);
  me = null;
  show();
}

async function show(): Promise<void> {
  window.clearTimeout(timer);
  const mine = ++generation;
  if (!storedToken()) {
    app.replaceChildren(loginPage(async () => show()));
    return;
  }
  if (!me) {
    try {
      me = await get<Whoami>("/whoami");
    } catch (e) {
      storeToken(null);
      app.replaceChildren(loginPage(async () => show(), e instanceof ApiError ? e.message : String(e)));
      return;
    }
  }
  const who = me;
  const { path, params } = parseHash();
  const rank = { viewer: 0, operator: 1, admin: 2 } as const;
  const ctx: Context = {
    me: who,
    can: (need) => rank[who.role] >= rank[need],
    params,
    refresh: () => void show(),
  };
  let page: Page | null = null;
  for (const [re, make] of routes) {
    const m = re.exec(path);
    if (m) {
      page = make(ctx, m[1] ?? "");
      break;
    }
  }
  const status = h("div", { class: "status", role: "status" });
  const content = h("div", { class: "content" });
  const main = h("main", {}, h("h1", {}, page?.title ?? "Not found"), page?.controls ?? "", status, content);
  app.replaceChildren(nav(who), main);
  document.title = `${page?.title ?? "Not found"} · drover`;
  if (!page) {
    content.append(h("p", {}, `No page here (${path}).`));
    return;
  }
  const p = page;
  const tick = async () => {
    try {
      const next = await p.render();
      if (mine !== generation) return;
      content.replaceChildren(next);
      status.textContent = `updated ${new Date().toLocaleTimeString()}`;
      status.classList.remove("error");
    } catch (e) {
      if (mine !== generation) return;
      if (e instanceof ApiError && e.status === 401) return logout();
      status.textContent = e instanceof Error ? e.message : String(e);
      status.classList.add("error");
    }
    if (mine === generation) timer = window.setTimeout(tick, REFRESH_MS);
  };
  await tick();
}

// Hidden tabs ask nothing; the page is asked again when it shows.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") void show();
  else window.clearTimeout(timer);
});
window.addEventListener("hashchange", () => void show());
void show();
