// Times stay true while the page is open (the server renders the same words first): every
// <time data-due="ISO"> counts down each second, "in 3 h 12 min" or, once passed, "Overdue by
// 5 min 09 s" in the bad colour (workflows.formats.duration_words); every <time datetime="ISO"
// data-age> says how long ago it was, "just now" under a minute, then "3 minutes ago"
// (workflows.formats.age_words), redone every 30 s.
(function () {
  "use strict";
  const SOON_MS = 3600 * 1000;
  const AGE_UNITS = [[86400, "day"], [3600, "hour"], [60, "minute"]];

  function ago(seconds) {
    for (const [size, unit] of AGE_UNITS) {
      if (seconds >= size) {
        const count = Math.floor(seconds / size);
        return count + " " + unit + (count === 1 ? "" : "s") + " ago";
      }
    }
    return "just now";
  }

  function ages() {
    const now = Date.now();
    document.querySelectorAll("time[data-age]").forEach(function (el) {
      el.textContent = ago(Math.floor((now - Date.parse(el.getAttribute("datetime"))) / 1000));
    });
  }

  function words(seconds) {  // workflows.formats.duration_words, for whole seconds
    const pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (seconds < 60) return seconds + " s";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min " + pad(seconds % 60) + " s";
    const hours = Math.floor(minutes / 60);
    if (hours < 48) return hours + " h " + pad(minutes % 60) + " min";
    return Math.floor(hours / 24) + " d " + (hours % 24) + " h";
  }

  function tick() {
    const now = Date.now();
    document.querySelectorAll("time[data-due]").forEach(function (el) {
      const left = Date.parse(el.dataset.due) - now;
      const overdue = left < 0;
      el.textContent = overdue ? "Overdue by " + words(Math.floor(-left / 1000))
                               : "in " + words(Math.floor(left / 1000));
      el.classList.toggle("bad", overdue);
      el.classList.toggle("warn", !overdue && left < SOON_MS);
      el.classList.toggle("ok", !overdue && left >= SOON_MS);
      const row = el.closest("tr");
      if (row) row.toggleAttribute("data-overdue", overdue);
    });
  }

  tick();
  setInterval(tick, 1000);
  setInterval(ages, 30000);
  document.body.addEventListener("htmx:afterSwap", function () { tick(); ages(); });
})();
