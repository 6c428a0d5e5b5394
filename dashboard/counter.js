// One counter: its value and totals, live (polled with If-None-Match: an unchanged counter
// costs a 304, and a hidden tab polls nothing), its history and all-time charts, the invoice
// items of its billing, and the buttons a write key may use.

import { call, path } from "/dashboard/api.js";
import { categoryChart, timeChart } from "/dashboard/charts.js";
import { ask, cents, fill, h, integer, link, say, when } from "/dashboard/dom.js";

export const POLL_MS = 5000;
const AFTER_CHANGE_MS = [1500, 4000]; // history lands ~1.3 s after a change (a stream)
const GROUPS = ["hour", "day", "week", "month"];
const HOURS = Array.from({ length: 24 }, (_, i) => String(i).padStart(2, "0"));
const WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
const QUARTERS = ["q1", "q2", "q3", "q4"];

function zone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

function series(buckets, labels) {
  return [labels.map((_, i) => i), labels.map((l) => buckets[l].up), labels.map((l) => buckets[l].down)];
}

// An alert as set, and the value it fires at (a percentage of the upper bound, rounded up, fires
// at none while there is no upper bound above 0).
function alertText(alert, upper) {
  if ("at" in alert) return `at ${alert.at.toLocaleString()}`;
  const percent = alert.at_percent_of_upper_bound;
  const level = upper > 0 ? `= ${Math.ceil((upper * percent) / 100).toLocaleString()}` : "never: no upper bound above 0";
  return `at ${percent} % of the upper bound (${level})`;
}

