// Cairn's web UI: live fragments and followed logs. Plain script, no build step.
(function () {
  "use strict";

  // A [data-live] element refreshes its [data-target] from [data-refresh]
  // whenever its event stream says something changed (at most one request at a time).
  function follow(box) {
    var busy = false, again = false, timer = null;
    function refresh() {
      if (busy) { again = true; return; }
      busy = true;
      var done = function () { busy = false; if (again) { again = false; refresh(); } };
      var url = box.getAttribute("data-refresh"), target = box.getAttribute("data-target");
      if (window.htmx && htmx.ajax) {
        htmx.ajax("GET", url, { target: target, swap: "outerHTML" }).then(done, done);
      } else {
        fetch(url, { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (html) {
          var old = document.querySelector(target);
          if (old) { old.outerHTML = html; }
        }).then(done, done);
      }
    }
    function soon() { if (!timer) { timer = setTimeout(function () { timer = null; refresh(); }, 100); } }
    var source = new EventSource(box.getAttribute("data-live"));
    var opened = false;
    source.addEventListener("change", soon);
    source.addEventListener("open", function () { if (opened) { soon(); } opened = true; });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  function followLog(table) {
    var body = document.getElementById("log-lines");
    var status = document.getElementById("log-status");
    var followBox = document.getElementById("follow");
    var wanted = location.hash.match(/^#L(\d+)$/);
    if (wanted) { followBox.checked = false; }
    var source = new EventSource(table.getAttribute("data-log"));
    source.addEventListener("open", function () { status.textContent = "Following the log…"; });
    source.addEventListener("lines", function (event) {
      var rows = JSON.parse(event.data), html = "";
      for (var i = 0; i < rows.length; i++) {
        var n = rows[i][0];
        // The line's HTML was rendered and escaped by the server (ansi2html).
        html += '<tr id="L' + n + '"><td class="ln"><a href="#L' + n + '">' + n + '</a></td><td class="tx">' + rows[i][1] + "</td></tr>";
      }
      body.insertAdjacentHTML("beforeend", html);
      if (wanted && document.getElementById("L" + wanted[1])) {
        var line = document.getElementById("L" + wanted[1]);
        line.classList.add("target");
        line.scrollIntoView({ block: "center" });
        wanted = null;
      } else if (followBox.checked) {
        window.scrollTo(0, document.body.scrollHeight);
      }
    });
    source.addEventListener("end", function (event) {
      source.close();
      status.textContent = "End of log (" + JSON.parse(event.data).lines + " lines).";
    });
    source.addEventListener("failure", function (event) {
      source.close();
      status.textContent = JSON.parse(event.data).message;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(follow);
    var log = document.querySelector("table[data-log]");
    if (log) { followLog(log); }
  });
})();
