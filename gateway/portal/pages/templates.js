// Templates: list and create; one template's versions side by side with a
// diff, preview with sample data, a test send to yourself, WhatsApp approval
// and the rollout.
import { get, post, query } from "../api.js";
import { can, currentUser, navigate } from "../session.js";
import { badge, field, h, onSubmit, page, select, showError, table, time } from "../ui.js";
import { CHANNELS, Pager } from "./common.js";
import { diffLines } from "./diff.js";

const enc = encodeURIComponent;

function rolloutText(t) {
  const r = t.rollout;
  if (!r || !r.version) return "none";
  return `version ${r.version} at ${r.percent}% (${r.state}${r.stopped_reason ? `: ${r.stopped_reason}` : ""})`;
}

function channelContent(channel, subject, body) {
  if (channel === "email") return { email: { subject, body } };
  if (channel === "whatsapp") return { whatsapp: { body, language: "en" } };
  return { [channel]: { body } };
}

function createForm(slot) {
  return onSubmit(h("form", { class: "stack", "aria-label": "Create a template" },
    field("Template id", h("input", { name: "template_id", type: "text", required: true, pattern: "[a-z0-9_\\-]+" }), "Lowercase letters, digits, - and _."),
    field("Description", h("input", { name: "description", type: "text", maxlength: 1024 })),
    field("Channel", select("channel", CHANNELS.map((c) => [c, c]), "email")),
    field("Subject (email)", h("input", { name: "subject", type: "text" })),
    field("Body", h("textarea", { name: "body", required: true }), "Placeholders look like {{name}}."),
    h("button", { type: "submit" }, "Create template")),
  async ({ template_id, description, channel, subject, body }) => {
    showError(slot, null);
    try {
      await post("/api/v1/templates", { template_id, description, channels: channelContent(channel, subject, body) });
      navigate(`/portal/templates/${enc(template_id)}`);
    } catch (error) {
      showError(slot, error);
    }
  });
}

export async function render(main) {
  const slot = h("div");
  const tbody = h("tbody");
  const list = table("Your templates", ["Template", "Description", "Active version", "Latest", "Rollout", "WhatsApp"], []);
  list.querySelector("tbody").replaceWith(tbody);
  const pagerSlot = h("div");
  const paging = new Pager(() => load().catch((error) => showError(slot, error)));
  async function load() {
    const data = await get(`/api/v1/templates${query({ page_token: paging.token })}`);
    tbody.replaceChildren(...(data.templates || []).map((t) => h("tr", {},
      h("td", {}, h("a", { href: `/portal/templates/${enc(t.template_id)}` }, t.template_id)),
      h("td", {}, t.description || ""), h("td", {}, String(t.version)), h("td", {}, String(t.latest_version)),
      h("td", {}, rolloutText(t)), h("td", {}, t.whatsapp_approval ? badge(t.whatsapp_approval.status) : "—"))));
    if (!tbody.rows.length) tbody.append(h("tr", {}, h("td", { colspan: 6 }, "No templates yet.")));
    pagerSlot.replaceChildren(paging.controls(data.next_page_token));
  }
  page(main, "Templates", slot, list, pagerSlot, can("write") ? [h("h2", {}, "New template"), createForm(slot)] : "");
  await load().catch((error) => showError(slot, error));
}

// Every field of a version's content as [label, text] pairs, e.g. ["email subject", "Hi {{name}}"].
function fields(version) {
  const out = [];
  for (const [channel, content] of Object.entries(version.channels || {})) {
    for (const [key, value] of Object.entries(content)) if (value) out.push([`${channel} ${key}`, value]);
  }
  return out;
}

function versionColumn(version) {
  return h("section", { class: "card", "aria-label": `Version ${version.version}` },
    h("h3", {}, `Version ${version.version}`, " ", version.whatsapp_approval ? badge(version.whatsapp_approval.status) : ""),
    h("p", { class: "hint" }, "Created ", time(version.created_at), ` · variables: ${(version.variables || []).join(", ") || "none"}`),
    fields(version).map(([label, text]) => [h("h4", {}, label), h("pre", {}, text)]));
}

function diffView(a, b) {
  const left = Object.fromEntries(fields(a));
  const right = Object.fromEntries(fields(b));
  const labels = [...new Set([...Object.keys(left), ...Object.keys(right)])];
  return h("section", { "aria-label": `Changes from version ${a.version} to ${b.version}` },
    h("h3", {}, `Changes from version ${a.version} to ${b.version}`),
    labels.map((label) => h("div", { class: "diff" }, h("h4", {}, label),
      diffLines(left[label] ?? "", right[label] ?? "").map(([op, line]) =>
        h("div", { class: op === "+" ? "add" : op === "-" ? "del" : "" }, `${op} ${line}`)))));
}

