// The compose form: attachments uploaded as soon as they are chosen or dropped
// (with progress, checked against the limit before and after), drafts saved
// every half minute, address completion, Cc/Bcc rows, a simple rich-text mode.
// Without this script the form still works: files go with the form post.
"use strict";
(function () {
  const form = document.querySelector("[data-compose-form]");
  if (!form || !window.nmail) return;
  const limit = Number(form.dataset.limit || 0);
  const list = form.querySelector("[data-attachment-list]");
  const fileInput = form.querySelector("[data-file-input]");
  const status = form.querySelector("[data-compose-status]");
  const dropzone = form.querySelector("[data-dropzone]");
  const textarea = form.querySelector("#compose-body");
  const rich = form.querySelector("[data-rich-editor]");
  const richToggle = form.querySelector("[data-rich-toggle]");
  const richTools = form.querySelector("[data-rich-tools]");
  const richHtml = form.querySelector("[data-rich-html]");
  let pending = 0;

  const staged = () => Array.from(list.querySelectorAll("[data-size]"))
    .reduce((sum, el) => sum + Number(el.dataset.size || 0), 0);
  const say = (text) => { if (status) status.textContent = text; };
  const human = (n) => n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`;

  // Cc and Bcc rows stay folded until asked for.
  form.querySelectorAll("[data-show-row]").forEach((button) => {
    button.addEventListener("click", () => {
      const row = form.querySelector(`[data-row="${button.dataset.showRow}"]`);
      row.classList.remove("optional");
      row.querySelector("input").focus();
      button.hidden = true;
    });
  });

  function chip(name, size) {
    const li = document.createElement("li");
    li.className = "chip";
    const label = document.createElement("bdi");  // a name's bidi controls stay inside it
    label.textContent = name;
    const meta = document.createElement("span");
    meta.className = "muted small";
    meta.textContent = human(size);
    const bar = document.createElement("progress");
    bar.max = 100; bar.value = 0;
    bar.setAttribute("aria-label", form.dataset.uploading);
    const remove = document.createElement("button");
    remove.type = "button"; remove.className = "link-button"; remove.textContent = form.dataset.remove;
    li.append(label, meta, bar, remove);
    list.append(li);
    return { li, bar, remove };
  }

  function upload(file) {
    const used = staged();
    const { li, bar, remove } = chip(file.name, file.size);
    if (limit && used + file.size > limit) {  // said before any byte is sent
      li.classList.add("failed");
      bar.remove();
      say(form.dataset.tooLarge);
      nmail.toast(form.dataset.tooLarge);
      remove.addEventListener("click", () => li.remove());
      return;
    }
    pending += 1;
    const xhr = new XMLHttpRequest();
    const query = new URLSearchParams({ name: file.name, already: String(used) });
    xhr.open("POST", `/compose/upload?${query}`);
    xhr.setRequestHeader("X-CSRF-Token", nmail.csrf());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
    });
    xhr.addEventListener("loadend", () => {
      pending -= 1;
      let data = {};
      try { data = JSON.parse(xhr.responseText || "{}"); } catch (e) { data = {}; }
      if (xhr.status === 200 && data.id) {
        bar.remove();
        li.dataset.size = String(data.size);
        li.dataset.uploadId = data.id;
        const hidden = document.createElement("input");
        hidden.type = "hidden"; hidden.name = "upload"; hidden.value = data.id;
        li.append(hidden);
        say("");
      } else {
        li.classList.add("failed");
        bar.remove();
        const why = data.detail || form.dataset.uploadFailed;
        say(why);
        nmail.toast(why);
      }
    });
    remove.addEventListener("click", () => {
      if (li.dataset.uploadId) nmail.post(`/compose/upload/${li.dataset.uploadId}/delete`).catch(() => {});
      else xhr.abort();
      li.remove();
    });
    xhr.send(file);
  }

  function take(files) {
    Array.from(files).forEach(upload);
  }
  fileInput.addEventListener("change", () => {
    take(fileInput.files);
    fileInput.value = "";  // uploaded already: not sent again with the form
  });
  ["dragenter", "dragover"].forEach((type) => dropzone.parentElement.addEventListener(type, (e) => {
    if (!e.dataTransfer || !Array.from(e.dataTransfer.types).includes("Files")) return;
    e.preventDefault();
    dropzone.classList.add("drop-over");
  }));
  ["dragleave", "drop"].forEach((type) => dropzone.parentElement.addEventListener(type, () => {
    dropzone.classList.remove("drop-over");
  }));
  dropzone.parentElement.addEventListener("drop", (e) => {
    if (!e.dataTransfer || !e.dataTransfer.files.length) return;
    e.preventDefault();
    take(e.dataTransfer.files);
  });

  // Rich text: a contenteditable box; the server sanitizes what it gets.
  function setRich(on) {
    if (on) {
      rich.textContent = "";
      textarea.value.split("\n").forEach((line, i) => {
        if (i) rich.append(document.createElement("br"));
        rich.append(document.createTextNode(line));
      });
    } else {
      textarea.value = rich.innerText;
    }
    rich.hidden = !on;
    textarea.hidden = on;
    richTools.hidden = !on;
  }
  richToggle.addEventListener("change", () => setRich(richToggle.checked));
  if (richToggle.checked) setRich(true);
  richTools.addEventListener("click", (e) => {
    const button = e.target.closest("[data-cmd]");
    if (!button) return;
    let value = null;
    if (button.dataset.cmd === "createLink") {
      value = window.prompt(button.dataset.prompt || "URL", "https://");
      if (!value) return;
    }
    rich.focus();
    document.execCommand(button.dataset.cmd, false, value);
  });
  function syncRich() {
    if (richToggle.checked) {
      richHtml.value = rich.innerHTML;
      textarea.value = rich.innerText;
    } else {
      richHtml.value = "";
    }
  }

  // Address completion from the address book and recent recipients.
  const suggestions = form.querySelector("[data-suggestions]");
  let timer = null;
  form.querySelectorAll("[data-recipients]").forEach((input) => {
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const value = input.value;
        const cut = Math.max(value.lastIndexOf(","), value.lastIndexOf(";"));
        const head = cut >= 0 ? value.slice(0, cut + 1) + " " : "";
        const word = value.slice(cut + 1).trim();
        suggestions.textContent = "";
        if (word.length < 1) return;
        try {
          const response = await fetch(`/compose/recipients?q=${encodeURIComponent(word)}`,
            { credentials: "same-origin", headers: { Accept: "application/json" } });
          const found = await response.json();
          found.forEach((c) => {
            const option = document.createElement("option");
            // A group goes in by name; the server puts its members in when sending.
            const shown = c.group ? c.name : c.name ? `${c.name} <${c.address}>` : c.address;
            option.value = head + shown + ", ";
            option.label = c.group
              ? `${c.name} (${(form.dataset.groupLabel || "{n}").replace("{n}", c.members)})` : shown;
            suggestions.append(option);
          });
        } catch (e) { /* completion is a help only */ }
      }, 150);
    });
  });

  // Drafts: saved every 30 seconds while something changed.
  let dirty = false;
  let saving = false;
  form.addEventListener("input", () => { dirty = true; });
  async function saveDraft() {
    if (!dirty || saving || pending) return;
    let again = false;
    saving = true;
    dirty = false;
    syncRich();
    const data = new FormData(form);
    data.delete("files");
    data.set("action", "save");
    try {
      // form.action would be the buttons named "action", not the attribute.
      const response = await fetch(form.getAttribute("action"), {
        method: "POST", body: data, credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": nmail.csrf() },
      });
      const answer = await response.json();
      if (response.ok && answer.draft) {
        form.querySelector("[data-draft-uid]").value = answer.draft;
        if (answer.carry_from) form.querySelector('input[name="carry_from"]').value = answer.carry_from;
        if (answer.carry_parts) {
          // The new draft holds the checked ones; unchecked ones are gone with the old draft.
          Array.from(form.querySelectorAll('input[name="carry_part"]')).forEach((box) => {
            if (!box.checked) box.closest("li").remove();
          });
          const boxes = Array.from(form.querySelectorAll('input[name="carry_part"]'));
          boxes.forEach((box, i) => { if (i < answer.carry_parts.length) box.value = answer.carry_parts[i]; });
        }
        say(`${form.dataset.saved} ${new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`);
      } else if (answer.dropped) {
        // The forwarded message has gone: leave it out as the re-shown form does after
        // Save, say so once, and save again now (it failed every 30 s before).
        dropReference(answer.dropped);
        showProblem(answer.detail);
        dirty = true;
        again = true;
      } else {
        dirty = true;
      }
    } catch (e) {
      dirty = true;
    } finally {
      saving = false;
    }
    if (again) saveDraft();
  }
  function dropReference(field) {
    if (field !== "attach_message" && field !== "carry_from") return;
    const input = form.querySelector(`input[name="${field}"]`);
    if (input) input.value = "";
    if (field === "attach_message") {
      const note = form.querySelector("[data-attached-note]");
      if (note) note.remove();
    } else {
      form.querySelectorAll('input[name="carry_part"]').forEach((box) => box.closest("li").remove());
    }
  }
  function showProblem(text) {
    let alert = form.querySelector("#compose-error");
    if (!alert) {
      alert = document.createElement("div");
      alert.className = "alert alert-error";
      alert.id = "compose-error";
      alert.setAttribute("role", "alert");
      form.querySelector(".compose-head").after(alert);
    }
    alert.textContent = text;
  }
  setInterval(saveDraft, 30000);

  form.addEventListener("submit", (e) => {
    if (pending) {  // wait for uploads still running
      e.preventDefault();
      say(form.dataset.uploading);
      return;
    }
    syncRich();
  });
  form.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      form.querySelector('button[value="send"]').click();
    }
  });
})();
