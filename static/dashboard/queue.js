// The queue's keyboard: j / k move the selection over the rows (class `selected`,
// aria-selected), Enter opens the selected intervention. The selection follows the same
// intervention when the table reloads live.
(function () {
  "use strict";
  let selectedId = null;

  function rows() {
    return Array.from(document.querySelectorAll("#queue tbody tr[data-href]"));
  }

  function select(row) {
    rows().forEach(function (r) {
      r.classList.remove("selected");
      r.setAttribute("aria-selected", "false");
    });
    if (!row) return;
    row.classList.add("selected");
    row.setAttribute("aria-selected", "true");
    row.scrollIntoView({ block: "nearest" });
    selectedId = row.dataset.id;
  }

  function move(step) {
    const all = rows();
    if (!all.length) return;
    const at = all.findIndex(function (r) { return r.dataset.id === selectedId; });
    const next = at === -1 ? (step > 0 ? 0 : all.length - 1)
                           : Math.min(Math.max(at + step, 0), all.length - 1);
    select(all[next]);
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea" || event.target.isContentEditable) return;
    if (event.key === "j") { move(1); event.preventDefault(); }
    else if (event.key === "k") { move(-1); event.preventDefault(); }
    else if (event.key === "Enter") {
      const row = rows().find(function (r) { return r.dataset.id === selectedId; });
      if (row && tag !== "a" && tag !== "button") { window.location.href = row.dataset.href; event.preventDefault(); }
    }
  });

  document.body.addEventListener("htmx:afterSwap", function () {
    select(rows().find(function (r) { return r.dataset.id === selectedId; }) || null);
  });
})();
