// Signup, login and accepting an invitation: the pages without a session.
import { ApiError, get, post } from "../api.js";
import { navigate, setSession } from "../session.js";
import { copyButton, field, h, onSubmit, page, showError } from "../ui.js";

function input(name, type, autocomplete, extra = {}) {
  return h("input", { name, type, autocomplete, required: true, ...extra });
}

// Only paths inside the portal, so ?next= cannot send anyone elsewhere.
function nextPath(query) {
  const next = query.get("next") || "";
  return /^\/portal(\/[^/]|$)/.test(next) && !next.startsWith("//") ? next : "/portal/dashboard";
}

// A throttled login says when to try again, whether or not its message does.
function explain(error) {
  if (error instanceof ApiError && error.status === 429 && error.retryAfter && !/retry/i.test(error.message)) {
    error.message = `${error.message}. Try again in ${error.retryAfter} s.`;
  }
  return error;
}

export async function signup(main) {
  const slot = h("div");
  const form = h(
    "form",
    { class: "stack", "aria-label": "Sign up" },
    field("Organisation name", input("name", "text", "organization")),
    field("Email", input("email", "email", "email")),
    field(
      "Password",
      input("password", "password", "new-password", { minlength: 12 }),
      "12 characters or more, hard to guess: a few unrelated words work well.",
    ),
    slot,
    h("button", { type: "submit" }, "Create account"),
  );
  onSubmit(form, async (values) => {
    showError(slot, null);
    let created;
    try {
      created = await post("/portal/signup", values);
    } catch (error) {
      showError(slot, explain(error));
      return;
    }
    // Signup set the session cookie; the session says who is logged in.
    setSession(await get("/portal/session").catch(() => null));
    showKey(main, created.api_key);
  });
  page(
    main,
    "Create your Clarion account",
    form,
    h("p", {}, "Already have an account? ", h("a", { href: "/portal/login" }, "Log in")),
  );
}

// The first key, once: it lives only in this page's DOM until the person moves on.
function showKey(main, apiKey) {
  const done = h("button", { type: "button" }, "I have copied it: go to the dashboard");
  done.addEventListener("click", () => navigate("/portal/dashboard"));
  page(
    main,
    "Your API key",
    h(
      "section",
      { class: "secret", "aria-labelledby": "key-warning" },
      h("p", { id: "key-warning" }, h("strong", {}, "This key will not be shown again."),
        " Copy it now and keep it in your backend's secret store. Send it as the X-API-Key header."),
      h("code", { id: "api-key" }, apiKey),
      h("div", { class: "actions" }, copyButton(apiKey, "Copy key"), done),
    ),
  );
}

export async function login(main, ctx) {
  const slot = h("div");
  const form = h(
    "form",
    { class: "stack", "aria-label": "Log in" },
    field("Email", input("email", "email", "username")),
    field("Password", input("password", "password", "current-password")),
    slot,
    h("button", { type: "submit" }, "Log in"),
  );
  onSubmit(form, async (values) => {
    showError(slot, null);
    try {
      setSession(await post("/portal/login", values));
    } catch (error) {
      showError(slot, explain(error));
      return;
    }
    navigate(nextPath(ctx.query));
  });
  page(
    main,
    "Log in to Clarion",
    form,
    h("p", {}, "New here? ", h("a", { href: "/portal/signup" }, "Create an account")),
  );
}

export async function accept(main, ctx) {
  const token = ctx.query.get("token") || "";
  const slot = h("div");
  const form = h(
    "form",
    { class: "stack", "aria-label": "Accept invitation" },
    field(
      "Choose a password",
      input("password", "password", "new-password", { minlength: 12 }),
      "12 characters or more, hard to guess.",
    ),
    slot,
    h("button", { type: "submit" }, "Join the team"),
  );
  onSubmit(form, async ({ password }) => {
    showError(slot, null);
    try {
      setSession(await post("/portal/invitations:accept", { token, password }));
    } catch (error) {
      showError(slot, explain(error));
      return;
    }
    navigate("/portal/dashboard", { replace: true });
  });
  page(
    main,
    "Accept your invitation",
    token ? form : h("p", { class: "error", role: "alert" }, "This link has no invitation token. Open the link from your invitation email."),
  );
}
