// Who is logged in, what they may do, and navigation. Pages import this, not
// app.js, so that app.js (the router, which imports pages) has no import cycle.
import { setCsrf } from "./api.js";

let session = null; // {csrf_token, user, tenant} while logged in

export function setSession(value) {
  session = value;
  setCsrf(value ? value.csrf_token : null);
  window.dispatchEvent(new Event("portal:session"));
}

export function currentSession() {
  return session;
}

export function currentUser() {
  return session ? session.user : null;
}

// Viewers only read; only owners manage members and keys.
export function can(ability) {
  const role = session ? session.user.role : "";
  if (ability === "write") return role === "owner" || role === "developer";
  if (ability === "admin") return role === "owner";
  return Boolean(role);
}

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  window.dispatchEvent(new Event("portal:navigate"));
}
