// The mailbox screen: selection, keyboard, reading pane, drag to folders, live updates.
"use strict";
(function () {
  const main = document.querySelector("[data-folder]");
  if (!main) return;
  const folderId = main.dataset.folder;
  const form = document.querySelector("[data-list-form]");
  const reader = document.querySelector("[data-reader]");
  const readerEmpty = document.querySelector("[data-reader-empty]");
  const baseTitle = document.title.replace(/^\(\d+\)\s*/, "");
  let cursor = -1;

  const rows = () => Array.from(document.querySelectorAll("[data-message-list] .msg"));

  function setCursor(index, scroll) {
    const list = rows();
    if (!list.length) return;
    cursor = Math.max(0, Math.min(index, list.length - 1));
    list.forEach((row, i) => row.classList.toggle("cursor", i === cursor));
    if (scroll !== false) list[cursor].scrollIntoView({ block: "nearest" });
  }
  function currentRow() { return rows()[cursor] || null; }
  function selectedUids() {
    const checked = Array.from(form.querySelectorAll('input[name="uid"]:checked')).map((c) => c.value);
    if (checked.length) return checked;
    const row = currentRow();
    return row ? [row.dataset.uid] : [];
  }

  function open(row) {
    if (!row) return;
    const link = row.querySelector("[data-open]");
    row.classList.remove("unseen");
    if (reader && getComputedStyle(reader.parentElement).display !== "none") {
      reader.hidden = false;
      if (readerEmpty) readerEmpty.hidden = true;
      reader.src = link.getAttribute("href") + "?pane=1";
    } else {
      window.location.href = link.getAttribute("href");
    }
  }

  // Clicks on a message: into the reading pane when there is one.
  document.addEventListener("click", (event) => {
    const link = event.target.closest("[data-open]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
    const row = link.closest(".msg");
    if (reader && getComputedStyle(reader.parentElement).display !== "none") {
      event.preventDefault();
      setCursor(rows().indexOf(row), false);
      open(row);
    }
  });

  const selectAll = document.querySelector("[data-select-all]");
  if (selectAll) {
    selectAll.addEventListener("change", () => {
      form.querySelectorAll('input[name="uid"]').forEach((c) => { c.checked = selectAll.checked; });
    });
  }

  // In the conversation list a row's UID stands for its whole conversation.
  const scope = () => { const field = form.querySelector('input[name="scope"]'); return field ? { scope: field.value } : {}; };

  async function act(action, extra) {
    const uids = selectedUids();
    if (!uids.length) return;
    try {
      const answer = await nmail.post(`/mail/${folderId}/actions`, Object.assign({ action, uid: uids }, scope(), extra || {}));
      nmail.toast(answer.notice);
      await refresh();
    } catch (error) {
      nmail.toast(error.message);
    }
  }

  // Compose URLs are webmsg's (api-webmsg.md): /compose/{reply|reply-all|forward}/{folder}/{uid}.
  function compose(kind) {
    const row = currentRow();
    if (!row) return;
    window.location.href = `/compose/${kind}/${folderId}/${row.dataset.uid}`;
  }

  nmail.keys.on("j", () => setCursor(cursor + 1));
  nmail.keys.on("k", () => setCursor(cursor - 1));
  nmail.keys.on("Enter", () => open(currentRow()));
  nmail.keys.on("o", () => open(currentRow()));
  nmail.keys.on("x", () => {
    const row = currentRow();
    if (row) { const box = row.querySelector('input[name="uid"]'); box.checked = !box.checked; }
  });
  nmail.keys.on("s", () => {
    const row = currentRow();
    if (row) act(row.classList.contains("flagged") ? "unflag" : "flag", { uid: [row.dataset.uid] });
  });
  nmail.keys.on("#", () => act("delete"));
  nmail.keys.on("Delete", () => act("delete"));
  nmail.keys.on("c", () => { window.location.href = "/compose"; });
  nmail.keys.on("r", () => compose("reply"));
  nmail.keys.on("a", () => compose("reply-all"));
  nmail.keys.on("f", () => compose("forward"));

  // Drag messages onto a folder.
  document.addEventListener("dragstart", (event) => {
    const row = event.target.closest && event.target.closest(".msg");
    if (!row) return;
    const box = row.querySelector('input[name="uid"]');
    const uids = box.checked ? selectedUids() : [row.dataset.uid];
    event.dataTransfer.setData("application/x-nmail-uids", uids.join(","));
    event.dataTransfer.effectAllowed = "move";
    row.classList.add("dragging");
  });
  document.addEventListener("dragend", (event) => {
    const row = event.target.closest && event.target.closest(".msg");
    if (row) row.classList.remove("dragging");
  });
  const dropTarget = (event) => {
    const target = event.target.closest && event.target.closest("[data-folder-id]");
    if (!target || target.dataset.folderId === folderId) return null;
    return event.dataTransfer.types.includes("application/x-nmail-uids") ? target : null;
  };
  document.addEventListener("dragover", (event) => {
    const target = dropTarget(event);
    if (!target) return;
    event.preventDefault();
    target.classList.add("drop-over");
  });
  document.addEventListener("dragleave", (event) => {
    const target = event.target.closest && event.target.closest("[data-folder-id]");
    if (target) target.classList.remove("drop-over");
  });
  document.addEventListener("drop", async (event) => {
    const target = dropTarget(event);
    if (!target) return;
    event.preventDefault();
    target.classList.remove("drop-over");
    const uids = event.dataTransfer.getData("application/x-nmail-uids").split(",").filter(Boolean);
    if (!uids.length) return;
    try {
      const answer = await nmail.post(`/mail/${folderId}/actions`, Object.assign({ action: "move", uid: uids, target: target.dataset.folderId }, scope()));
      nmail.toast(answer.notice);
      await refresh();
    } catch (error) {
      nmail.toast(error.message);
    }
  });

  // Re-read this page and swap in the list, counts and folder tree (no full reload).
  let refreshing = null;
  async function refresh() {
    if (refreshing) return refreshing;
    refreshing = (async () => {
      const response = await fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      const keep = new Set(Array.from(form.querySelectorAll('input[name="uid"]:checked')).map((c) => c.value));
      for (const selector of ["[data-list-body]", ".list-head", "[data-folder-tree]"]) {
        const fresh = doc.querySelector(selector);
        const old = document.querySelector(selector);
        if (fresh && old) old.replaceWith(fresh);
      }
      form.querySelectorAll('input[name="uid"]').forEach((c) => { c.checked = keep.has(c.value); });
      const freshMain = doc.querySelector("[data-folder]");
      if (freshMain) updateTitle(Number(freshMain.dataset.inboxUnseen || 0));
      if (cursor >= 0) setCursor(cursor, false);
    })();
    try { await refreshing; } finally { refreshing = null; }
  }

  function updateTitle(unseen) {
    document.title = (unseen > 0 ? `(${unseen}) ` : "") + baseTitle;
  }
  updateTitle(Number(main.dataset.inboxUnseen || 0));

  // New mail without a reload: the server pushes folder changes (Server-Sent Events).
  if (window.EventSource) {
    const events = new EventSource("/events");
    events.addEventListener("folders", (event) => {
      let data = {};
      try { data = JSON.parse(event.data); } catch (e) { return; }
      if (typeof data.inbox_unseen === "number") updateTitle(data.inbox_unseen);
      refresh();
    });
  }
})();
