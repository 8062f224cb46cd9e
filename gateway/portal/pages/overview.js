// Deliveries and failure rate by channel over the last hour and day (GET
// /api/v1/stats), as small inline SVG charts, and usage against the quota.
import { get } from "../api.js";
import { h, page, showError, svg, table, time } from "../ui.js";

const WINDOWS = [
  ["1h", "Last hour"],
  ["24h", "Last 24 hours"],
];

const percent = (rate) => `${(100 * rate).toFixed(1)}%`;

// One column per bucket: delivered stacked on failed, all channels together.
function chart(title, stats) {
  const buckets = [];
  for (const c of stats.channels || []) {
    (c.buckets || []).forEach((b, i) => {
      const sum = (buckets[i] ||= { start_time: b.start_time, delivered: 0, failed: 0 });
      sum.delivered += b.delivered || 0;
      sum.failed += b.failed || 0;
    });
  }
  const width = 480;
  const height = 120;
  const base = height - 18;
  const max = Math.max(1, ...buckets.map((b) => b.delivered + b.failed));
  const step = width / Math.max(1, buckets.length);
  const scale = (base - 4) / max;
  const totals = buckets.reduce((t, b) => [t[0] + b.delivered, t[1] + b.failed], [0, 0]);
  const label = `${title}: ${totals[0]} delivered and ${totals[1]} failed, in ${buckets.length} buckets of ${stats.bucket_seconds / 60} minutes`;
  const hhmm = (ts) => new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label },
    svg("line", { x1: 0, y1: base, x2: width, y2: base, stroke: "#6b7280" }),
    buckets.map((b, i) => {
      const x = i * step + 2;
      const w = Math.max(1, step - 4);
      const failed = b.failed * scale;
      const delivered = b.delivered * scale;
      return svg("g", {},
        svg("title", {}, `${hhmm(b.start_time)}: ${b.delivered} delivered, ${b.failed} failed`),
        svg("rect", { class: "bar-failed", x, y: base - failed, width: w, height: failed }),
        svg("rect", { class: "bar-delivered", x, y: base - failed - delivered, width: w, height: delivered }));
    }),
    buckets.length ? [svg("text", { x: 0, y: height - 4 }, hhmm(buckets[0].start_time)),
      svg("text", { x: width, y: height - 4, "text-anchor": "end" }, "now")] : "");
}

function windowCard(id, title, stats) {
  const channels = stats.channels || [];
  return h("section", { class: "card", "aria-labelledby": `w-${id}` },
    h("h2", { id: `w-${id}` }, title), chart(title, stats),
    h("p", { class: "hint" }, "Blue: delivered; red: failed. From ", time(stats.start_time), "."),
    table(`Outcomes by channel, ${title.toLowerCase()}`, ["Channel", "Delivered", "Failed", "Handed to provider", "Failure rate"],
      channels.length
        ? channels.map((c) => h("tr", {}, h("td", {}, c.channel), h("td", {}, String(c.delivered)), h("td", {}, String(c.failed)),
          h("td", {}, String(c.sent)), h("td", {}, percent(c.failure_rate))))
        : h("tr", {}, h("td", { colspan: 5 }, "Nothing sent in this window."))));
}

function usageSection(usage) {
  const quota = usage.daily_quota || 0;
  const meter = quota
    ? h("p", {}, h("label", { for: "quota-meter" }, `${usage.sent_today} of ${quota} notifications today `),
      h("progress", { id: "quota-meter", max: quota, value: Math.min(usage.sent_today, quota) }),
      ` ${usage.quota_remaining ?? 0} left, resets `, time(usage.quota_resets_at))
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
    const [usage, ...stats] = await Promise.all([get("/api/v1/usage"), ...WINDOWS.map(([w]) => get(`/api/v1/stats?window=${w}`))]);
    main.append(h("div", { class: "cols" }, WINDOWS.map(([id, title], i) => windowCard(id, title, stats[i]))), usageSection(usage));
  } catch (error) {
    showError(slot, error);
  }
}
