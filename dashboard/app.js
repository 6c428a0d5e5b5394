// The dashboard: sign in with an API key, then the pages its scopes allow (read sees, write
// changes values, admin sets up). Pages are hash routes, so a reload keeps the page and the
// key never travels in a URL.

import { auth, call } from "/dashboard/api.js";
import { fill, h, say } from "/dashboard/dom.js";

// The navigation: a page is one entry here and one module, loaded when first shown, whose
// show(ctx, main, arg) draws it (and may return a function that stops its timers). A new panel
// is one more entry and one more module.
const PAGES = [
  { route: "counters", title: "Counters", scope: "read", load: () => import("/dashboard/counters.js") },
  { route: "invoices", title: "Invoice items", scope: "read", load: () => import("/dashboard/invoices.js") },
  { route: "keys", title: "API keys", scope: "admin", load: () => import("/dashboard/keys.js") },
  { route: "webhooks", title: "Webhooks", scope: "admin", load: () => import("/dashboard/webhooks.js") },
  { route: "workspace", title: "Workspace", scope: "admin", load: () => import("/dashboard/workspace.js") },
];
// Pages reached from others, not from the navigation (which marks the page they belong to).
const INNER = {
  counter: { scope: "read", under: "counters", load: () => import("/dashboard/counter.js") },
  setup: { scope: "admin", under: "counters", load: () => import("/dashboard/setup.js") },
  deliveries: { scope: "admin", under: "webhooks", load: () => import("/dashboard/deliveries.js") },
};
const GRANTS = { read: ["read"], write: ["read", "write"], admin: ["read", "write", "admin"] };

const main = document.getElementById("main");
let ctx = null; // {workspace, keyId, scopes, can(scope)}
let stop = null;

function session(body) {
  const scopes = new Set(body.key.scopes.flatMap((s) => GRANTS[s] || []));
  return {
    workspace: body.account.id,
    keyId: body.key.key_id,
    scopes: body.key.scopes,
    can: (scope) => scopes.has(scope),
  };
}

async function start() {
  auth.onRefused = () => signOut("Your key was refused (revoked or not valid): sign in again.");
  if (!auth.key) return signIn();
  try {
    ctx = session((await call("GET", "/app/session")).body);
  } catch (error) {
    return signIn(error.status === 401 ? null : error.message);
  }
  window.addEventListener("hashchange", route);
  route();
}

function signIn(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  const input = h("input", {
    id: "key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "key-hint key-error",
  });
  const error = h("p", { class: "field-error", id: "key-error", role: "alert" }, message || "");
  const form = h(
    "form",
    { class: "card signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("label", { for: "key" }, "API key"),
    input,
    h(
      "p",
      { class: "hint", id: "key-hint" },
      "A key of your workspace (tly_…). It stays in this tab only, and is forgotten when the tab closes or you sign out.",
    ),
    error,
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    try {
      const answer = await call("GET", "/app/session", { key });
      auth.keep(key);
      ctx = session(answer.body);
      input.value = "";
      window.addEventListener("hashchange", route);
      if (location.hash) route();
      else location.hash = "#/counters"; // (the hashchange draws it)
    } catch (refusal) {
      fill(error, refusal.status === 401 ? "This key is not valid, or has been revoked." : refusal.message);
      input.focus();
    }
  });
  fill(main, form);
  input.focus();
}

function signOut(message) {
  if (stop) stop();
  stop = null;
  auth.forget();
  ctx = null;
  window.removeEventListener("hashchange", route);
  history.replaceState(null, "", location.pathname);
  signIn(message);
}

function header(current) {
  const nav = document.getElementById("nav");
  fill(
    nav,
    h(
      "ul",
      {},
      PAGES.filter((page) => ctx.can(page.scope)).map((page) =>
        h(
          "li",
          {},
          h(
            "a",
            { href: `#/${page.route}`, "aria-current": page.route === current ? "page" : null },
            page.title,
          ),
        ),
      ),
    ),
  );
  nav.hidden = false;
  const who = document.getElementById("who");
  fill(
    who,
    h("span", { class: "workspace" }, ctx.workspace),
    h("span", { class: "scope", title: "what this key may do" }, ctx.scopes.join(", ")),
    h("button", { type: "button", class: "quiet", on: { click: () => signOut("Signed out.") } }, "Sign out"),
  );
  who.hidden = false;
}

async function route() {
  if (!ctx) return;
  if (stop) stop();
  stop = null;
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const arg = rest.length ? decodeURIComponent(rest.join("/")) : null;
  const page = PAGES.find((p) => p.route === name) || INNER[name];
  if (!page || !ctx.can(page.scope)) {
    location.replace("#/counters");
    return;
  }
  header(page.under || name);
  say("");
  fill(main);
  try {
    stop = (await (await page.load()).show(ctx, main, arg)) || null;
    main.focus({ preventScroll: true }); // a keyboard or screen reader user starts at the page
  } catch (error) {
    fill(main, h("p", { class: "error", role: "alert" }, error.message));
  }
}

start();
