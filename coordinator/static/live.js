// Keeps a page's live sections current without a reload: each event on the track's stream
// refetches the server-rendered fragment and swaps it in. A burst of events costs one fetch: a
// result shows within a moment, while leases (frequent, and changing little) wait a few seconds.
(function () {
  "use strict";
  var root = document.querySelector("[data-live-events]");
  if (!root || !window.EventSource) return;
  var status = document.querySelector(".live-status");
  var RESULT_DELAY_MS = 400, LEASE_DELAY_MS = 5000;
  var timer = null, dueAt = 0, fetching = false, pending = false, opened = false;

  function say(text, on) {
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("on", on);
  }

  function refresh() {
    timer = null;
    if (fetching) { pending = true; return; }  // one fetch at a time; the newest state follows it
    fetching = true;
    fetch(root.dataset.liveFragment, { cache: "no-store", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html !== null) {
          root.innerHTML = html;
          root.dataset.refreshed = String(Date.now());
        }
      })
      .catch(function () { /* the next event tries again */ })
      .then(function () {
        fetching = false;
        if (pending) { pending = false; schedule(RESULT_DELAY_MS); }
      });
  }

  function schedule(delay) {
    var due = Date.now() + delay;
    if (timer !== null && dueAt <= due) return;  // an earlier refresh will show this too
    clearTimeout(timer);
    dueAt = due;
    timer = setTimeout(refresh, delay);
  }

  function kind(message) {
    try { return JSON.parse(message.data).type; } catch (e) { return ""; }
  }

  var source = new EventSource(root.dataset.liveEvents);
  source.onmessage = function (message) {
    schedule(kind(message) === "lease" ? LEASE_DELAY_MS : RESULT_DELAY_MS);
  };
  source.onopen = function () {
    say("live", true);
    if (opened) schedule(RESULT_DELAY_MS);  // back after a drop: catch up on what was missed
    opened = true;
  };
  source.onerror = function () { say("reconnecting", false); };
  window.addEventListener("pagehide", function () { source.close(); });
})();
