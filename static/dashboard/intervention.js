// The intervention page keeps what the pilot types. Its body reloads on every event of the
// intervention (another approver's approval, a claim, a delegation); while a form in it holds
// input, a reload that can still be answered is not swapped in: a notice offers the reload
// instead. One that can no longer be answered (resolved, expired or cancelled, claimed by
// someone else) is swapped in all the same, so the pilot sees why, and the notice keeps what
// they had typed. On a correction, "Confirm as proposed" is off while the output editor holds
// other than the proposal (confirming would drop the edit).
(function () {
  "use strict";
  const body = document.getElementById("intervention-body");
  const notice = document.getElementById("intervention-changed");
  if (!body || !notice) return;

  function edited(el) {
    if (el.disabled || el.type === "hidden" || el.type === "submit") return false;
    if (el.type === "checkbox" || el.type === "radio") return el.checked !== el.defaultChecked;
    if (el.tagName === "SELECT") {
      return Array.from(el.options).some(function (o) { return o.selected !== o.defaultSelected; });
    }
    return el.value !== el.defaultValue;
  }

  function show(text, kept) {
    notice.querySelector("[data-notice-text]").textContent = text;
    const unsent = notice.querySelector("[data-notice-kept]");
    unsent.textContent = kept.join("\n\n");
    unsent.hidden = kept.length === 0;
    notice.classList.toggle("bad", kept.length > 0);
    notice.hidden = false;
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.target !== body || !event.detail.shouldSwap) return;
    const edits = Array.from(body.querySelectorAll("input, textarea, select")).filter(edited);
    if (edits.length === 0) {
      if (notice.querySelector("[data-notice-kept]").hidden) notice.hidden = true;
      return;
    }
    const fresh = new DOMParser().parseFromString(event.detail.serverResponse, "text/html");
    if (fresh.getElementById("answer-form") || !body.querySelector("#answer-form")) {
      event.detail.shouldSwap = false;
      show("This intervention changed: reload to see it (what you typed stays until you do).", []);
      return;
    }
    const kept = edits.filter(function (el) { return el.value && el.type !== "checkbox"; });
    show("This intervention can no longer be answered: it changed while you were typing, " +
         "and your answer was not sent. What you had typed:",
         kept.map(function (el) { return el.value; }));
  });

  function guardConfirm() {
    const output = document.getElementById("answer-output");
    const confirm = document.getElementById("decide-confirm");
    const hint = document.getElementById("confirm-hint");
    if (!output || !confirm || output.dataset.proposed === undefined) return;
    const changed = output.value.trim() !== output.dataset.proposed.trim();
    confirm.disabled = changed;
    if (hint) hint.hidden = !changed;
  }

  document.addEventListener("input", guardConfirm);
  document.addEventListener("htmx:afterSwap", guardConfirm);
  guardConfirm();
})();
