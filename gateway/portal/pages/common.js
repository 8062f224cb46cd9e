// Pieces shared by several pages.
import { h, select } from "../ui.js";

export const CHANNELS = ["email", "sms", "slack", "voice", "whatsapp"];
export const STATUSES = ["queued", "sent", "delivered", "failed"];
export const POLL_MS = 3000;

export function channelSelect(value, { any = true, name = "channel" } = {}) {
  const options = CHANNELS.map((c) => [c, c]);
  return select(name, any ? [["", "Any channel"], ...options] : options, value);
}

export function recipientText(recipient = {}) {
  return [recipient.email, recipient.phone, recipient.slack_user_id].filter(Boolean).join(", ");
}

export function attempts(notification) {
  return (notification.deliveries || []).reduce((sum, d) => sum + (d.attempts || 0), 0);
}

export function reasons(notification) {
  return (notification.deliveries || [])
    .filter((d) => d.reason)
    .map((d) => `${d.channel}: ${d.reason}`)
    .join("; ");
}

// Polls `fn` every POLL_MS while the tab is visible, until the page is left.
export function poll(ctx, fn) {
  const timer = setInterval(() => {
    if (!document.hidden) fn().catch(() => {});
  }, POLL_MS);
  ctx.onLeave(() => clearInterval(timer));
}

// Newer/Older over an API list's opaque page tokens; `go` loads `this.token`.
export class Pager {
  constructor(go) {
    this.tokens = [];
    this.token = "";
    this.go = go;
  }

  controls(next) {
    const newer = h("button", { type: "button", class: "secondary", disabled: this.tokens.length === 0 }, "Newer");
    newer.addEventListener("click", () => {
      this.token = this.tokens.pop() ?? "";
      this.go();
    });
    const older = h("button", { type: "button", class: "secondary", disabled: !next }, "Older");
    older.addEventListener("click", () => {
      this.tokens.push(this.token);
      this.token = next;
      this.go();
    });
    return h("div", { class: "pager", role: "group", "aria-label": "Pages" }, newer, older);
  }
}
