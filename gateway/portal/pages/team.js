// Team members, invitations (sent by email through Clarion itself) and the audit log.
import { del, get, post, query } from "../api.js";
import { can, currentUser } from "../session.js";
import { announce, badge, field, h, onSubmit, page, select, showError, table, time } from "../ui.js";
import { Pager } from "./common.js";

const ROLES = [
  ["viewer", "Viewer: reads everything, changes nothing"],
  ["developer", "Developer: everything except members and API keys"],
  ["owner", "Owner: everything"],
];

function removeButton(label, path, slot, reload) {
  const button = h("button", { type: "button", class: "danger", "aria-label": label }, "Remove");
  button.addEventListener("click", async () => {
    if (!confirm(`${label}?`)) return;
    try {
      await del(path);
      announce(`${label}: done`);
      await reload();
    } catch (error) {
      showError(slot, error);
    }
  });
  return button;
}

export async function render(main) {
  const slot = h("div");
  const members = h("div");
  const invitations = h("div");
  const admin = can("admin");
  async function load() {
    const data = await get("/api/v1/members");
    const me = currentUser();
    members.replaceChildren(table("People who can log in to this account", ["Email", "Role", "Since", admin ? "Actions" : ""].filter(Boolean),
      (data.members || []).map((m) => h("tr", {}, h("td", {}, m.email), h("td", {}, m.role), h("td", {}, time(m.created_at)),
        admin ? h("td", {}, m.user_id === me.user_id ? "you" : removeButton(`Remove ${m.email}`, `/api/v1/members/${encodeURIComponent(m.user_id)}`, slot, load)) : ""))));
    const open = data.invitations || [];
    invitations.replaceChildren(open.length
      ? table("Invitations not accepted yet", ["Email", "Role", "Sent", "Expires", admin ? "Actions" : ""].filter(Boolean),
        open.map((i) => h("tr", {}, h("td", {}, i.email), h("td", {}, i.role), h("td", {}, time(i.created_at)), h("td", {}, time(i.expires_at)),
          admin ? h("td", {}, removeButton(`Withdraw the invitation of ${i.email}`, `/api/v1/invitations/${encodeURIComponent(i.invitation_id)}`, slot, load)) : "")))
      : h("p", {}, "No open invitations."));
  }
  const invite = admin
    ? onSubmit(h("form", { class: "inline", "aria-label": "Invite a teammate" },
        field("Email", h("input", { name: "email", type: "email", required: true, autocomplete: "off" })),
        field("Role", select("role", ROLES, "developer")),
        h("button", { type: "submit" }, "Send invitation")),
      async (values) => {
        showError(slot, null);
        try {
          await post("/api/v1/invitations", values);
          announce(`Invitation sent to ${values.email}`);
          await load();
        } catch (error) {
          showError(slot, error);
        }
      })
    : h("p", { class: "notice" }, "Only owners invite and remove members.");
  page(main, "Team", slot, members, h("h2", {}, "Invitations"), invitations, h("h2", {}, "Invite"), invite,
    h("p", { class: "hint" }, "The invitation is an email with a link that is valid for a limited time."));
  await load().catch((error) => showError(slot, error));
}

export async function audit(main) {
  const slot = h("div");
  const out = h("div");
  const paging = new Pager(() => load().catch((error) => showError(slot, error)));
  async function load() {
    const data = await get(`/api/v1/audit-log${query({ page_size: 50, page_token: paging.token })}`);
    out.replaceChildren(table("Who changed keys, templates, members, webhooks, alert rules and routing; newest first.",
      ["When", "Who", "Action", "Target", "Detail"],
      (data.entries || []).map((e) => h("tr", {}, h("td", {}, time(e.at)), h("td", {}, e.actor_email || `API key ${e.actor_api_key}`), h("td", {}, h("code", {}, e.action)),
        h("td", {}, e.target), h("td", {}, e.detail || "")))), paging.controls(data.next_page_token));
  }
  page(main, "Audit log", slot, out);
  await load().catch((error) => showError(slot, error));
}
