// termd console: the campaign planner's selection. Cells of the heat map
// (#heatmap td[data-s]) are selected by a click or a drag, or from the
// keyboard (one cell is in the tab order; the arrows move between cells,
// Space or Enter toggles one, Shift with an arrow adds the cell moved
// to); the selection
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
      cells.forEach(function (c) { c.setAttribute("aria-selected", c.classList.contains("sel") ? "true" : "false"); });
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
    // Keyboard: a roving tab stop over the selectable cells.
    var current = cells[0] || null;
    cells.forEach(function (c) {
      c.tabIndex = c === current ? 0 : -1;
      c.setAttribute("role", "gridcell");
      c.setAttribute("aria-selected", "false");
    });
    map.setAttribute("role", "grid");
    function moveTo(c) {
      if (current) { current.tabIndex = -1; }
      c.tabIndex = 0;
      c.focus();
      current = c;
    }
    // cellAt is the selectable cell in column i of row r, if any.
    function cellAt(r, i) {
      var c = r && r.children[i];
      return c && c.matches("td[data-s]") ? c : null;
    }
    map.addEventListener("keydown", function (e) {
      var c = e.target.closest("td[data-s]");
      if (!c) { return; }
      var row = c.parentElement, i = Array.prototype.indexOf.call(row.children, c), next = null;
      switch (e.key) {
      case "ArrowRight": next = cellAt(row, i + 1); break;
      case "ArrowLeft": next = cellAt(row, i - 1); break;
      case "ArrowDown": next = cellAt(row.nextElementSibling, i); break;
      case "ArrowUp": next = cellAt(row.previousElementSibling, i); break;
      case " ":
      case "Enter":
        e.preventDefault();
        c.classList.toggle("sel");
        changed();
        return;
      default:
        return;
      }
      e.preventDefault();
      if (!next) { return; }
      if (e.shiftKey) {
        next.classList.add("sel");
        changed();
      }
      moveTo(next);
    });
    map.addEventListener("focusin", function (e) {
      var c = e.target.closest("td[data-s]");
      if (c && c !== current) { moveTo(c); }
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
