// The overview's figures are aggregates: on run and intervention events they reload at most
// once every data-reload-gap-ms, and always once after the last event, so they end up current
// without reloading on every event of a busy system. A resync reloads them too.
(function () {
  "use strict";
  const figures = document.getElementById("overview-figures");
  if (!figures) return;
  const gapMs = Number(figures.dataset.reloadGapMs || 3000);
  let last = 0;
  let timer = null;

  function matters(detail) {
    return detail.resync || detail.run || detail.intervention;  // live.js's flags
  }

  document.body.addEventListener("live", function (event) {
    if (timer !== null || !matters(event.detail)) return;
    timer = setTimeout(function () {
      timer = null;
      last = Date.now();
      htmx.trigger(figures, "overview-reload");
    }, Math.max(0, last + gapMs - Date.now()));
  });
})();
