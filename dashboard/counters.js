// Every counter of the workspace in one read (GET /account/counters?details=true), then
// searched, sorted and shown a page of rows at a time: 10,000 counters filter and sort in a few
// milliseconds, and only PAGE_SIZE rows are ever in the document.

import { call } from "/dashboard/api.js";
import { fill, h, link, say } from "/dashboard/dom.js";

const PAGE_SIZE = 50;

const COLUMNS = [
  { id: "name", title: "Counter", value: (c) => c.name, text: true },
  { id: "value", title: "Value", value: (c) => c.value },
  { id: "up", title: "Up today", value: (c) => c.today.up },
  { id: "down", title: "Down today", value: (c) => c.today.down },
  { id: "visibility", title: "Visibility", value: (c) => c.visibility, text: true },
  { id: "bounds", title: "Bounds", value: (c) => bounds(c), text: true, scope: "admin" },
  { id: "billing", title: "Billing", value: (c) => billing(c), text: true, scope: "admin" },
  { id: "description", title: "Description", value: (c) => c.description, text: true },
];

function bounds(c) {
  if (c.lower_bound === null && c.upper_bound === null) return "";
  return `${c.lower_bound ?? "−∞"} … ${c.upper_bound ?? "+∞"}`;
}

function billing(c) {
  return c.billing ? `${c.billing.amount} ¢ per ${c.billing.threshold}` : "";
}

export async function show(ctx, main) {
  const columns = COLUMNS.filter((col) => !col.scope || ctx.can(col.scope));
  const view = { rows: [], shown: [], sort: "name", descending: false, page: 0, query: "" };
  const search = h("input", { id: "search", type: "search", autocomplete: "off" });
  const count = h("p", { class: "hint", id: "counter-count", "aria-live": "polite" });
  const body = h("tbody");
  const pager = h("nav", { class: "pager", "aria-label": "Pages of counters" });
  const heads = columns.map((col) =>
    h(
      "th",
      { scope: "col", "data-column": col.id },
      h("button", { type: "button", class: "sort", on: { click: () => sortBy(col.id) } }, col.title),
    ),
  );
  let etag = null;

  fill(
    main,
    h(
      "div",
      { class: "title" },
      h("h1", {}, "Counters"),
      ctx.can("admin") ? link("#/setup", "Set up a counter") : null,
    ),
    h(
      "div",
      { class: "row tools" },
      h("label", { for: "search" }, "Search"),
      search,
      h("button", { type: "button", on: { click: () => load() } }, "Refresh"),
    ),
    count,
    h("div", { class: "scroll" }, h("table", { id: "counters" }, h("thead", {}, h("tr", {}, heads)), body)),
    pager,
  );
  search.addEventListener("input", () => {
    view.query = search.value.trim().toLowerCase();
    view.page = 0;
    arrange();
  });

  function sortBy(id) {
    view.descending = view.sort === id ? !view.descending : id !== "name";
    view.sort = id;
    arrange();
  }

  function arrange() {
    const col = columns.find((c) => c.id === view.sort);
    const q = view.query;
    const rows = q
      ? view.rows.filter((c) => c.name.toLowerCase().includes(q) || c.description.toLowerCase().includes(q))
      : view.rows.slice();
    const sign = view.descending ? -1 : 1;
    rows.sort((a, b) => {
      const x = col.value(a);
      const y = col.value(b);
      const order = col.text ? String(x).localeCompare(String(y)) : x - y;
      return sign * (order || a.name.localeCompare(b.name));
    });
    view.shown = rows;
    for (const th of heads) {
      const sorted = th.dataset.column === view.sort;
      th.setAttribute("aria-sort", sorted ? (view.descending ? "descending" : "ascending") : "none");
    }
    draw();
  }

  function draw() {
    const pages = Math.max(1, Math.ceil(view.shown.length / PAGE_SIZE));
    view.page = Math.min(view.page, pages - 1);
    const slice = view.shown.slice(view.page * PAGE_SIZE, (view.page + 1) * PAGE_SIZE);
    fill(
      body,
      slice.map((c) =>
        h(
          "tr",
          {},
          columns.map((col) =>
            col.id === "name"
              ? h("th", { scope: "row" }, link(`#/counter/${encodeURIComponent(c.name)}`, c.name))
              : h("td", { class: col.text ? null : "number" }, String(col.value(c))),
          ),
        ),
      ),
    );
    const total = view.rows.length;
    fill(
      count,
      view.query
        ? `${view.shown.length} of ${total} counters match`
        : `${total} counter${total === 1 ? "" : "s"}`,
    );
    if (!total) fill(body, h("tr", {}, h("td", { colspan: columns.length }, "No counters yet.")));
    fill(
      pager,
      h("button", { type: "button", disabled: view.page === 0, on: { click: () => turn(-1) } }, "Previous"),
      h("span", {}, `Page ${view.page + 1} of ${pages}`),
      h("button", { type: "button", disabled: view.page >= pages - 1, on: { click: () => turn(1) } }, "Next"),
    );
  }

  function turn(step) {
    view.page += step;
    draw();
  }

  async function load() {
    const answer = await call("GET", "/account/counters?details=true", { etag });
    if (answer.status === 304) return say("Counters are up to date.");
    etag = answer.etag;
    view.rows = Object.entries(answer.body.details).map(([name, c]) => ({ name, ...c }));
    arrange();
    say("");
  }

  await load();
}