export async function show(ctx, main, name) {
  const statsPath = `${path.v2(ctx.workspace, name)}/stats`;
  const state = { etag: null, group: "hour", tz: zone(), historyTag: null, counter: null, timers: [] };
  const value = h("p", { class: "value", id: "value", "aria-live": "polite" }, "…");
  const totals = h("dl", { class: "totals", id: "totals" });
  const message = h("p", { class: "error", id: "counter-error", role: "alert" });
  const caption = h("p", { class: "hint", id: "history-caption", "aria-live": "polite" });
  const historyBox = h("div", { class: "chart", id: "history-chart" });
  const temporal = {
    hours: h("div", { class: "chart", id: "hours-chart" }),
    weekdays: h("div", { class: "chart", id: "weekdays-chart" }),
    quarters: h("div", { class: "chart", id: "quarters-chart" }),
  };
  const settingsBox = h("dl", { class: "totals", id: "counter-settings" });
  const items = h("div", { id: "counter-items" });
  const charts = {}; // each a promise of its chart: the library loads with the first

  fill(
    main,
    h(
      "div",
      { class: "title" },
      h("h1", {}, name),
      ctx.can("admin") ? link(`#/setup/${encodeURIComponent(name)}`, "Set up") : null,
    ),
    h("p", { class: "description", id: "description" }),
    h("div", { class: "pair" },
      h("section", { class: "card", "aria-labelledby": "value-title" },
        h("h2", { id: "value-title", class: "label" }, "Value"),
        value,
        totals,
        ctx.can("write") ? actions() : null,
        message,
      ),
      ctx.can("admin") ? h("section", { class: "card", "aria-labelledby": "setup-title" },
        h("h2", { id: "setup-title" }, "Setup"), settingsBox) : null,
    ),
    h("section", { class: "card", "aria-labelledby": "history-title" },
      h("h2", { id: "history-title" }, "History"),
      groupPicker(),
      historyBox,
      caption,
    ),
    h("section", { class: "card", "aria-labelledby": "alltime-title" },
      h("h2", { id: "alltime-title" }, "All time, by hour, weekday and quarter (UTC)"),
      h("div", { class: "grid" },
        h("figure", {}, h("figcaption", {}, "Hours of the day"), temporal.hours),
        h("figure", {}, h("figcaption", {}, "Weekdays"), temporal.weekdays),
        h("figure", {}, h("figcaption", {}, "Quarters"), temporal.quarters),
      ),
    ),
    ctx.can("admin") ? h("section", { class: "card", "aria-labelledby": "items-title" },
      h("h2", { id: "items-title" }, "Invoice items from its billing"), items) : null,
  );

  function actions() {
    const amount = h("input", { id: "amount", inputmode: "numeric", autocomplete: "off", size: 8 });
    const change = (delta) => () => run(() => call("POST", `${path.counter(name)}/${delta}`));
    return h(
      "div",
      { class: "actions" },
      h("button", { type: "button", id: "up", on: { click: change(1) } }, "+1"),
      h("button", { type: "button", id: "down", on: { click: change(-1) } }, "−1"),
      h("label", { for: "amount" }, "Amount"),
      amount,
      h("button", { type: "button", id: "add", on: { click: () => withAmount(amount, "add") } }, "Add"),
      h("button", { type: "button", id: "set", on: { click: () => withAmount(amount, "set") } }, "Set"),
      h("button", { type: "button", id: "reset", class: "danger", on: { click: reset } }, "Reset"),
    );
  }

  async function withAmount(input, how) {
    const n = integer(input.value);
    if (n === null) {
      fill(message, "Amount must be a whole number, such as 5 or -3.");
      return input.focus();
    }
    if (how === "add") return run(() => call("POST", `${path.counter(name)}/${n}`));
    if (await ask(`Set ${name}?`, `Its value becomes ${n}, whatever it is now.`, "Set")) {
      return run(() => call("GET", `${path.v2(ctx.workspace, name)}/set?value=${n}`));
    }
  }

  async function reset() {
    if (await ask(`Reset ${name}?`, "Its value becomes 0. This cannot be undone.", "Reset")) {
      return run(() => call("DELETE", path.counter(name)));
    }
  }

  async function run(change) {
    fill(message);
    try {
      await change();
      say(`${name} changed.`);
      await poll();
    } catch (error) {
      fill(message, error.message);
    }
  }

  function groupPicker() {
    return h(
      "fieldset",
      { class: "row" },
      h("legend", {}, "Group by"),
      GROUPS.map((g) =>
        h(
          "label",
          { class: "choice" },
          h("input", {
            type: "radio",
            name: "group",
            value: g,
            checked: g === state.group,
            on: { change: () => { state.group = g; state.historyTag = null; history().catch((e) => fill(message, e.message)); } },
          }),
          g,
        ),
      ),
    );
  }

  async function drawCounter(data) {
    state.counter = data;
    fill(value, data.value.toLocaleString());
    fill(main.querySelector("#description"), data.description || "");
    fill(
      totals,
      h("dt", {}, "Up, all time"), h("dd", {}, data.up_count.toLocaleString()),
      h("dt", {}, "Down, all time"), h("dd", {}, data.down_count.toLocaleString()),
      h("dt", {}, "Today (UTC)"), h("dd", {}, `${data.stats.today.up} up, ${data.stats.today.down} down`),
      h("dt", {}, "This week"), h("dd", {}, `${data.stats.this_week.up} up, ${data.stats.this_week.down} down`),
      h("dt", {}, "Visibility"), h("dd", {}, data.visibility),
      h("dt", {}, "Changed"), h("dd", {}, when(data.updated_at)),
    );
    const t = data.stats.temporal;
    for (const [key, labels] of [["hours", HOURS], ["weekdays", WEEKDAYS], ["quarters", QUARTERS]]) {
      const shown = labels.map((l) => (key === "weekdays" ? l.slice(0, 3) : l));
      charts[key] ||= categoryChart(temporal[key], shown, series(t[key], labels));
      (await charts[key]).update(series(t[key], labels));
    }
  }

  async function settings() {
    const s = (await call("GET", `${path.counter(name)}/settings`)).body;
    const bound = (b) => (b === null ? "none" : b.toLocaleString());
    fill(
      settingsBox,
      h("dt", {}, "Lower bound"), h("dd", {}, bound(s.lower_bound)),
      h("dt", {}, "Upper bound"), h("dd", {}, bound(s.upper_bound)),
      h("dt", {}, "Billing"),
      h("dd", {}, s.billing
        ? `${cents(s.billing.amount)} (“${s.billing.description}”) per ${s.billing.threshold.toLocaleString()}`
        : "none"),
      h("dt", {}, "Alerts"),
      h("dd", { id: "counter-alerts" }, s.alerts.length
        ? h("ul", { class: "plain" }, s.alerts.map((a) => h("li", {}, alertText(a, s.upper_bound))))
        : "none"),
    );
    return s;
  }

  async function invoiceItems(billing) {
    if (!billing) return fill(items, h("p", { class: "hint" }, "No billing is set up for this counter."));
    const list = (await call("GET", "/account/invoice-items?limit=100")).body.list;
    // Billing writes the setting's description on each item: that is what ties them to it.
    const mine = list.filter((i) => i.source === "billing" && i.description === billing.description);
    fill(
      items,
      mine.length
        ? h("ul", { class: "items" }, mine.slice(0, 10).map((i) =>
            h("li", {}, h("span", {}, when(i.timestamp)), h("span", { class: "number" }, cents(i.amount)))))
        : h("p", { class: "hint" }, "No invoice item from its billing among the latest 100."),
      h("p", { class: "hint" }, link("#/invoices", "All invoice items")),
    );
  }

  async function history() {
    const query = `group_by=${state.group}&tz=${encodeURIComponent(state.tz)}`;
    let answer;
    try {
      answer = await call("GET", `${path.counter(name)}/history?${query}`, { etag: state.historyTag });
    } catch (error) {
      if (error.status === 400 && error.fields.tz && state.tz !== "UTC") {
        state.tz = "UTC"; // a zone tally cannot group by (not a whole number of hours from UTC)
        return history();
      }
      throw error;
    }
    if (answer.status === 304) return;
    state.historyTag = answer.etag;
    const points = answer.body.points;
    const data = [
      points.map((p) => Date.parse(p.at) / 1000),
      points.map((p) => p.up),
      points.map((p) => p.down),
    ];
    charts.history ||= timeChart(historyBox, data);
    (await charts.history).update(data);
    const up = data[1].reduce((a, b) => a + b, 0);
    const down = data[2].reduce((a, b) => a + b, 0);
    fill(caption, `${points.length} ${state.group}s to ${when(answer.body.to)} (${answer.body.tz}): ${up} up, ${down} down.`);
  }

  async function poll() {
    const answer = await call("GET", statsPath, { etag: state.etag });
    if (answer.status === 304) return;
    state.etag = answer.etag;
    await drawCounter(answer.body.data);
    await history();
    for (const ms of AFTER_CHANGE_MS) state.timers.push(setTimeout(() => history().catch(() => {}), ms));
    if (ctx.can("admin")) await invoiceItems((await settings()).billing);
  }

  try {
    await poll();
  } catch (error) {
    if (error.status !== 404) throw error;
    fill(value, "0");
    fill(message, "This counter was never changed or set up.");
  }
  const timer = setInterval(() => {
    if (!document.hidden) poll().catch((error) => fill(message, error.message));
  }, POLL_MS);
  return () => {
    clearInterval(timer);
    state.timers.forEach(clearTimeout);
    Object.values(charts).forEach(async (chart) => (await chart).destroy());
  };
}
