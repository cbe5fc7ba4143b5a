// nightjar web UI: a little progressive JavaScript (the pages work without it).
// 1. Live refresh: a page with data-watch polls that API URL every second and
//    reloads when the answer changes (a run appears, a state changes).
// 2. Log follow: the log of a running task is fetched from its offset and
//    appended until the task finishes.
"use strict";
(function () {
  var watch = document.body.dataset.watch;
  if (watch) {
    var base = null, polls = 0;
    var tick = function () {
      polls += 1;
      fetch(watch, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (t) {
          if (t === null) return;
          if (base === null) base = t;
          else if (t !== base) { location.reload(); polls = Infinity; }
        })
        .catch(function () {})
        .finally(function () { if (polls < 600) setTimeout(tick, 1000); });
    };
    tick();
  }

  var log = document.getElementById("log");
  if (log && log.dataset.follow === "true") {
    var offset = Number(log.dataset.offset || 0);
    var status = document.getElementById("log-status");
    var follow = function () {
      fetch(log.dataset.api + "?offset=" + offset, { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then(function (c) {
          var atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
          if (c.text) {
            log.appendChild(document.createTextNode(c.text));
            if (atBottom) log.scrollTop = log.scrollHeight;
          }
          offset = c.next_offset;
          if (c.running || c.next_offset < c.size) setTimeout(follow, 1000);
          else if (status) status.textContent = "task finished";
        })
        .catch(function (e) { if (status) status.textContent = "log follow stopped: " + e.message; });
    };
    follow();
  }
})();
