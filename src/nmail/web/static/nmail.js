// nmail: what every page shares. No framework, no build step.
// Conventions (see /work/coord/api-webui.md and docs/ARCHITECTURE.md):
//  - pages work without this file; scripts only make them quicker;
//  - no inline script (the CSP forbids it): a page's data rides in data-* attributes;
//  - state-changing requests carry the CSRF token: nmail.post() adds X-CSRF-Token;
//  - keyboard shortcuts go through nmail.keys.on(), which ignores typing in fields.
"use strict";
(function () {
  const nmail = {};
  window.nmail = nmail;

  // The login form sends the browser's time zone (dates are shown in it unless the
  // user chose another in the settings).
  document.querySelectorAll("input[data-browser-zone]").forEach((input) => {
    try { input.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* none */ }
  });

  nmail.csrf = function () {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  };

  // POST a form-encoded body; resolves to the JSON answer, rejects with a message.
  nmail.post = async function (url, fields) {
    const body = new URLSearchParams();
    for (const [key, value] of Object.entries(fields || {})) {
      if (Array.isArray(value)) value.forEach((v) => body.append(key, v));
      else if (value !== undefined && value !== null) body.append(key, value);
    }
    const response = await fetch(url, {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": nmail.csrf(), "Accept": "application/json" },
    });
    let data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    if (!response.ok) throw new Error(data.detail || response.statusText);
    return data;
  };

  let toastTimer = null;
  nmail.toast = function (text) {
    const el = document.querySelector("[data-toast]");
    if (!el || !text) return;
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, 3500);
  };

  const handlers = {};
  nmail.keys = {
    on(key, fn) { handlers[key] = fn; },
  };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const t = event.target;
    if (t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName))) {
      if (event.key === "Escape") t.blur();
      return;
    }
    const fn = handlers[event.key];
    if (fn) {
      event.preventDefault();
      fn(event);
    }
  });
  nmail.keys.on("/", () => {
    const search = document.querySelector('[data-shortcut="/"]');
    if (search) search.focus();
  });

  document.addEventListener("click", (event) => {
    const asking = event.target.closest("[data-confirm]");
    if (asking && !window.confirm(asking.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
    const toggle = event.target.closest("[data-toggle-nav]");
    if (toggle) {
      const open = document.body.classList.toggle("nav-open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    } else if (document.body.classList.contains("nav-open") && !event.target.closest(".folders-pane")) {
      document.body.classList.remove("nav-open");
    }
  }, true);
})();
