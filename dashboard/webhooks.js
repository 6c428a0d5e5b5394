// Webhooks (admin): the workspace's webhooks (at most 10, never a secret), a new one's signing
// secret shown once with a copy button, deletion after a confirmation, and a link to each one's
// deliveries (deliveries.js).

import { call } from "/dashboard/api.js";
import { ask, field, fill, group, h, link, say, showFieldErrors, showSecret, table, when } from "/dashboard/dom.js";

// The event types, in the order the API documents them, each with what it means.
const EVENTS = [
  ["tally.counter.threshold_crossed", "Billing threshold crossed"],
  ["tally.counter.bound_reached", "Bound reached"],
  ["tally.counter.alert", "Alert level reached"],
  ["tally.invoice_item.created", "Invoice item created"],
];

export async function show(ctx, main) {
  let hooks = (await call("GET", "/account/webhooks")).body.list;
  const rows = h("tbody");
  const empty = h("p", { class: "hint", id: "no-webhooks" }, "No webhook yet: events go nowhere.");
  const problem = h("p", { class: "error", role: "alert", id: "webhooks-error" });
  const secretBox = h("div", { id: "new-secret", "aria-live": "polite" });

  const url = h("input", { type: "url", inputmode: "url", autocomplete: "off", spellcheck: "false", maxlength: 2048, required: true });
  const description = h("input", { autocomplete: "off", maxlength: 100 });
  const boxes = EVENTS.map(([type]) => h("input", { type: "checkbox", id: `event-${type}`, value: type, checked: true }));
  const formProblem = h("p", { class: "error", role: "alert", id: "new-webhook-error" });
  const form = h(
    "form",
    { class: "card", id: "new-webhook", novalidate: true, "aria-labelledby": "new-webhook-title" },
    h("h2", { id: "new-webhook-title" }, "Add a webhook"),
    field("URL", url, { name: "url", hint: "Where tally POSTs each event, signed (Standard Webhooks): https to a public address." }),
    group(
      "Events",
      h("div", { class: "choices" }, EVENTS.map(([type, title], i) =>
        h("span", { class: "choice" }, boxes[i],
          h("label", { for: `event-${type}` }, title, " ", h("code", { class: "hint" }, type))))),
      { name: "events", id: "events" },
    ),
    field("Description", description, { name: "description", hint: "Optional: what receives them." }),
    formProblem,
    h("button", { type: "submit" }, "Add webhook"),
    secretBox,
  );

  fill(
    main,
    h("h1", {}, "Webhooks"),
    form,
    h("section", { class: "card", "aria-labelledby": "webhooks-title" },
      h("h2", { id: "webhooks-title" }, "Webhooks of this workspace"),
      problem,
      empty,
      table(
        { id: "webhooks", class: "stack" },
        ["URL", "Events", "Description", "Created", h("span", { class: "visually-hidden" }, "Actions")],
        rows,
      ),
    ),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      url: url.value.trim(),
      events: boxes.filter((b) => b.checked).map((b) => b.value),
      description: description.value,
    };
    fill(secretBox);
    try {
      const made = (await call("POST", "/account/webhooks", { body })).body;
      showFieldErrors(form, null, formProblem);
      url.value = description.value = "";
      showSecret(secretBox, `Webhook ${made.url}: its signing secret is shown this once. Copy it now into what receives the events, to verify their signatures.`, made.secret);
      const { secret, ...listed } = made; // the list never holds a secret
      hooks = [listed, ...hooks];
      draw();
    } catch (error) {
      showFieldErrors(form, error, formProblem);
    }
  });

  function draw() {
    fill(rows, hooks.map((w) => h("tr", { "data-webhook": w.id },
      h("th", { scope: "row" }, h("code", { class: "url" }, w.url)),
      h("td", { "data-label": "Events", class: "nowrap" }, h("ul", { class: "plain" }, w.events.map((type) => h("li", {}, type)))),
      h("td", { "data-label": "Description" }, w.description),
      h("td", { "data-label": "Created" }, when(w.created_at)),
      h("td", { class: "buttons" },
        link(`#/deliveries/${encodeURIComponent(w.id)}`, ["Deliveries", h("span", { class: "visually-hidden" }, ` to ${w.url}`)]),
        h("button", { type: "button", class: "danger", on: { click: () => remove(w) } },
          "Delete", h("span", { class: "visually-hidden" }, ` webhook ${w.url}`))))));
    empty.hidden = hooks.length > 0;
    rows.closest("table").hidden = hooks.length === 0;
  }

  async function remove(hook) {
    const text = `No more events go to ${hook.url}; deliveries still waiting end without another attempt. This cannot be undone.`;
    if (!(await ask("Delete this webhook?", text, "Delete"))) return;
    fill(problem);
    try {
      await call("DELETE", `/account/webhooks/${encodeURIComponent(hook.id)}`);
      hooks = hooks.filter((w) => w !== hook);
      draw();
      say("The webhook is deleted.");
      form.querySelector("input").focus(); // its button is gone: the focus goes somewhere useful
    } catch (error) {
      fill(problem, error.message);
    }
  }

  draw();
}
