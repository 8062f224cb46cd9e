// Alert rules on the tenant's own delivery outcomes: list, create, and each
// rule's firings and resolutions.
import { del, get, post, query } from "../api.js";
import { can, navigate } from "../session.js";
import { field, h, onSubmit, page, select, showError, table, time } from "../ui.js";
import { channelSelect, Pager } from "./common.js";

const enc = encodeURIComponent;
const KINDS = [
  ["failure_rate", "Failure rate above a percentage"],
  ["failure_count", "More failures than a count"],
  ["no_receipts", "Sends but no delivery receipts"],
];

function condition(r) {
  const scope = [r.channel, r.template_id && `template ${r.template_id}`].filter(Boolean).join(", ") || "all channels";
  if (r.kind === "failure_rate") return `${scope}: failure rate over ${r.threshold_percent}% in ${r.window} (at least ${r.min_sends} finished)`;
  if (r.kind === "failure_count") return `${scope}: more than ${r.max_failures} failures in ${r.window}`;
  return `${scope}: ${r.min_sends}+ sends in ${r.window} and no receipt`;
}

function ruleState(r) {
  if (!r.enabled) return h("span", { class: "badge s-stopped" }, "disabled");
  return h("span", { class: `badge ${r.state === "firing" ? "s-failed" : "s-delivered"}` }, r.state);
}

function createForm(slot) {
  const number = (name, extra = {}) => h("input", { name, type: "number", min: 0, ...extra });
  const form = h("form", { class: "stack", "aria-label": "Create an alert rule" },
    field("Kind", select("kind", KINDS, "failure_rate")),
    field("Channel", channelSelect("")),
    field("Template id (optional)", h("input", { name: "template_id", type: "text" })),
    field("Threshold percent", number("threshold_percent", { max: 100, step: "any", value: 5 }), "For failure rate rules."),
    field("Maximum failures", number("max_failures", { value: 10 }), "For failure count rules."),
    field("Minimum sends", number("min_sends", { value: 20 }), "For failure rate and no-receipt rules."),
    field("Window", h("input", { name: "window", type: "text", value: "10m", required: true }), "Whole minutes, 1m to 24h."),
    field("Notify by", channelSelect("email", { any: false, name: "notify_channel" })),
    field("Notify address", h("input", { name: "notify_to", type: "text", required: true }), "An email address, phone number or Slack user id."),
    field("Name (optional)", h("input", { name: "name", type: "text" })),
    h("button", { type: "submit" }, "Create alert rule"));
  return onSubmit(form, async (v) => {
    showError(slot, null);
    const body = { kind: v.kind, name: v.name, channel: v.channel, template_id: v.template_id, window: v.window,
      notify: { channel: v.notify_channel, to: v.notify_to } };
    // Only the fields of the chosen kind: the others would be refused.
    if (v.kind === "failure_rate") Object.assign(body, { threshold_percent: Number(v.threshold_percent), min_sends: Number(v.min_sends) });
    if (v.kind === "failure_count") body.max_failures = Number(v.max_failures);
    if (v.kind === "no_receipts") body.min_sends = Number(v.min_sends);
    try {
      const rule = await post("/api/v1/alert-rules", body);
      navigate(`/portal/alerts/${enc(rule.rule_id)}`);
    } catch (error) {
      showError(slot, error);
    }
  });
}

export async function render(main) {
  const slot = h("div");
  const tbody = h("tbody");
  const list = table("Rules are checked every 30 seconds; an alert is one of your own notifications.",
    ["Rule", "Condition", "Notify", "State", "Last checked"], []);
  list.querySelector("tbody").replaceWith(tbody);
  const pagerSlot = h("div");
  const paging = new Pager(() => load().catch((error) => showError(slot, error)));
  async function load() {
    const data = await get(`/api/v1/alert-rules${query({ page_token: paging.token })}`);
    tbody.replaceChildren(...(data.rules || []).map((r) => h("tr", {},
      h("td", {}, h("a", { href: `/portal/alerts/${enc(r.rule_id)}` }, r.name)), h("td", {}, condition(r)),
      h("td", {}, `${r.notify.channel} ${r.notify.to}`), h("td", {}, ruleState(r)), h("td", {}, time(r.last_evaluated_at)))));
    if (!tbody.rows.length) tbody.append(h("tr", {}, h("td", { colspan: 5 }, "No alert rules yet.")));
    pagerSlot.replaceChildren(paging.controls(data.next_page_token));
  }
  page(main, "Alert rules", slot, list, pagerSlot, can("write") ? [h("h2", {}, "New alert rule"), createForm(slot)] : "");
  await load().catch((error) => showError(slot, error));
}

export async function detail(main, ctx) {
  const id = ctx.params[0];
  const slot = h("div");
  page(main, "Alert rule", slot);
  let rule;
  try {
    rule = await get(`/api/v1/alert-rules/${enc(id)}`);
  } catch (error) {
    showError(slot, error);
    return;
  }
  const history = h("div");
  const paging = new Pager(() => load().catch((error) => showError(slot, error)));
  async function load() {
    const data = await get(`/api/v1/alert-rules/${enc(id)}/history${query({ page_token: paging.token })}`);
    const rows = (data.events || []).map((e) => h("tr", {}, h("td", {}, time(e.occurred_at)), h("td", {}, e.kind),
      h("td", {}, e.summary), h("td", {}, e.notification_id ? h("a", { href: `/portal/notifications/${e.notification_id}` }, e.notification_id) : "")));
    history.replaceChildren(rows.length
      ? [table("Newest first", ["When", "Event", "Summary", "Alert sent"], rows), paging.controls(data.next_page_token)]
      : h("p", {}, "It has not fired yet."));
  }
  const remove = h("button", { type: "button", class: "danger" }, "Delete rule");
  remove.addEventListener("click", async () => {
    if (!confirm(`Delete the rule "${rule.name}"?`)) return;
    try {
      await del(`/api/v1/alert-rules/${enc(id)}`);
      navigate("/portal/alerts");
    } catch (error) {
      showError(slot, error);
    }
  });
  // Disabled rules are not checked until enabled again; they keep their state.
  const toggle = h("button", { type: "button", class: "secondary" }, rule.enabled ? "Disable rule" : "Enable rule");
  toggle.addEventListener("click", async () => {
    try {
      await post(`/api/v1/alert-rules/${enc(id)}:${rule.enabled ? "disable" : "enable"}`);
      navigate(location.pathname, { replace: true });
    } catch (error) {
      showError(slot, error);
    }
  });
  main.append(h("p", {}, h("strong", {}, rule.name), " · ", h("span", { id: "rule-state" }, ruleState(rule))), h("p", {}, condition(rule)),
    h("p", {}, `Notifies ${rule.notify.channel} ${rule.notify.to}; created `, time(rule.created_at), "."),
    can("write") ? h("div", { class: "actions" }, toggle, remove) : "", h("h2", {}, "History"), history);
  await load().catch((error) => showError(slot, error));
}
