// Counts and failure rate by channel over the last hour and day, and usage
// against the quota. No stats endpoint exists yet, so the counts come from the
// newest notifications (at most MAX_PAGES pages), and the page says when it stopped short.
import { get, query } from "../api.js";
import { h, page, showError, svg, table } from "../ui.js";

const HOUR = 36e5;
const DAY = 864e5;
const MAX_PAGES = 5;
const PAGE_SIZE = 100;

async function recentNotifications() {
  const since = Date.now() - DAY;
  const found = [];
  let token = "";
  for (let i = 0; i < MAX_PAGES; i++) {
    const data = await get(`/api/v1/notifications${query({ page_size: PAGE_SIZE, page_token: token })}`);
    for (const n of data.notifications || []) {
      if (Date.parse(n.created_at) < since) return { found, complete: true };
      found.push(n);
    }
    token = data.next_page_token;
    if (!token) return { found, complete: true };
  }
  return { found, complete: false };
}

function countByChannel(notifications, since) {
  const counts = {};
  for (const n of notifications) {
    if (Date.parse(n.created_at) < since) continue;
    for (const d of n.deliveries || []) {
      const c = (counts[d.channel] ||= { total: 0, failed: 0, delivered: 0 });
      c.total += 1;
      if (d.status === "failed") c.failed += 1;
      if (d.status === "delivered") c.delivered += 1;
    }
  }
  return counts;
}

const rate = (c) => (c.total ? `${((100 * c.failed) / c.total).toFixed(1)}%` : "—");

// Horizontal bars: deliveries per channel, the failed share drawn over them.
function chart(title, counts) {
  const channels = Object.keys(counts).sort();
  const max = Math.max(1, ...channels.map((c) => counts[c].total));
  const rowHeight = 26;
  const width = 440;
  const barStart = 80;
  const scale = (width - barStart - 130) / max; // room for the count label
  const height = Math.max(1, channels.length) * rowHeight + 8;
  const desc = channels.map((c) => `${c}: ${counts[c].total} deliveries, ${counts[c].failed} failed`).join("; ") || "No deliveries";
  return svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": `${title}. ${desc}` },
    channels.map((c, i) => {
      const y = i * rowHeight + 4;
      const { total, failed } = counts[c];
      return svg("g", {},
        svg("text", { x: 0, y: y + 15 }, c),
        svg("rect", { class: "bar-total", x: barStart, y, width: Math.max(1, total * scale), height: 18 }),
        svg("rect", { class: "bar-failed", x: barStart, y, width: failed * scale, height: 18 }),
        svg("text", { x: barStart + total * scale + 6, y: y + 15 }, `${total} / ${failed} failed`));
    }));
}

function windowCard(title, counts) {
  const channels = Object.keys(counts).sort();
  return h("section", { class: "card", "aria-labelledby": title.replace(/\W/g, "") },
    h("h2", { id: title.replace(/\W/g, "") }, title), chart(title, counts),
    table(`Deliveries by channel, ${title.toLowerCase()}`, ["Channel", "Deliveries", "Delivered", "Failed", "Failure rate"],
      channels.map((c) => h("tr", {}, h("td", {}, c), h("td", {}, String(counts[c].total)), h("td", {}, String(counts[c].delivered)),
        h("td", {}, String(counts[c].failed)), h("td", {}, rate(counts[c]))))));
}

function usageSection(usage) {
  const quota = usage.daily_quota || 0;
  const meter = quota
    ? h("p", {}, h("label", { for: "quota-meter" }, `${usage.sent_today} of ${quota} notifications today `),
      h("progress", { id: "quota-meter", max: quota, value: Math.min(usage.sent_today, quota) }),
      ` ${usage.quota_remaining ?? 0} left, resets ${new Date(usage.quota_resets_at).toLocaleString()}`)
    : h("p", {}, `${usage.sent_today} notifications today; no daily quota.`);
  const byChannel = Object.entries(usage.sent_today_by_channel || {});
  return h("section", {}, h("h2", {}, `Usage on ${usage.day} (UTC)`), meter,
    byChannel.length ? h("p", {}, "Deliveries today: ", byChannel.map(([c, n]) => `${c} ${n}`).join(", ")) : "",
    table("Rate limits: token buckets per tenant", ["Limit", "Per second", "Burst"],
      (usage.rate_limits || []).map((l) => h("tr", {}, h("td", {}, l.name), h("td", {}, String(l.per_second)), h("td", {}, String(l.burst))))));
}

export async function render(main) {
  const slot = h("div");
  page(main, "Overview", slot);
  try {
    const [usage, recent] = await Promise.all([get("/api/v1/usage"), recentNotifications()]);
    const now = Date.now();
    main.append(
      h("div", { class: "cols" }, windowCard("Last hour", countByChannel(recent.found, now - HOUR)),
        windowCard("Last 24 hours", countByChannel(recent.found, now - DAY))),
      recent.complete ? "" : h("p", { class: "notice" }, `Counted from the newest ${recent.found.length} notifications only.`),
      usageSection(usage));
  } catch (error) {
    showError(slot, error);
  }
}
