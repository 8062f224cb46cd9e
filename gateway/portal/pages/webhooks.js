// Status webhooks to the tenant's own endpoints: register (the signing secret
// shown once), list, and each endpoint's delivery attempts, with rotate,
// enable, replay and delete.
import { del, get, post, query } from "../api.js";
import { can, navigate } from "../session.js";
import { announce, badge, copyButton, field, h, onSubmit, page, showError, table, time } from "../ui.js";
import { Pager } from "./common.js";

const EVENT_TYPES = ["delivery.queued", "delivery.sent", "delivery.delivered", "delivery.failed",
  "bulk.completed", "alert.fired", "alert.resolved"];
const enc = encodeURIComponent;

function secretBox(secret) {
  return h("section", { class: "secret", "aria-labelledby": "secret-warning" },
    h("p", { id: "secret-warning" }, h("strong", {}, "This signing secret will not be shown again."),
      " Verify each request's webhook-signature header with it (Standard Webhooks)."),
    h("code", { id: "webhook-secret" }, secret), copyButton(secret, "Copy secret"));
}

function state(w) {
  return w.enabled ? badge("active") : [badge("failed"), ` disabled ${w.disabled_reason || ""}`];
}

export async function render(main) {
  const slot = h("div");
  const created = h("div");
  const tbody = h("tbody");
  const list = table("Endpoints Clarion posts signed status events to", ["Endpoint", "Description", "Events", "State", "Created"], []);
  list.querySelector("tbody").replaceWith(tbody);
  const pagerSlot = h("div");
  const paging = new Pager(() => load().catch((error) => showError(slot, error)));
  async function load() {
    const data = await get(`/api/v1/webhooks${query({ page_token: paging.token })}`);
    tbody.replaceChildren(...(data.webhooks || []).map((w) => h("tr", {},
      h("td", {}, h("a", { href: `/portal/webhooks/${enc(w.webhook_id)}` }, w.url)), h("td", {}, w.description || ""),
      h("td", {}, (w.event_types || []).join(", ")), h("td", {}, state(w)), h("td", {}, time(w.created_at)))));
    if (!tbody.rows.length) tbody.append(h("tr", {}, h("td", { colspan: 5 }, "No webhooks yet.")));
    pagerSlot.replaceChildren(paging.controls(data.next_page_token));
  }
  const form = onSubmit(h("form", { class: "stack", "aria-label": "Register a webhook" },
    field("Endpoint URL", h("input", { name: "url", type: "url", required: true, placeholder: "https://example.com/clarion-events" })),
    field("Description", h("input", { name: "description", type: "text" })),
    h("fieldset", {}, h("legend", {}, "Events"), EVENT_TYPES.map((t) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "event_types", value: t, checked: t.startsWith("delivery.") }), ` ${t}`))),
    h("button", { type: "submit" }, "Register webhook")),
  async () => {
    showError(slot, null);
    const values = new FormData(form);
    try {
      const result = await post("/api/v1/webhooks", {
        url: values.get("url"), description: values.get("description"), event_types: values.getAll("event_types"),
      });
      created.replaceChildren(secretBox(result.secret));
      await load();
    } catch (error) {
      showError(slot, error);
    }
  });
  page(main, "Webhooks", slot, created, list, pagerSlot, can("write") ? [h("h2", {}, "Register a webhook"), form] : "");
  await load().catch((error) => showError(slot, error));
}

export async function detail(main, ctx) {
  const id = ctx.params[0];
  const slot = h("div");
  const created = h("div");
  const summary = h("div");
  const attempts = h("div");
  page(main, "Webhook", slot, created, summary, h("h2", {}, "Delivery attempts"), attempts);
  const paging = new Pager(() => loadAttempts().catch((error) => showError(slot, error)));
  async function act(fn) {
    showError(slot, null);
    try {
      await fn();
      await load();
    } catch (error) {
      showError(slot, error);
    }
  }
  function replay(eventId) {
    const button = h("button", { type: "button", class: "secondary", "aria-label": `Replay event ${eventId}` }, "Replay");
    button.addEventListener("click", () => act(async () => {
      await post(`/api/v1/webhooks/${enc(id)}/events/${enc(eventId)}:replay`);
      announce(`Event ${eventId} queued again`);
    }));
    return button;
  }
  async function loadAttempts() {
    const data = await get(`/api/v1/webhooks/${enc(id)}/attempts${query({ page_size: 50, page_token: paging.token })}`);
    const rows = (data.attempts || []).map((a) => h("tr", {}, h("td", {}, time(a.attempted_at)), h("td", {}, h("code", {}, a.event_type)),
      h("td", {}, String(a.attempt)), h("td", {}, a.http_status ? String(a.http_status) : "—"), h("td", {}, a.error || ""),
      h("td", {}, `${a.duration_ms} ms`), h("td", {}, a.next_retry_at ? time(a.next_retry_at) : ""),
      h("td", {}, can("write") ? replay(a.event_id) : "")));
    attempts.replaceChildren(rows.length
      ? [table("Newest first", ["When", "Event", "Attempt", "HTTP status", "Error", "Took", "Next retry", ""], rows), paging.controls(data.next_page_token)]
      : h("p", {}, "No attempts yet: events are sent as your notifications change status."));
  }
  async function load() {
    const w = await get(`/api/v1/webhooks/${enc(id)}`);
    const actions = [];
    if (can("write")) {
      const rotate = h("button", { type: "button", class: "secondary" }, "Rotate secret");
      rotate.addEventListener("click", () => act(async () => created.replaceChildren(secretBox((await post(`/api/v1/webhooks/${enc(id)}:rotate-secret`)).secret))));
      actions.push(rotate);
      if (!w.enabled) {
        const enable = h("button", { type: "button" }, "Enable again");
        enable.addEventListener("click", () => act(() => post(`/api/v1/webhooks/${enc(id)}:enable`)));
        actions.push(enable);
      }
      const remove = h("button", { type: "button", class: "danger" }, "Delete webhook");
      remove.addEventListener("click", async () => {
        if (!confirm(`Delete the webhook to ${w.url}?`)) return;
        await act(() => del(`/api/v1/webhooks/${enc(id)}`));
        navigate("/portal/webhooks");
      });
      actions.push(remove);
    }
    summary.replaceChildren(table(w.url, ["Description", "Events", "State", "Created", "Old secret valid until"], [h("tr", {},
      h("td", {}, w.description || ""), h("td", {}, (w.event_types || []).join(", ")), h("td", {}, state(w)), h("td", {}, time(w.created_at)),
      h("td", {}, w.previous_secret_expires_at ? time(w.previous_secret_expires_at) : "—"))]),
    h("div", { class: "actions" }, actions));
    await loadAttempts();
  }
  await load().catch((error) => showError(slot, error));
}
