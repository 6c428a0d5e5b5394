// Set up a counter (create or edit): PUT /account/counters/{name}/settings with every field, so
// what the form shows is what is stored. The API's refusals land on the fields they name (an
// alert's on its row: "alerts.1.at" under the second alert's level).

import { call, path } from "/dashboard/api.js";
import { field, fill, group, h, integer, say, showFieldErrors } from "/dashboard/dom.js";

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const MAX_ALERTS = 10;
const ALERT_KINDS = [
  ["at", "at value"],
  ["at_percent_of_upper_bound", "% of upper bound"],
];

function numberInput(value) {
  return h("input", { inputmode: "numeric", autocomplete: "off", value: value ?? "" });
}

// "" is none (null); a whole number is itself; anything else is sent as written, for the API
// to refuse on its field.
function optional(text) {
  const trimmed = text.trim();
  if (!trimmed) return null;
  const n = integer(trimmed);
  return n === null ? trimmed : n;
}

// Rows of alerts, each a kind and a level, added and removed by button. The rows are drawn again
// (labels and API names renumbered) after each change, so the n-th row is always the API's
// alerts.(n-1), and the focus goes to the row that takes the place of a removed one.
function alertsEditor(alerts) {
  let list = alerts.map((a) => {
    const [kind] = Object.keys(a);
    return { kind, level: String(a[kind]) };
  });
  const rows = h("div", { class: "alert-rows" });
  const add = h("button", { type: "button", class: "quiet", id: "add-alert", on: { click: () => redraw(list.length, () => list.push({ kind: "at", level: "" })) } }, "Add an alert");

  function read() {
    list = [...rows.children].map((row) => ({
      kind: row.querySelector("select").value,
      level: row.querySelector("input").value,
    }));
  }

  function redraw(focus, edit) {
    read();
    edit();
    draw();
    (rows.children[focus]?.querySelector("select") || add).focus();
  }

  function draw() {
    fill(rows, list.map((alert, i) => {
      const n = i + 1;
      const kind = h("select", {}, ALERT_KINDS.map(([value, text]) => h("option", { value }, text)));
      kind.value = alert.kind;
      const level = numberInput(alert.level);
      return h("div", { class: "row alert-row" },
        field(`Alert ${n}`, kind),
        field(["Level", h("span", { class: "visually-hidden" }, ` of alert ${n}`)], level, { name: `alerts.${i}` }),
        h("button", { type: "button", class: "quiet", on: { click: () => redraw(i, () => list.splice(i, 1)) } },
          "Remove", h("span", { class: "visually-hidden" }, ` alert ${n}`)));
    }));
    add.hidden = list.length >= MAX_ALERTS;
  }

  draw();
  return {
    element: group("Alerts", [rows, add], {
      name: "alerts",
      id: "alerts",
      hint: `Each publishes tally.counter.alert to your webhooks when the value rises to its level (again only after it went back below). A percentage is of the upper bound, rounded up. Up to ${MAX_ALERTS}.`,
    }),
    // What the API takes (none is null: it clears them); an empty level is sent as "", for the
    // API to refuse on its row.
    value() {
      read();
      return list.length ? list.map((a) => ({ [a.kind]: optional(a.level) ?? "" })) : null;
    },
  };
}

export async function show(ctx, main, name) {
  const editing = name !== null;
  const current = editing
    ? (await call("GET", `${path.counter(name)}/settings`)).body
    : { visibility: null, description: "", lower_bound: null, upper_bound: null, billing: null, alerts: [] };
  const workspace = (await call("GET", "/account/settings")).body;

  const nameInput = h("input", { autocomplete: "off", required: true, value: name || "", readonly: editing });
  const visibility = h(
    "select",
    {},
    h("option", { value: "" }, `the workspace's (${workspace.default_visibility})`),
    h("option", { value: "private" }, "private"),
    h("option", { value: "public" }, "public"),
  );
  // The settings answer the visibility that applies; the form offers "the workspace's" only
  // for a counter that follows it (it cannot tell the two apart when they agree).
  visibility.value = editing ? current.visibility : "";
  const description = h("textarea", { maxlength: 100, rows: 2 }, current.description || "");
  const lower = numberInput(current.lower_bound);
  const upper = numberInput(current.upper_bound);
  const billed = h("input", { type: "checkbox", id: "billed", checked: Boolean(current.billing) });
  const threshold = numberInput(current.billing?.threshold);
  const amount = numberInput(current.billing?.amount);
  const billingText = h("input", { autocomplete: "off", maxlength: 100, value: current.billing?.description ?? "" });
  const billingFields = h(
    "div",
    { class: "nested", hidden: !billed.checked },
    field("Threshold (units)", threshold, { name: "billing.threshold", hint: "Each time the value reaches this many, it is billed." }),
    field("Amount per threshold (cents)", amount, { name: "billing.amount" }),
    field("Invoice item description", billingText, { name: "billing.description" }),
  );
  billed.addEventListener("change", () => { billingFields.hidden = !billed.checked; });
  const alerts = alertsEditor(current.alerts || []);
  const problem = h("p", { class: "error", role: "alert", id: "setup-error" });
  const form = h(
    "form",
    { class: "card", id: "setup", novalidate: true },
    field("Name", nameInput, { name: "name", hint: editing ? null : "Letters, digits, _ . - (up to 128)." }),
    field("Visibility", visibility, { name: "visibility", hint: "Public counters can be read, upped and downed by anyone." }),
    field("Description", description, { name: "description" }),
    h("div", { class: "row" },
      field("Lower bound", lower, { name: "lower_bound", hint: "Empty: none." }),
      field("Upper bound", upper, { name: "upper_bound", hint: "Empty: none." }),
    ),
    h("div", { class: "check" }, billed, h("label", { for: "billed" }, "Bill this counter")),
    billingFields,
    alerts.element,
    problem,
    h("div", { class: "row" },
      h("button", { type: "submit" }, editing ? "Save" : "Create"),
      h("a", { href: editing ? `#/counter/${encodeURIComponent(name)}` : "#/counters" }, "Cancel"),
    ),
  );
  fill(main, h("h1", {}, editing ? `Set up ${name}` : "Set up a counter"), form);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const target = nameInput.value.trim();
    if (!NAME.test(target)) {
      return showFieldErrors(form, { message: "Check the name.", fields: { name: "Letters, digits, _ . - (up to 128), starting with a letter or digit." } }, problem);
    }
    const body = {
      visibility: visibility.value || null,
      description: description.value,
      lower_bound: optional(lower.value),
      upper_bound: optional(upper.value),
      billing: billed.checked
        ? { threshold: optional(threshold.value), amount: optional(amount.value), description: billingText.value }
        : null,
      alerts: alerts.value(),
    };
    try {
      await call("PUT", `${path.counter(target)}/settings`, { body });
      say(`${target} is set up.`);
      location.hash = `#/counter/${encodeURIComponent(target)}`;
    } catch (error) {
      showFieldErrors(form, error, problem);
    }
  });
  (editing ? visibility : nameInput).focus();
}
