// API keys (admin): the list (never a secret), a new key's secret shown once with a copy
// button, and revocation (a key cannot revoke itself: the one signed in here says so).

import { call, pages } from "/dashboard/api.js";
import { ask, fill, h, say, showSecret, table, when } from "/dashboard/dom.js";

const SCOPES = ["read", "write", "admin"];

export async function show(ctx, main) {
  const state = pages("/account/api-keys");
  const rows = h("tbody");
  const secretBox = h("div", { id: "new-secret", "aria-live": "polite" });
  const problem = h("p", { class: "error", role: "alert", id: "keys-error" });
  const more = h("button", { type: "button", on: { click: () => load() } }, "Show more");
  const boxes = SCOPES.map((scope) => h("input", { type: "checkbox", id: `scope-${scope}`, value: scope, checked: scope === "read" }));
  const form = h(
    "form",
    { class: "card", id: "new-key", "aria-labelledby": "new-key-title" },
    h("h2", { id: "new-key-title" }, "Create a key"),
    h("fieldset", { class: "row" },
      h("legend", {}, "Scopes"),
      SCOPES.map((scope, i) => h("span", { class: "choice" }, boxes[i], h("label", { for: `scope-${scope}` }, scope)))),
    h("button", { type: "submit" }, "Create key"),
    secretBox,
  );

  fill(
    main,
    h("h1", {}, "API keys"),
    form,
    h("section", { class: "card", "aria-labelledby": "keys-title" },
      h("h2", { id: "keys-title" }, "Keys of this workspace"),
      problem,
      table(
        { id: "keys", class: "stack" },
        ["Key id", "Scopes", "Created", "Revoked", h("span", { class: "visually-hidden" }, "Actions")],
        rows,
      ),
      more,
    ),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const scopes = boxes.filter((b) => b.checked).map((b) => b.value);
    fill(problem);
    try {
      const made = (await call("POST", "/account/api-keys", { body: { scopes } })).body;
      showSecret(secretBox, `Key ${made.key_id} (${made.scopes.join(", ")}). Its secret is shown this once: copy it now.`, made.api_key);
      // The list is read from an index that may lag a moment: the new key shows at once here.
      state.items.unshift({ key_id: made.key_id, scopes: made.scopes, created_at: made.created_at, revoked: false, revoked_at: null });
      draw();
    } catch (error) {
      fill(secretBox, h("p", { class: "error", role: "alert" }, error.message));
    }
  });

  function draw() {
    fill(rows, state.items.map((k) => {
      const own = k.key_id === ctx.keyId;
      return h("tr", { "data-key": k.key_id },
        h("th", { scope: "row" }, h("code", {}, k.key_id), own ? " (this key)" : ""),
        h("td", { "data-label": "Scopes" }, k.scopes.join(", ")),
        h("td", { "data-label": "Created" }, when(k.created_at)),
        h("td", { "data-label": "Revoked", class: "revoked" }, k.revoked ? when(k.revoked_at) || "revoked" : "no"),
        h("td", {}, k.revoked ? "" : own
          ? h("span", { class: "hint" }, "A key cannot revoke itself: revoke it with another admin key.")
          : h("button", { type: "button", class: "danger", on: { click: () => revoke(k) } }, "Revoke", h("span", { class: "visually-hidden" }, ` key ${k.key_id}`))));
    }));
    more.hidden = state.done;
  }

  async function revoke(key) {
    if (!(await ask(`Revoke key ${key.key_id}?`, "Every call made with it is refused from now on (within 30 s everywhere). This cannot be undone.", "Revoke"))) return;
    fill(problem);
    try {
      const answer = (await call("DELETE", `/account/api-keys/${encodeURIComponent(key.key_id)}`)).body;
      Object.assign(key, { revoked: true, revoked_at: answer.revoked_at });
      draw();
      say(`Key ${key.key_id} is revoked.`);
    } catch (error) {
      fill(problem, error.message);
    }
  }

  async function load(again = false) {
    await state.more(again);
    draw();
  }

  await load(true);
}
