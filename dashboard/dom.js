// Building the page: every value from the API becomes a text node or a property, never markup,
// so a counter described as "<img src=x onerror=alert(1)>" shows as those characters.

const PROPERTIES = new Set(["value", "checked", "disabled", "hidden", "selected", "open"]);

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "on") {
      for (const [event, listener] of Object.entries(value)) el.addEventListener(event, listener);
    } else if (name === "class") {
      el.className = value;
    } else if (PROPERTIES.has(name)) {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let quiet = null;
export function say(message) {
  fill(document.getElementById("status"), message);
  clearTimeout(quiet);
  if (message) quiet = setTimeout(() => fill(document.getElementById("status")), 5000);
}

// A labelled control: the label names it, a hint and an error (role=alert) describe it.
let controls = 0;
export function field(label, control, { hint, name } = {}) {
  const id = control.id || `field-${++controls}`;
  control.id = id;
  const error = h("p", { class: "field-error", id: `${id}-error`, role: "alert" });
  const described = [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(" ");
  control.setAttribute("aria-describedby", described);
  if (name) control.dataset.field = name;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
    error,
  );
}

// A group of controls (checkboxes, rows of fields) under a legend: named like a field, so an
// API refusal of the whole group ("events", "alerts") lands under it.
export function group(legend, children, { hint, name, id } = {}) {
  const gid = id || `field-${++controls}`;
  return h(
    "fieldset",
    {
      id: gid,
      class: "group",
      tabindex: -1, // focusable when it is what the API refused
      "data-field": name,
      "aria-describedby": [hint ? `${gid}-hint` : null, `${gid}-error`].filter(Boolean).join(" "),
    },
    h("legend", {}, legend),
    hint ? h("p", { class: "hint", id: `${gid}-hint` }, hint) : null,
    children,
    h("p", { class: "field-error", id: `${gid}-error`, role: "alert" }),
  );
}

// The control an API field name belongs to: the one named so, else the nearest named group
// ("alerts.1.at" lands on the control named "alerts.1", else on "alerts").
function named(form, name) {
  for (let n = name; n; n = n.includes(".") ? n.slice(0, n.lastIndexOf(".")) : "") {
    const control = form.querySelector(`[data-field="${CSS.escape(n)}"]`);
    if (control) return control;
  }
  return null;
}

// The API's 400 names the fields it refused ("billing.amount"): each message goes under the
// control of that name, and what no control names goes to `rest`.
export function showFieldErrors(form, error, rest) {
  for (const control of form.querySelectorAll("[data-field]")) {
    control.removeAttribute("aria-invalid");
    fill(document.getElementById(`${control.id}-error`));
  }
  const fields = (error && error.fields) || {};
  const unplaced = [];
  for (const [name, message] of Object.entries(fields)) {
    const control = named(form, name);
    if (control) {
      const box = document.getElementById(`${control.id}-error`);
      control.setAttribute("aria-invalid", "true");
      fill(box, box.textContent ? `${box.textContent}; ${message}` : message);
    } else {
      unplaced.push(`${name}: ${message}`);
    }
  }
  fill(rest, error ? [error.message, unplaced.length ? ` (${unplaced.join("; ")})` : ""] : []);
  const first = form.querySelector("[aria-invalid=true]");
  if (first) first.focus();
}

// A secret shown this once (a new key's, a new webhook's), with a copy button and a way to
// hide it once stored.
export function showSecret(box, intro, value) {
  const secret = h("code", { id: "secret" }, value);
  const copied = h("span", { class: "hint", "aria-live": "polite" });
  async function toClipboard() {
    try {
      await navigator.clipboard.writeText(value);
      fill(copied, "Copied.");
    } catch {
      getSelection().selectAllChildren(secret); // no clipboard here: selected to copy
      fill(copied, "Selected: copy it with your keyboard.");
    }
  }
  const copy = h("button", { type: "button", id: "copy", on: { click: toClipboard } }, "Copy");
  fill(
    box,
    h("p", {}, intro),
    h("div", { class: "secret" }, secret, copy, copied),
    h("button", { type: "button", class: "quiet", on: { click: () => fill(box) } }, "I have stored it: hide it"),
  );
  copy.focus(); // a keyboard user is at the one thing to do next
}

// A table in a box that scrolls sideways; a column is its title, or [title, class] ("number"
// right-aligns it).
export function table(props, columns, body) {
  const heads = columns.map((column) => {
    const [title, kind] = Array.isArray(column) ? column : [column, null];
    return h("th", { scope: "col", class: kind }, title);
  });
  return h("div", { class: "scroll" }, h("table", props, h("thead", {}, h("tr", {}, heads)), body));
}

export function ask(title, text, action) {
  const dialog = document.getElementById("confirm");
  fill(document.getElementById("confirm-title"), title);
  fill(document.getElementById("confirm-text"), text);
  fill(document.getElementById("confirm-ok"), action);
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

export function integer(text) {
  const trimmed = String(text).trim();
  return /^[+-]?\d+$/.test(trimmed) ? Number(trimmed) : null;
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

export function cents(amount) {
  const sign = amount < 0 ? "−" : "";
  return `${sign}${(Math.abs(amount) / 100).toFixed(2)}`;
}

export function link(href, text) {
  return h("a", { href }, text);
}
