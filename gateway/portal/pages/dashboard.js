// Recent activity: the newest notifications, filtered and paged, kept live by polling.
import { get, query } from "../api.js";
import { navigate } from "../session.js";
import { announce, badge, field, h, page, select, showError, table, time } from "../ui.js";
import { attempts, channelSelect, Pager, poll, reasons, recipientText, STATUSES } from "./common.js";

const RANGES = [
  ["", "Any time"],
  ["15m", "Last 15 minutes"],
  ["1h", "Last hour"],
  ["24h", "Last 24 hours"],
  ["7d", "Last 7 days"],
];
const RANGE_MS = { "15m": 9e5, "1h": 36e5, "24h": 864e5, "7d": 6048e5 };
const PAGE_SIZE = 25;

function row(n) {
  const tr = h("tr", { "data-id": n.notification_id });
  fill(tr, n);
  return tr;
}

function fill(tr, n) {
  tr.dataset.sig = JSON.stringify([n.status, n.deliveries]);
  tr.replaceChildren(
    h("td", {}, h("a", { href: `/portal/notifications/${n.notification_id}` }, h("code", {}, n.notification_id))),
    h("td", {}, time(n.created_at)),
    h("td", {}, recipientText(n.recipient)),
    h("td", {}, (n.channels || []).join(", ")),
    h("td", { class: "status" }, badge(n.status)),
    h("td", { class: "attempts" }, String(attempts(n))),
    h("td", {}, reasons(n)),
  );
}

export async function render(main, ctx) {
  const q = ctx.query;
  const filters = h(
    "form",
    { class: "inline", role: "search", "aria-label": "Filter notifications" },
    field("Channel", channelSelect(q.get("channel") || "")),
    field("Recipient", h("input", { name: "recipient", type: "search", value: q.get("recipient") || "", placeholder: "email, phone or Slack id" })),
    field("Status", select("status", [["", "Any status"], ...STATUSES.map((s) => [s, s])], q.get("status") || "")),
    field("Time range", select("range", RANGES, q.get("range") || "")),
    h("button", { type: "submit" }, "Apply"),
  );
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    navigate(`/portal/dashboard${query(Object.fromEntries(new FormData(filters)))}`);
  });
  const slot = h("div");
  const tbody = h("tbody");
  const list = table("Newest first; updates every few seconds while this page is open.",
    ["Notification", "Created", "Recipient", "Channels", "Status", "Attempts", "Reason"], []);
  list.querySelector("tbody").replaceWith(tbody);
  const pagerSlot = h("div");
  const empty = h("p", { class: "notice", hidden: true }, "No notifications match yet. Send one with your API key and it appears here.");
  page(main, "Recent notifications", filters, slot, list, empty, pagerSlot);

  const range = RANGE_MS[q.get("range") || ""];
  const paging = new Pager(() => {
    tbody.replaceChildren();
    load().catch((error) => showError(slot, error));
  });
  async function load() {
    const data = await get(`/api/v1/notifications${query({
      channel: q.get("channel"), status: q.get("status"), recipient: q.get("recipient"),
      created_after: range ? new Date(Date.now() - range).toISOString() : "",
      page_size: PAGE_SIZE, page_token: paging.token,
    })}`);
    const shown = data.notifications || [];
    update(shown);
    empty.hidden = shown.length > 0;
    pagerSlot.replaceChildren(paging.controls(data.next_page_token));
  }
  function update(notifications) {
    const existing = new Map([...tbody.rows].map((tr) => [tr.dataset.id, tr]));
    const wanted = new Set(notifications.map((n) => n.notification_id));
    existing.forEach((tr, id) => wanted.has(id) || tr.remove());
    let added = 0;
    let before = tbody.firstChild;
    for (const n of notifications) {
      const tr = existing.get(n.notification_id);
      if (tr) {
        if (tr.dataset.sig !== JSON.stringify([n.status, n.deliveries])) fill(tr, n);
        before = tr.nextSibling;
      } else {
        tbody.insertBefore(row(n), before);
        added += existing.size ? 1 : 0;
      }
    }
    if (added) announce(`${added} new notification${added > 1 ? "s" : ""}`);
  }
  await load().catch((error) => showError(slot, error));
  poll(ctx, load);
}