export async function detail(main, ctx) {
  const id = ctx.params[0];
  const slot = h("div");
  page(main, `Template ${id}`, slot);
  let t;
  try {
    t = await get(`/api/v1/templates/${enc(id)}`);
  } catch (error) {
    showError(slot, error);
    return;
  }
  const numbers = Array.from({ length: t.latest_version }, (_, i) => i + 1);
  const versions = await Promise.all(numbers.map((v) => get(`/api/v1/templates/${enc(id)}/versions/${v}`)));
  main.append(
    table("Template state", ["Description", "Active version", "Latest version", "Variables", "Rollout", "WhatsApp approval"], [h("tr", {},
      h("td", {}, t.description || ""), h("td", {}, String(t.version)), h("td", {}, String(t.latest_version)),
      h("td", {}, (t.variables || []).join(", ")), h("td", { id: "rollout-state" }, rolloutText(t)),
      h("td", {}, t.whatsapp_approval ? [badge(t.whatsapp_approval.status), " ", t.whatsapp_approval.reason || ""] : "no WhatsApp content"))]),
    compareSection(versions, t),
    previewSection(t, slot),
    can("write") ? rolloutSection(t, slot) : "");
}

function compareSection(versions, t) {
  const out = h("div");
  const options = versions.map((v) => [String(v.version), `Version ${v.version}`]);
  const left = select("left", options, String(Math.max(1, t.latest_version - 1)));
  const right = select("right", options, String(t.latest_version));
  const show = () => {
    const a = versions[Number(left.value) - 1];
    const b = versions[Number(right.value) - 1];
    out.replaceChildren(h("div", { class: "cols" }, versionColumn(a), versionColumn(b)), diffView(a, b));
  };
  left.addEventListener("change", show);
  right.addEventListener("change", show);
  show();
  return h("section", {}, h("h2", {}, "Versions"),
    h("div", { class: "inline" }, field("Left", left), field("Right", right)), out);
}

function sampleData(t) {
  return JSON.stringify(Object.fromEntries((t.variables || []).map((v) => [v, `sample ${v}`])), null, 2);
}

function previewSection(t, slot) {
  const out = h("div", { "aria-live": "polite" });
  const data = h("textarea", { name: "data" }, sampleData(t));
  const parse = () => {
    try {
      return JSON.parse(data.value || "{}");
    } catch (error) {
      throw new Error(`Sample data is not JSON: ${error.message}`);
    }
  };
  const preview = h("button", { type: "button" }, "Preview");
  preview.addEventListener("click", async () => {
    showError(slot, null);
    try {
      const result = await post(`/api/v1/templates/${enc(t.template_id)}/preview`, { data: parse() });
      out.replaceChildren(h("div", { class: "cards" }, (result.rendered || []).map((r) => h("div", { class: "card" },
        h("h3", {}, `${r.channel} (version ${result.version})`), r.subject ? h("p", {}, h("strong", {}, "Subject: "), r.subject) : "",
        h("pre", {}, r.body)))));
    } catch (error) {
      out.replaceChildren();
      showError(slot, error);
    }
  });
  const me = currentUser();
  const test = h("button", { type: "button", class: "secondary" }, `Send a test email to ${me.email}`);
  test.addEventListener("click", async () => {
    showError(slot, null);
    try {
      const sent = await post("/api/v1/notifications/send", {
        recipient: { email: me.email },
        notification: { channels: ["email"], template_id: t.template_id, data: parse() },
      });
      out.replaceChildren(h("p", { class: "notice" }, "Test sent: ",
        h("a", { href: `/portal/notifications/${sent.notification_id}` }, sent.notification_id)));
    } catch (error) {
      showError(slot, error);
    }
  });
  const hasEmail = Boolean((t.channels || {}).email);
  return h("section", {}, h("h2", {}, "Preview with sample data"), field("Sample data (JSON)", data),
    h("div", { class: "actions" }, preview, can("write") && hasEmail ? test : ""), out);
}

function rolloutSection(t, slot) {
  const options = Array.from({ length: t.latest_version }, (_, i) => [String(i + 1), `Version ${i + 1}`]);
  const form = onSubmit(h("form", { class: "inline", "aria-label": "Start a rollout" },
    field("Version", select("version", options, String(t.latest_version))),
    field("Percent of recipients", h("input", { name: "percent", type: "number", min: 0, max: 100, value: 10, required: true }), "100 promotes, 0 stops."),
    h("button", { type: "submit" }, "Start rollout")),
  async ({ version, percent }) => rollout(Number(version), Number(percent)));
  const stop = h("button", { type: "button", class: "secondary", disabled: !(t.rollout && t.rollout.state === "running") }, "Stop rollout");
  stop.addEventListener("click", () => rollout(t.rollout.version, 0));
  async function rollout(version, percent) {
    showError(slot, null);
    try {
      await post(`/api/v1/templates/${enc(t.template_id)}/rollout`, { version, percent });
      navigate(location.pathname, { replace: true });
    } catch (error) {
      showError(slot, error);
    }
  }
  return h("section", {}, h("h2", {}, "Rollout"), h("p", {}, `Current: ${rolloutText(t)}`), form, stop);
}
