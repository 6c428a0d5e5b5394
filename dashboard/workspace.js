// The workspace (admin): its counters' default visibility, and its rate-limit policy, which
// only the operator sets (PUT /admin/workspaces/{workspace}/rate-limit with the admin token).

import { call } from "/dashboard/api.js";
import { field, fill, h, say, showFieldErrors } from "/dashboard/dom.js";

export async function show(ctx, main) {
  const settings = (await call("GET", "/account/settings")).body;
  const visibility = h("select", {},
    h("option", { value: "private" }, "private"),
    h("option", { value: "public" }, "public"));
  visibility.value = settings.default_visibility;
  const problem = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    { class: "card", id: "workspace-settings", "aria-labelledby": "visibility-title" },
    h("h2", { id: "visibility-title" }, "Default visibility"),
    field("Counters without a visibility of their own are", visibility, {
      name: "default_visibility",
      hint: "Public counters can be read, upped and downed by anyone; billed counters never take an anonymous change.",
    }),
    problem,
    h("button", { type: "submit" }, "Save"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await call("PUT", "/account/settings", { body: { default_visibility: visibility.value } });
      showFieldErrors(form, null, problem);
      say("The default visibility is saved.");
    } catch (error) {
      showFieldErrors(form, error, problem);
    }
  });
  const limit = settings.rate_limit;
  fill(
    main,
    h("h1", {}, `Workspace ${settings.workspace}`),
    form,
    h("section", { class: "card", "aria-labelledby": "limit-title" },
      h("h2", { id: "limit-title" }, "Rate limit"),
      h("p", { id: "rate-limit" }, limit
        ? `${limit.quota} requests per ${limit.window} s, per key and path (this workspace's own policy).`
        : "600 requests per 60 s, per key and path (the default policy)."),
      h("p", { class: "hint" }, "Only the operator of this tally changes it, with the admin token."),
    ),
  );
}
