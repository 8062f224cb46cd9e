// API keys: create (the key shown once), name, prefix, last use, revoke. Owners only write.
import { del, get, post, query } from "../api.js";
import { can } from "../session.js";
import { announce, badge, copyButton, field, h, onSubmit, page, showError, table, time } from "../ui.js";
import { Pager } from "./common.js";

export async function render(main) {
  const slot = h("div");
  const created = h("div");
  const tbody = h("tbody");
  const list = table("Keys authenticate your backends (header X-API-Key). Newest first.",
    ["Name", "Prefix", "Created", "Last used", "State", can("admin") ? "Actions" : ""].filter(Boolean), []);
  list.querySelector("tbody").replaceWith(tbody);
  const pagerSlot = h("div");
  const paging = new Pager(() => load().catch((error) => showError(slot, error)));

  async function load() {
    const data = await get(`/api/v1/api-keys${query({ page_size: 50, page_token: paging.token })}`);
    tbody.replaceChildren(...(data.api_keys || []).map(row));
    pagerSlot.replaceChildren(paging.controls(data.next_page_token));
  }

  function row(key) {
    const cells = [
      h("td", {}, key.name),
      h("td", {}, h("code", {}, key.prefix)),
      h("td", {}, time(key.created_at)),
      h("td", {}, key.last_used_at ? time(key.last_used_at) : "never"),
      h("td", {}, key.revoked_at ? [badge("revoked"), " ", time(key.revoked_at)] : badge("active")),
    ];
    if (can("admin")) {
      const revoke = h("button", { type: "button", class: "danger", "aria-label": `Revoke key ${key.name} (${key.prefix})` }, "Revoke");
      revoke.addEventListener("click", async () => {
        if (!confirm(`Revoke "${key.name}"? Backends using it get 401 from now on.`)) return;
        try {
          await del(`/api/v1/api-keys/${encodeURIComponent(key.key_id)}`);
          announce(`Key ${key.name} revoked`);
          await load();
        } catch (error) {
          showError(slot, error);
        }
      });
      cells.push(h("td", {}, key.revoked_at ? "" : revoke));
    }
    return h("tr", { "data-key-id": key.key_id }, cells);
  }

  const form = can("admin")
    ? onSubmit(h("form", { class: "inline", "aria-label": "Create an API key" },
        field("Key name", h("input", { name: "name", type: "text", required: true, maxlength: 100 }), "Say where it will be used, e.g. billing-service."),
        h("button", { type: "submit" }, "Create key")),
      async ({ name }) => {
        showError(slot, null);
        try {
          const result = await post("/api/v1/api-keys", { name });
          created.replaceChildren(h("section", { class: "secret", "aria-labelledby": "new-key-warning" },
            h("p", { id: "new-key-warning" }, h("strong", {}, "This key will not be shown again."), " Copy it now."),
            h("code", { id: "new-api-key" }, result.api_key), copyButton(result.api_key, "Copy key")));
          await load();
        } catch (error) {
          showError(slot, error);
        }
      })
    : h("p", { class: "notice" }, "Only owners create and revoke keys.");
  page(main, "API keys", form, created, slot, list, pagerSlot);
  await load().catch((error) => showError(slot, error));
}
