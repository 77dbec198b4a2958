// The page's live connection. <body data-live="/ws/..."> opens that WebSocket; every message of
// run events fires a `live` event on <body>, coalesced over 50 ms, which the page's htmx parts
// listen to (hx-trigger="live from:body") to reload themselves. Whenever the socket opens, and
// when an open one closes, `live` fires with {events: [], resync: true}: the parts reload and so
// catch up on whatever happened while the page was not subscribed.
//
// The detail also carries flat flags for htmx event filters, which rewrite every bare name (so
// an arrow function's parameter) and cannot hold one: an event of type `run.status` sets
// `detail.run` and `detail.run_status`; `detail.runs[<run id>]` and, for interventions'
// events, `detail.interventions[<intervention id>]` are true for the objects in the batch. So
// hx-trigger="live[detail.resync || detail.intervention] from:body".
//
// A part showing what a busy system changes all the time (aggregates, progress, cost) reloads
// paced instead: <div hx-trigger="live-paced" data-live-on="run_cost step_completed"
// data-live-gap-ms="3000"> gets `live-paced` when a batch sets one of the flags it names
// (`resync` among them), at most once every gap and always once after the last such batch, so
// it ends up current without reloading on every event.
(function () {
  "use strict";
  const url = document.body.dataset.live;
  if (!url) return;
  const status = document.getElementById("live-status");
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  let retryMs = 500;
  let batch = null;

  function show(state, text) {
    if (!status) return;
    status.dataset.state = state;
    status.textContent = text;
  }

  function flag(detail, event) {
    const parts = String(event.type || "").split(".");
    for (let n = 1; n <= parts.length; n++) detail[parts.slice(0, n).join("_")] = true;
    if (event.run) detail.runs[event.run] = true;
    const payload = event.payload || {};
    if (parts[0] === "intervention" && payload.intervention) {
      detail.interventions[payload.intervention] = true;
    }
  }

  const paced = new WeakMap();  // element -> {last, timer}

  function pace(detail) {
    document.querySelectorAll("[data-live-on]").forEach(function (el) {
      const wanted = el.dataset.liveOn.split(/\s+/).some(function (name) { return detail[name]; });
      const state = paced.get(el) || { last: 0, timer: null };
      paced.set(el, state);
      if (!wanted || state.timer !== null) return;
      const gapMs = Number(el.dataset.liveGapMs || 3000);
      state.timer = setTimeout(function () {
        state.timer = null;
        state.last = Date.now();
        htmx.trigger(el, "live-paced");
      }, Math.max(0, state.last + gapMs - Date.now()));
    });
  }

  document.body.addEventListener("live", function (event) { pace(event.detail); });

  function fire(events, resync) {
    if (batch === null) {
      batch = { events: [], resync: false, runs: {}, interventions: {} };
      setTimeout(function () {
        const detail = batch;
        batch = null;
        document.body.dispatchEvent(new CustomEvent("live", { detail: detail }));
      }, 50);
    }
    batch.events.push.apply(batch.events, events);
    events.forEach(function (event) { flag(batch, event); });
    batch.resync = batch.resync || resync;
  }

  function connect() {
    const socket = new WebSocket(scheme + location.host + url);
    let opened = false;
    socket.onopen = function () {
      opened = true;
      retryMs = 500;
      show("live", "Live");
      fire([], true);  // what happened between the page's rendering and this subscription
    };
    socket.onmessage = function (message) {
      fire(JSON.parse(message.data).events || [], false);
    };
    socket.onclose = function () {
      show("down", "Reconnecting…");
      // The server closes a socket when its user's access may have changed: reloading the
      // parts now takes a signed-out page to the sign-in page (their 401 says where).
      if (opened) fire([], true);
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    };
  }

  connect();
})();
