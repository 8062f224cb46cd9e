// The tenant's default routing, used by sends with priority "high".
import { ApiError, get, put } from "../api.js";
import { can } from "../session.js";
import { field, h, onSubmit, page, select, showError, time } from "../ui.js";

export async function render(main) {
  const slot = h("div");
  let current = null;
  try {
    current = await get("/api/v1/routing/default");
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) {
      page(main, "Default routing", h("p", { class: "error" }, error.message));
      return;
    }
  }
  const r = (current && current.routing) || { channels: [], success_on: "delivered", step_timeout: "60s" };
  const state = current
    ? h("p", {}, `Channels ${r.channels.join(" → ")}, success on ${r.success_on}, step timeout ${r.step_timeout}; updated `, time(current.updated_at), ".")
    : h("p", { class: "notice" }, "No default routing yet: sends with priority \"high\" and no channels are refused until you set one.");
  const form = onSubmit(h("form", { class: "stack", "aria-label": "Default routing" },
    field("Channels, in order", h("input", { name: "channels", type: "text", required: true, value: r.channels.join(", ") }), "Comma-separated, e.g. sms, email."),
    field("Success on", select("success_on", [["delivered", "delivered (receipt confirmed)"], ["sent", "sent (provider accepted)"]], r.success_on)),
    field("Step timeout", h("input", { name: "step_timeout", type: "text", value: r.step_timeout }), "A duration from 1s to 24h, e.g. 60s or 2m."),
    h("button", { type: "submit" }, "Save default routing")),
  async ({ channels, success_on, step_timeout }) => {
    showError(slot, null);
    try {
      await put("/api/v1/routing/default", {
        strategy: "fallback", success_on, step_timeout,
        channels: channels.split(",").map((c) => c.trim()).filter(Boolean),
      });
      await render(main);
    } catch (error) {
      showError(slot, error);
    }
  });
  page(main, "Default routing", state, slot, can("write") ? form : "");
}
