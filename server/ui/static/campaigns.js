// termd console: the campaign planner's selection. Cells of the heat map
// (#heatmap td[data-s]) are selected by a click or a drag; the selection
// is kept in the hidden field #sel as windows "START-END" (unix ms, runs
// of adjacent cells merged), and the server says what it covers
// (/ui/campaigns/plan/cover, rendered there). No inline script, no eval.
(function () {
  "use strict";

  function planner() {
    var map = document.getElementById("heatmap");
    if (!map) { return; }
    var field = document.getElementById("sel");
    var cover = document.getElementById("cover");
    var create = document.getElementById("create");
    var cells = Array.prototype.slice.call(map.querySelectorAll("td[data-s]"));
    var dragging = false, adding = true, timer = null, asked = 0;

    // windows merges the selected cells into runs, in time order.
    function windows() {
      var sel = cells.filter(function (c) { return c.classList.contains("sel"); })
        .map(function (c) { return [Number(c.dataset.s), Number(c.dataset.e)]; })
        .sort(function (a, b) { return a[0] - b[0]; });
      var out = [];
      sel.forEach(function (w) {
        var last = out[out.length - 1];
        if (last && w[0] <= last[1]) { last[1] = Math.max(last[1], w[1]); } else { out.push([w[0], w[1]]); }
      });
      return out.map(function (w) { return w[0] + "-" + w[1]; }).join(",");
    }

    function ask() {
      var sel = field.value;
      var n = ++asked;
      fetch(map.dataset.cover + "&sel=" + encodeURIComponent(sel), { credentials: "same-origin", cache: "no-store" })
        .then(function (r) {
          if (r.status === 401) { location.href = "/ui/login"; return null; }
          return r.text();
        })
        .then(function (html) {
          if (html === null || n !== asked) { return; }
          cover.innerHTML = html; // the server's template output, escaped there
          cover.dataset.sel = sel;
        }, function () { cover.textContent = "Could not reach termd."; });
    }

    function changed() {
      field.value = windows();
      if (create) { create.disabled = field.value === ""; }
      cover.dataset.sel = "…";
      clearTimeout(timer);
      timer = setTimeout(ask, 200);
    }

    function paint(c) { c.classList.toggle("sel", adding); }

    map.addEventListener("mousedown", function (e) {
      var c = e.target.closest("td[data-s]");
      if (!c) { return; }
      e.preventDefault();
      dragging = true;
      adding = !c.classList.contains("sel");
      paint(c);
    });
    map.addEventListener("mouseover", function (e) {
      if (!dragging) { return; }
      var c = e.target.closest("td[data-s]");
      if (c) { paint(c); }
    });
    document.addEventListener("mouseup", function () {
      if (dragging) { dragging = false; changed(); }
    });
    var sug = document.getElementById("select-suggested");
    if (sug) {
      sug.addEventListener("click", function () {
        cells.forEach(function (c) { if (c.classList.contains("sug")) { c.classList.add("sel"); } });
        changed();
      });
    }
    var clear = document.getElementById("clear-selection");
    if (clear) {
      clear.addEventListener("click", function () {
        cells.forEach(function (c) { c.classList.remove("sel"); });
        changed();
      });
    }
  }

  document.addEventListener("DOMContentLoaded", planner);
})();
