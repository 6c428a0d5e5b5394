// Invoice items, newest first, 50 at a time ("Show more" follows next_cursor), with totals per
// month over the items shown, and a form to add one (write scope).

import { call, pages } from "/dashboard/api.js";
import { cents, field, fill, h, integer, say, showFieldErrors, table, when } from "/dashboard/dom.js";

export async function show(ctx, main) {
  const state = pages("/account/invoice-items");
  const rows = h("tbody");
  const months = h("tbody");
  const count = h("p", { class: "hint", id: "items-count" });
  const more = h("button", { type: "button", id: "more", on: { click: () => load() } }, "Show more");

  fill(
    main,
    h("h1", {}, "Invoice items"),
    ctx.can("write") ? addForm() : null,
    h("section", { class: "card", "aria-labelledby": "months-title" },
      h("h2", { id: "months-title" }, "Totals per month"),
      table({ id: "months" }, ["Month", ["Items", "number"], ["Total", "number"]], months),
    ),
    h("section", { class: "card", "aria-labelledby": "list-title" },
      h("h2", { id: "list-title" }, "Items"),
      count,
      table({ id: "items", class: "stack" }, ["When", "Description", "Source", ["Amount", "number"]], rows),
      more,
    ),
  );

  function draw() {
    fill(rows, state.items.map((i) => h("tr", {},
      h("td", { "data-label": "When" }, when(i.timestamp)),
      h("td", { "data-label": "Description" }, i.description),
      h("td", { "data-label": "Source" }, i.source),
      h("td", { "data-label": "Amount", class: "number" }, cents(i.amount)))));
    const byMonth = new Map();
    for (const i of state.items) {
      const month = i.timestamp.slice(0, 7); // UTC, as the items' times are
      const sum = byMonth.get(month) || { n: 0, amount: 0 };
      byMonth.set(month, { n: sum.n + 1, amount: sum.amount + i.amount });
    }
    fill(months, [...byMonth].map(([month, sum]) => h("tr", {},
      h("th", { scope: "row" }, month),
      h("td", { class: "number" }, String(sum.n)),
      h("td", { class: "number" }, cents(sum.amount)))));
    fill(count, state.items.length < state.total
      ? `The latest ${state.items.length} of ${state.total} items (totals are of these).`
      : `${state.total} item${state.total === 1 ? "" : "s"}.`);
    more.hidden = state.done;
  }

  async function load(again = false) {
    await state.more(again);
    draw();
  }

  function addForm() {
    const amount = h("input", { inputmode: "numeric", autocomplete: "off" });
    const description = h("input", { autocomplete: "off", maxlength: 500 });
    const problem = h("p", { class: "error", role: "alert" });
    const form = h(
      "form",
      { class: "card", id: "add-item", novalidate: true, "aria-labelledby": "add-title" },
      h("h2", { id: "add-title" }, "Add an item"),
      h("div", { class: "row" },
        field("Amount (cents)", amount, { name: "amount", hint: "Negative to offset an earlier item." }),
        field("Description", description, { name: "description" }),
      ),
      problem,
      h("button", { type: "submit" }, "Add item"),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const n = integer(amount.value);
      try {
        await call("POST", "/account/invoice-items", {
          body: { amount: n === null ? amount.value : n, description: description.value },
        });
        showFieldErrors(form, null, problem);
        amount.value = description.value = "";
        say("Invoice item added.");
        await load(true);
      } catch (error) {
        showFieldErrors(form, error, problem);
      }
    });
    return form;
  }

  await load(true);
}
