// The console's shell: login, navigation, the page router (#/devices, #/devices/ID, …) and
// the live refresh. Pages read the operator API only (api.ts); every few seconds the page
// on screen asks again (docs/console.md, "Live updates").
import "./style.css";
import { ApiError, get, storeToken, storedToken, type Role, type Whoami } from "./api";
import { h } from "./dom";
import { artifactsPage, auditPage, tokensPage } from "./pages/admin";
import { deviceDetailPage, devicesPage } from "./pages/devices";
import { alertsPage, fleetHealthPage } from "./pages/health";
import { loginPage } from "./pages/login";
import { overviewPage } from "./pages/overview";
import { newRolloutPage, rolloutDetailPage, rolloutsPage } from "./pages/rollouts";

export const REFRESH_MS = 5000;

export interface Context {
  me: Whoami;
  // Whether the token's role may do what `need` names (the server checks again).
  can(need: "operator" | "admin"): boolean;
  params: URLSearchParams;
  // Asks the page's content again now (after an action); the controls stay as they are.
  refresh(): void;
}

export interface Page {
  title: string;
  // The page's content, asked again at every refresh; the element returned replaces the
  // last one. Inputs a user is typing into belong in `controls`, built once.
  controls?: HTMLElement;
  render(): Promise<HTMLElement>;
  // How often it is asked again, when not every REFRESH_MS (a page the server must compute
  // from the telemetry store).
  refreshMs?: number;
}

type Route = (ctx: Context, arg: string) => Page;

// Each page with the role it needs (the server checks every request again).
const routes: [RegExp, Role, Route][] = [
  [/^\/?$/, "viewer", (ctx) => overviewPage(ctx)],
  [/^\/devices$/, "viewer", (ctx) => devicesPage(ctx)],
  [/^\/devices\/(.+)$/, "viewer", (ctx, id) => deviceDetailPage(ctx, decodeURIComponent(id))],
  [/^\/rollouts$/, "viewer", (ctx) => rolloutsPage(ctx)],
  [/^\/rollouts\/new$/, "operator", (ctx) => newRolloutPage(ctx)],
  [/^\/rollouts\/(.+)$/, "viewer", (ctx, id) => rolloutDetailPage(ctx, decodeURIComponent(id))],
  [/^\/health$/, "viewer", (ctx) => fleetHealthPage(ctx)],
  [/^\/alerts$/, "viewer", (ctx) => alertsPage(ctx)],
  [/^\/artifacts$/, "viewer", (ctx) => artifactsPage(ctx)],
  [/^\/tokens$/, "admin", (ctx) => tokensPage(ctx)],
  [/^\/audit$/, "viewer", (ctx) => auditPage(ctx)],
];
const rank = { viewer: 0, operator: 1, admin: 2 } as const;

const app = document.getElementById("app")!;
let me: Whoami | null = null;
let timer: number | undefined;
let generation = 0;
// The page on screen's refresh: asks its content again (and schedules the next one).
let current: (() => Promise<void>) | null = null;

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
    item("#/health", "Health", /^\/health/),
    item("#/alerts", "Alerts", /^\/alerts/),
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

function refreshNow(): void {
  window.clearTimeout(timer);
  if (current) void current();
}

async function show(): Promise<void> {
  window.clearTimeout(timer);
  current = null;
  const mine = ++generation;
  if (!storedToken()) {
    app.replaceChildren(loginPage(async () => show()));
    return;
  }
  if (!me) {
    try {
      const who = await get<Whoami>("/whoami");
      if (mine !== generation) return;
      me = who;
    } catch (e) {
      if (mine !== generation) return;
      if (e instanceof ApiError && e.status === 401) {
        storeToken(null);
        app.replaceChildren(loginPage(async () => show(), e.message));
      } else {
        // Unreachable or failing: the token stays, and the console asks again.
        app.replaceChildren(
          h("p", { class: "error", role: "alert" }, `${e instanceof Error ? e.message : String(e)}; trying again…`),
        );
        timer = window.setTimeout(() => void show(), REFRESH_MS);
      }
      return;
    }
  }
  const who = me;
  const { path, params } = parseHash();
  const ctx: Context = {
    me: who,
    can: (need) => rank[who.role] >= rank[need],
    params,
    refresh: refreshNow,
  };
  let page: Page | null = null;
  let refused = "";
  for (const [re, need, make] of routes) {
    const m = re.exec(path);
    if (m) {
      if (rank[who.role] >= rank[need]) page = make(ctx, m[1] ?? "");
      else refused = `This page needs the ${need} role; this token is a ${who.role}.`;
      break;
    }
  }
  const status = h("div", { class: "status", role: "status" });
  const content = h("div", { class: "content" });
  const main = h("main", {}, h("h1", {}, page?.title ?? "Not found"), page?.controls ?? "", status, content);
  app.replaceChildren(nav(who), main);
  document.title = `${page?.title ?? "Not found"} · drover`;
  if (!page) {
    content.append(h("p", {}, refused || `No page here (${path}).`));
    return;
  }
  const p = page;
  // One render at a time (a page may keep state between renders, as the rollout page's
  // event cursor): a refresh asked while one runs runs right after it.
  let running = false;
  let again = false;
  const tick = async (): Promise<void> => {
    if (running) {
      again = true;
      return;
    }
    running = true;
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
    } finally {
      running = false;
    }
    if (again && mine === generation) {
      again = false;
      return tick();
    }
    if (mine === generation && document.visibilityState === "visible") {
      window.clearTimeout(timer);
      timer = window.setTimeout(tick, p.refreshMs ?? REFRESH_MS);
    }
  };
  current = tick;
  await tick();
}

// Hidden tabs ask nothing; the page is asked again when it shows.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState !== "visible") window.clearTimeout(timer);
  else if (current) refreshNow();
  else void show();
});
window.addEventListener("hashchange", () => void show());
void show();
