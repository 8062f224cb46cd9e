// One notification: each channel's timeline, routing steps, template and
// content; and the sandbox inbox of what its providers received.
import { ApiError, get, query } from "../api.js";
import { badge, h, page, showError, table, time } from "../ui.js";
import { poll, recipientText } from "./common.js";

const FINAL = new Set(["delivered", "failed"]);

function eventText(event, attempt) {
  if (event.kind === "attempt") return [`Attempt ${attempt}`, event.detail];
  if (event.kind === "status") return [`Status ${event.status}`, event.detail];
  return ["Note", event.detail];
}

function timeline(delivery) {
  let attempt = 0;
  const items = (delivery.history || []).map((event) => {
    if (event.kind === "attempt") attempt += 1;
    const [what, detail] = eventText(event, attempt);
    return h("li", {}, time(event.occurred_at), " · ", h("strong", {}, what), " ", badge(event.status),
      detail ? h("div", {}, detail) : "");
  });
  return h(
    "section",
    { class: "card", "aria-labelledby": `ch-${delivery.channel}` },
    h("h3", { id: `ch-${delivery.channel}` }, delivery.channel, " ", badge(delivery.status)),
    h("p", {}, `${delivery.attempts} provider attempt${delivery.attempts === 1 ? "" : "s"}`,
      delivery.reason ? ` · ${delivery.reason}` : ""),
    h("ol", { class: "timeline", "aria-label": `${delivery.channel} timeline` }, items),
    delivery.body ? h("section", { "aria-label": `${delivery.channel} content` },
      h("h4", {}, "Content sent"),
      delivery.subject ? h("p", {}, h("strong", {}, "Subject: "), delivery.subject) : "",
      h("pre", {}, delivery.body)) : "",
  );
}

function routingSection(routing) {
  if (!routing || !(routing.steps || []).length) return "";
  return h("section", {},
    h("h2", {}, "Routing steps"),
    h("p", {}, `Strategy ${routing.strategy}, success on ${routing.success_on}, step timeout ${routing.step_timeout}, from the ${routing.source} policy.`),
    table("Channels are tried in this order.", ["Step", "Channel", "Outcome", "Reason", "Started", "Finished"],
      routing.steps.map((s, i) => h("tr", {}, h("td", {}, String(i + 1)), h("td", {}, s.channel), h("td", {}, badge(s.outcome)),
        h("td", {}, s.reason || ""), h("td", {}, time(s.started_at)), h("td", {}, time(s.finished_at))))),
  );
}

function contentBlock(channel, content) {
  return h("div", { class: "card" }, h("h3", {}, channel),
    content.subject ? h("p", {}, h("strong", {}, "Subject: "), content.subject) : "",
    h("pre", {}, content.body || ""));
}

async function templateSection(n) {
  if (!n.template_id) return h("p", {}, "Raw content, no template.");
  const link = h("a", { href: `/portal/templates/${encodeURIComponent(n.template_id)}` }, n.template_id);
  const heading = h("p", {}, "Template ", link, ` version ${n.template_version}`);
  try {
    const version = await get(`/api/v1/templates/${encodeURIComponent(n.template_id)}/versions/${n.template_version}`);
    const blocks = Object.entries(version.channels || {}).filter(([c]) => (n.channels || []).includes(c))
      .map(([c, content]) => contentBlock(c, content));
    return h("div", {}, heading, h("p", { class: "hint" }, "As written, before rendering:"), h("div", { class: "cards" }, blocks));
  } catch (error) {
    return h("div", {}, heading, h("p", { class: "error" }, error.message));
  }
}

// What the sandbox providers received for this notification; null outside sandbox mode.
async function sandboxMessages(id) {
  try {
    return (await get(`/api/v1/sandbox/messages${query({ notification_id: id })}`)).messages || [];
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

// `heading` keeps heading levels in order on each page that shows these cards.
function messageCards(messages, { linked = false, heading = "h4" } = {}) {
  return h("div", { class: "cards" }, messages.map((m) => h("article", { class: "card" },
    h(heading, {}, `${m.channel} to ${m.to}`),
    linked && m.notification_id ? h("p", {}, "For ", h("a", { href: `/portal/notifications/${m.notification_id}` }, h("code", {}, m.notification_id))) : "",
    h("p", { class: "hint" }, time(m.received_at), " · provider id ", h("code", {}, m.provider_message_id || "—")),
    m.subject ? h("p", {}, h("strong", {}, "Subject: "), m.subject) : "",
    h("pre", {}, m.body))));
}

export async function render(main, ctx) {
  const id = ctx.params[0];
  const summary = h("div");
  const deliveries = h("div", { class: "cards wide" });
  const routing = h("div");
  const content = h("div");
  const rendered = h("div");
  const slot = h("div");
  page(main, "Notification", h("p", {}, h("code", {}, id)), slot, summary,
    h("h2", {}, "Deliveries"), deliveries, routing,
    h("h2", {}, "Template and content"), content, rendered);

  let sig = "";
  async function load() {
    const n = await get(`/api/v1/notifications/${encodeURIComponent(id)}`);
    const now = JSON.stringify([n.status, n.deliveries, n.routing]);
    if (now === sig) return FINAL.has(n.status);
    sig = now;
    summary.replaceChildren(h("dl", { class: "cards" },
      h("div", {}, h("dt", {}, "Status"), h("dd", { id: "status" }, badge(n.status))),
      h("div", {}, h("dt", {}, "Recipient"), h("dd", {}, recipientText(n.recipient))),
      h("div", {}, h("dt", {}, "Created"), h("dd", {}, time(n.created_at))),
      n.bulk_id ? h("div", {}, h("dt", {}, "Bulk send"), h("dd", {}, h("a", { href: `/portal/bulk/${n.bulk_id}` }, n.bulk_id))) : ""));
    deliveries.replaceChildren(...(n.deliveries || []).map(timeline));
    routing.replaceChildren(routingSection(n.routing));
    if (!content.childNodes.length) content.replaceChildren(await templateSection(n));
    const messages = await sandboxMessages(id);
    rendered.replaceChildren(messages === null ? "" : h("section", {},
      h("h3", {}, "As the sandbox received it"),
      messages.length ? messageCards(messages) : h("p", {}, "Nothing received yet."),
      h("p", {}, h("a", { href: `/portal/inbox?notification_id=${encodeURIComponent(id)}` }, "Open in the sandbox inbox"))));
    return FINAL.has(n.status);
  }
  try {
    if (await load()) return;
  } catch (error) {
    showError(slot, error);
    return;
  }
  poll(ctx, async () => {
    try {
      await load();
      showError(slot, null);
    } catch (error) {
      showError(slot, error);
    }
  });
}

// One notification's messages, or (without ?notification_id) the tenant's newest.
export async function inbox(main, ctx) {
  const id = ctx.query.get("notification_id") || "";
  const slot = h("div");
  const intro = id
    ? h("p", {}, "What the sandbox providers received for ", h("a", { href: `/portal/notifications/${encodeURIComponent(id)}` }, h("code", {}, id)), ".")
    : h("p", {}, "The newest messages the sandbox providers received for your notifications.");
  page(main, "Sandbox inbox", intro, slot);
  const messages = await sandboxMessages(id).catch((error) => showError(slot, error));
  if (messages === null) slot.replaceChildren(h("p", { class: "notice" }, "This deployment uses real providers, so there is no sandbox inbox."));
  else if (messages) slot.replaceChildren(messages.length ? messageCards(messages, { linked: !id, heading: "h2" }) : h("p", {}, "Nothing received yet."));
}
