// A conversation: each opened message's frame as tall as its content; j/k between
// messages, Enter (or o) opens or closes one. Without this script the frames keep a
// fixed height and scroll (conversations.css).
"use strict";
(function () {
  const thread = document.querySelector("[data-thread]");
  if (!thread) return;
  const items = Array.from(thread.querySelectorAll("[data-thread-msg]"));

  function fit(frame) {
    let doc = null;
    try { doc = frame.contentDocument; } catch (e) { return; }
    if (!doc || !doc.documentElement) return;
    // The read pane fills its window; here it takes the height of what it shows.
    const pane = doc.querySelector(".read-pane");
    if (pane) { pane.style.height = "auto"; pane.style.minHeight = "0"; }
    // The pane's own height: the document's scrollHeight is never less than the frame's
    // (html and body are 100% tall), so a one-line message kept the 70vh it started at.
    const tall = pane ? Math.ceil(pane.getBoundingClientRect().height)
      : doc.documentElement.scrollHeight;
    frame.style.height = `${Math.max(120, tall)}px`;
  }
  thread.querySelectorAll(".thread-frame").forEach((frame) => {
    frame.addEventListener("load", () => {
      fit(frame);
      try {
        const doc = frame.contentDocument;
        // The pane grows (the message body's own frame fitted); the body is the frame's size.
        const watched = doc && (doc.querySelector(".read-pane") || doc.body);
        if (watched && window.ResizeObserver) new ResizeObserver(() => fit(frame)).observe(watched);
      } catch (e) { /* another origin: keep the fixed height */ }
    });
  });

  let cursor = items.length - 1;
  function move(index) {
    if (!items.length) return;
    cursor = Math.max(0, Math.min(index, items.length - 1));
    items.forEach((item, i) => item.classList.toggle("cursor", i === cursor));
    const summary = items[cursor].querySelector("summary");
    summary.focus();
    summary.scrollIntoView({ block: "nearest" });
  }
  if (window.nmail && nmail.keys) {
    nmail.keys.on("j", () => move(cursor + 1));
    nmail.keys.on("k", () => move(cursor - 1));
    nmail.keys.on("o", () => { if (items[cursor]) items[cursor].open = !items[cursor].open; });
    const go = (url) => { (window.top || window).location.href = url; };
    nmail.keys.on("r", () => go(thread.dataset.reply));
    nmail.keys.on("a", () => go(thread.dataset.replyAll));
    nmail.keys.on("f", () => go(thread.dataset.forward));
  }
})();
