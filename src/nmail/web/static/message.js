// The read screen: r/a/f go to the reply and forward forms (the whole window
// when shown inside the list's reading pane).
"use strict";
(function () {
  const article = document.querySelector("[data-message]");
  if (!article || !window.nmail) return;
  const go = (url) => { if (url) (window.top || window).location.href = url; };
  nmail.keys.on("r", () => go(article.dataset.reply));
  nmail.keys.on("a", () => go(article.dataset.replyAll));
  nmail.keys.on("f", () => go(article.dataset.forward));
  nmail.keys.on("c", () => go("/compose"));
})();
