// Bulk sends: a CSV upload that streams with progress, the tenant's recent
// bulks with progress bars, and one bulk's row errors.
import { csrfHeader, get, parseBody, query, ApiError } from "../api.js";
import { can, navigate } from "../session.js";
import { field, h, onSubmit, page, showError, table, time } from "../ui.js";
import { channelSelect, Pager, poll } from "./common.js";

function progress(bulk) {
  const accepted = bulk.total; // accepted rows; refused ones are `rejected`
  const c = bulk.counts || {};
  const done = accepted - (c.queued || 0);
  const id = `p-${bulk.bulk_id}`;
  return h("div", {},
    h("progress", { id, max: Math.max(accepted, 1), value: done, "aria-label": `Bulk ${bulk.bulk_id}: ${done} of ${accepted} rows handed to providers` }),
    h("div", { class: "hint" }, `${done} of ${accepted} handed over · ${c.delivered || 0} delivered · ${c.sent || 0} sent · ${c.failed || 0} failed`,
      bulk.rejected ? ` · ${bulk.rejected} row${bulk.rejected === 1 ? "" : "s"} refused` : "", bulk.finished_at ? " · finished" : ""));
}

function bulkRow(bulk) {
  return h("tr", {},
    h("td", {}, h("a", { href: `/portal/bulk/${bulk.bulk_id}` }, h("code", {}, bulk.bulk_id))),
    h("td", {}, time(bulk.created_at)),
    h("td", {}, (bulk.channels || []).join(", ")),
    h("td", {}, bulk.template_id || "raw"),
    h("td", {}, String(bulk.total)),
    h("td", {}, progress(bulk)));
}

// Streams the file with XMLHttpRequest, whose upload events report bytes sent.
function upload(params, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/v1/notifications/bulk:upload${query(params)}`);
    xhr.setRequestHeader("Content-Type", "text/csv");
    for (const [k, v] of Object.entries(csrfHeader())) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener("progress", (e) => e.lengthComputable && onProgress(e.loaded, e.total));
    xhr.addEventListener("load", () => {
      const body = parseBody(xhr.responseText);
      if (xhr.status === 200) resolve(body);
      else reject(new ApiError(xhr.status, body, xhr.getResponseHeader("retry-after")));
    });
    xhr.addEventListener("error", () => reject(new Error("The upload was cut off; nothing was kept. Try again.")));
    xhr.send(file);
  });
}

function uploadForm() {
  const meter = h("progress", { id: "upload-progress", max: 1, value: 0 });
  const status = h("span", { role: "status" });
  const slot = h("div");
  const form = h("form", { class: "stack", "aria-label": "Upload a CSV" },
    field("Channel", channelSelect("email", { any: false })),
    field("Template id", h("input", { name: "template_id", type: "text" }), "Or leave empty and give raw text below."),
    field("Subject (raw email)", h("input", { name: "subject", type: "text" })),
    field("Text (raw content)", h("textarea", { name: "text" })),
    field("CSV file", h("input", { name: "file", type: "file", accept: ".csv,text/csv", required: true }),
      "Columns email, phone, slack_user_id and data.<key>; up to 1,000,000 rows."),
    h("div", {}, h("label", { for: "upload-progress" }, "Upload progress "), meter, " ", status),
    slot,
    h("button", { type: "submit" }, "Upload and send"));
  onSubmit(form, async ({ file, ...params }) => {
    showError(slot, null);
    try {
      const result = await upload(params, file, (loaded, total) => {
        meter.max = total;
        meter.value = loaded;
        status.textContent = `${Math.round((100 * loaded) / total)}%`;
      });
      status.textContent = `Accepted ${result.accepted} of ${result.total} rows`;
      navigate(`/portal/bulk/${result.bulk_id}`);
    } catch (error) {
      showError(slot, error);
    }
  });
  return form;
}

export async function render(main, ctx) {
  const slot = h("div");
  const tbody = h("tbody");
  const list = table("Newest first; progress updates every few seconds.",
    ["Bulk", "Created", "Channels", "Template", "Rows accepted", "Progress"], []);
  list.querySelector("tbody").replaceWith(tbody);
  const pagerSlot = h("div");
  const paging = new Pager(() => load().catch((error) => showError(slot, error)));
  page(main, "Bulk sends", slot, list, pagerSlot, can("write") ? [h("h2", {}, "Upload a CSV"), uploadForm()] : "");

  async function load() {
    const data = await get(`/api/v1/notifications/bulk${query({ page_size: 20, page_token: paging.token })}`);
    tbody.replaceChildren(...(data.bulks || []).map(bulkRow));
    if (!tbody.rows.length) tbody.append(h("tr", {}, h("td", { colspan: 6 }, "No bulk sends yet.")));
    pagerSlot.replaceChildren(paging.controls(data.next_page_token));
  }
  await load().catch((error) => showError(slot, error));
  poll(ctx, load);
}

export async function detail(main, ctx) {
  const id = ctx.params[0];
  const slot = h("div");
  const summary = h("div");
  const errors = h("div");
  page(main, "Bulk send", h("p", {}, h("code", {}, id)), slot, summary, h("h2", {}, "Refused rows"), errors);
  const paging = new Pager(() => loadErrors().catch((error) => showError(slot, error)));
  async function loadErrors() {
    const data = await get(`/api/v1/notifications/bulk/${encodeURIComponent(id)}/errors${query({ page_size: 100, page_token: paging.token })}`);
    const rows = (data.errors || []).map((e) => h("tr", {}, h("td", {}, String(e.index + 1)), h("td", {}, h("code", {}, e.reason)), h("td", {}, e.message)));
    errors.replaceChildren(rows.length || paging.tokens.length
      ? [table("Row numbers count data rows from 1 (the header row is not counted).", ["Row", "Reason", "Message"], rows), paging.controls(data.next_page_token)]
      : h("p", {}, "No rows were refused."));
  }
  async function load() {
    const bulk = await get(`/api/v1/notifications/bulk/${encodeURIComponent(id)}`);
    summary.replaceChildren(table("Progress updates every few seconds until the bulk finishes.",
      ["Created", "Channels", "Template", "Rows accepted", "Progress"], [h("tr", {},
        h("td", {}, time(bulk.created_at)), h("td", {}, (bulk.channels || []).join(", ")), h("td", {}, bulk.template_id || "raw"),
        h("td", {}, String(bulk.total)), h("td", {}, progress(bulk)))]));
    return bulk;
  }
  try {
    await load();
    await loadErrors();
  } catch (error) {
    showError(slot, error);
    return;
  }
  poll(ctx, load);
}
