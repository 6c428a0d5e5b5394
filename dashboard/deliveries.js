// One webhook's deliveries (admin), newest first, 50 more at a time: each event's type, status,
// attempts, last answer and next attempt. While only the newest page is shown it is read again
// every few seconds (If-None-Match: unchanged, a 304), so a delivery's retries show as they go.

import { call, pages } from "/dashboard/api.js";
import { fill, h, link, table, when } from "/dashboard/dom.js";

const POLL_MS = 5000;

export async function show(ctx, main, id) {
  const hook = (await call("GET", "/account/webhooks")).body.list.find((w) => w.id === id);
  if (!hook) {
    fill(main, h("h1", {}, "Deliveries"),
      h("p", { class: "error", role: "alert" }, "No such webhook in this workspace (it may have been deleted)."),
      h("p", {}, link("#/webhooks", "All webhooks")));
    return null;
  }
  const state = pages(`/account/webhooks/${encodeURIComponent(id)}/deliveries`);
  const rows = h("tbody");
  const count = h("p", { class: "hint", id: "deliveries-count", "aria-live": "polite" });
  const problem = h("p", { class: "error", role: "alert", id: "deliveries-error" });
  let older = false; // older pages shown: the reader's, not redrawn by the poll
  const more = h("button", { type: "button", id: "more", on: { click: () => { older = true; load(() => state.more()); } } }, "Show more");
  const refresh = h("button", { type: "button", class: "quiet", id: "refresh", on: { click: () => { older = false; load(() => state.more(true)); } } }, "Refresh");

  fill(
    main,
    h("p", { class: "crumbs" }, link("#/webhooks", "Webhooks"), " ›"),
    h("h1", {}, "Deliveries"),
    h("dl", { class: "totals", id: "webhook" },
      h("dt", {}, "To"), h("dd", {}, h("code", { class: "url" }, hook.url)),
      h("dt", {}, "Events"), h("dd", {}, hook.events.join(", ")),
      hook.description ? [h("dt", {}, "Description"), h("dd", {}, hook.description)] : null,
    ),
    h("section", { class: "card", "aria-labelledby": "deliveries-title" },
      h("div", { class: "title" }, h("h2", { id: "deliveries-title" }, "Newest first"), refresh),
      problem,
      count,
      table(
        { id: "deliveries", class: "stack" },
        ["Event", "Type", "Status", ["Attempts", "number"], "Last attempt", ["Last status", "number"], "Last error", "Next attempt"],
        rows,
      ),
      more,
    ),
  );

  function draw() {
    fill(rows, state.items.map((d) => h("tr", { "data-event": d.event_id, "data-status": d.status },
      h("th", { scope: "row" }, h("code", {}, d.event_id)),
      h("td", { "data-label": "Type", class: "nowrap" }, d.type),
      h("td", { "data-label": "Status", class: "nowrap" }, h("span", { class: `status-${d.status}` }, d.status)),
      h("td", { "data-label": "Attempts", class: "number" }, String(d.attempts)),
      h("td", { "data-label": "Last attempt" }, when(d.last_attempt_at)),
      h("td", { "data-label": "Last status", class: "number" }, d.last_status_code ?? ""),
      h("td", { "data-label": "Last error" }, d.last_error ?? ""),
      h("td", { "data-label": "Next attempt" }, d.next_attempt_at ? when(d.next_attempt_at) : "none"))));
    fill(count, state.items.length
      ? `${state.items.length} deliver${state.items.length === 1 ? "y" : "ies"} shown (kept 30 days).`
      : "Nothing delivered yet: an event of a type it takes shows here within seconds.");
    more.hidden = state.done;
    rows.closest("table").hidden = state.items.length === 0;
  }

  async function load(read) {
    fill(problem);
    try {
      if (await read()) draw();
    } catch (error) {
      fill(problem, error.message);
    }
  }

  await state.more(true);
  draw();
  const timer = setInterval(() => {
    if (!document.hidden && !older) load(() => state.fresh());
  }, POLL_MS);
  return () => clearInterval(timer);
}
