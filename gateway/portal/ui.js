// Small DOM helpers. Text always goes in as text nodes, never as HTML, so
// tenant data (recipients, template bodies, reasons) cannot inject markup.
let uid = 0;

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

// A labelled control: h("input"/"select"/"textarea") gets an id tied to its <label>.
export function field(label, control, hint) {
  const id = control.id || `f${++uid}`;
  control.id = id;
  const parts = [h("label", { for: id }, label), control];
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("span", { class: "hint", id: hintId }, hint));
  }
  return h("div", { class: "field" }, parts);
}

export function select(name, options, value) {
  return h(
    "select",
    { name },
    options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)),
  );
}

export function badge(status) {
  return status ? h("span", { class: `badge s-${status}` }, status) : "";
}

export function time(ts) {
  if (!ts) return "—";
  const d = new Date(ts);
  return h("time", { datetime: ts, title: ts }, d.toLocaleString());
}

export function table(caption, headers, rows) {
  return h(
    "table",
    {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows),
  );
}

export function errorBox(error) {
  const reason = error.reason ? ` (${error.reason})` : "";
  return h("p", { class: "error", role: "alert" }, `${error.message}${reason}`);
}

// Shows an error in place of `slot`'s content, or clears it.
export function showError(slot, error) {
  slot.replaceChildren(error ? errorBox(error) : "");
}

export function announce(text) {
  const region = document.getElementById("announce");
  region.textContent = "";
  // A fresh text node after clearing makes screen readers read it again.
  setTimeout(() => (region.textContent = text), 50);
}

export function copyButton(text, label = "Copy") {
  const button = h("button", { type: "button", class: "secondary" }, label);
  button.addEventListener("click", async () => {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
    announce("Copied to the clipboard");
  });
  return button;
}

// Runs `fn` on submit with the form's values; disables the submit button meanwhile.
export function onSubmit(form, fn) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    try {
      await fn(Object.fromEntries(new FormData(form)));
    } finally {
      if (button) button.disabled = false;
    }
  });
  return form;
}

export function page(main, title, ...children) {
  document.title = `${title} · Clarion portal`;
  main.replaceChildren();
  append(main, [h("h1", {}, title), children]);
}
