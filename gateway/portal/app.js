// The portal's router: one shell (index.html) on every page path, pages
// rendered into <main> and swapped with history.pushState, no full reload.
import { ApiError, get, post } from "./api.js";
import { currentSession, navigate, setSession } from "./session.js";
import { h } from "./ui.js";

// Path pattern → [page module, its export, needs a session]. gateway/portal_routes.py PAGES
// lists the first segments Envoy serves the shell on.
const ROUTES = [
  [/^\/portal\/signup$/, "auth.js", "signup", false],
  [/^\/portal\/login$/, "auth.js", "login", false],
  [/^\/portal\/accept$/, "auth.js", "accept", false],
  [/^\/portal\/?$/, "dashboard.js", "render", true],
  [/^\/portal\/dashboard$/, "dashboard.js", "render", true],
  [/^\/portal\/notifications\/([^/]+)$/, "notification.js", "render", true],
  [/^\/portal\/inbox$/, "notification.js", "inbox", true],
  [/^\/portal\/overview$/, "overview.js", "render", true],
  [/^\/portal\/bulk$/, "bulk.js", "render", true],
  [/^\/portal\/bulk\/([^/]+)$/, "bulk.js", "detail", true],
  [/^\/portal\/keys$/, "keys.js", "render", true],
  [/^\/portal\/templates$/, "templates.js", "render", true],
  [/^\/portal\/templates\/([^/]+)$/, "templates.js", "detail", true],
  [/^\/portal\/team$/, "team.js", "render", true],
  [/^\/portal\/audit$/, "team.js", "audit", true],
  [/^\/portal\/routing$/, "routing.js", "render", true],
  [/^\/portal\/webhooks$/, "webhooks.js", "render", true],
  [/^\/portal\/webhooks\/([^/]+)$/, "webhooks.js", "detail", true],
  [/^\/portal\/alerts$/, "alerts.js", "render", true],
  [/^\/portal\/alerts\/([^/]+)$/, "alerts.js", "detail", true],
];

const NAV = [
  ["/portal/dashboard", "Dashboard"],
  ["/portal/overview", "Overview"],
  ["/portal/bulk", "Bulk sends"],
  ["/portal/templates", "Templates"],
  ["/portal/routing", "Routing"],
  ["/portal/webhooks", "Webhooks"],
  ["/portal/alerts", "Alerts"],
  ["/portal/keys", "API keys"],
  ["/portal/team", "Team"],
  ["/portal/audit", "Audit log"],
  ["/portal/inbox", "Sandbox inbox"],
];

let leaving = []; // cleanups of the current page (polling timers)
let loaded = false; // after the first page, moving to another puts focus on its content
let shown = ""; // the path and query of the page on screen

function renderChrome() {
  const session = currentSession();
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  if (!session) {
    nav.replaceChildren();
    who.replaceChildren();
    return;
  }
  const here = location.pathname;
  nav.replaceChildren(
    h(
      "ul",
      {},
      NAV.map(([href, text]) =>
        h("li", {}, h("a", { href, "aria-current": here.startsWith(href) ? "page" : false }, text)),
      ),
    ),
  );
  const logout = h("button", { type: "button", class: "secondary" }, "Log out");
  logout.addEventListener("click", async () => {
    await post("/portal/logout").catch(() => {});
    setSession(null);
    navigate("/portal/login");
  });
  who.replaceChildren(
    h("span", {}, `${session.user.email} (${session.user.role}) · ${session.tenant.name}`),
    logout,
  );
}

// 401 means logged out; any other failure also leaves only the public pages usable.
async function loadSession() {
  try {
    setSession(await get("/portal/session"));
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) console.warn("no session:", error.message);
    setSession(null);
  }
}

async function route() {
  leaving.forEach((fn) => fn());
  leaving = [];
  const main = document.getElementById("main");
  const path = location.pathname;
  shown = path + location.search;
  const found = ROUTES.find(([pattern]) => pattern.test(path));
  renderChrome();
  if (!found) {
    main.replaceChildren(h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "/portal/dashboard" }, "Go to the dashboard")));
    return;
  }
  const [pattern, file, name, needsSession] = found;
  if (needsSession && !currentSession()) {
    navigate(`/portal/login?next=${encodeURIComponent(path + location.search)}`, { replace: true });
    return;
  }
  const module = await import(`./pages/${file}`);
  const ctx = {
    params: path.match(pattern).slice(1).map(decodeURIComponent),
    query: new URLSearchParams(location.search),
    onLeave: (fn) => leaving.push(fn),
  };
  try {
    await module[name](main, ctx);
  } catch (error) {
    main.replaceChildren(h("h1", {}, "Something went wrong"), h("p", { class: "error", role: "alert" }, error.message));
  }
  if (loaded) main.focus();
  loaded = true;
}

// Same-origin portal links route in place; the guide and API documents load normally.
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith("/portal")) return;
  if (url.pathname.startsWith("/portal/assets/") || url.pathname === "/portal/guide") return;
  // A link within this page (the skip link) is the browser's to follow: it
  // moves focus to the target. Routing it would render the page again and
  // drop what the form holds and where focus is.
  if (url.hash && url.pathname === location.pathname && url.search === location.search) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
// Following or going back over a link within the page (#main) fires
// popstate too; the page on screen stays as it is.
window.addEventListener("popstate", () => {
  if (location.pathname + location.search !== shown) route();
});
window.addEventListener("portal:navigate", route);
window.addEventListener("portal:session", renderChrome);

loadSession().then(route);
