// Device search: "select all" and the bulk form's confirmation text,
// which names the action and how many devices it reaches (ui.js shows it).
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var all = document.getElementById("select-all");
    var bulk = document.getElementById("bulk");
    if (!bulk || !bulk.elements.action) { return; }
    function boxes() { return bulk.querySelectorAll("input[name=id]"); }
    function describe() {
      var action = bulk.elements.action.value;
      var whole = document.getElementById("scope-filter");
      var n = 0;
      boxes().forEach(function (b) { if (b.checked) { n++; } });
      bulk.dataset.confirm = whole && whole.checked ?
        "Apply " + action + " to every device of this search (up to 10,000)?" :
        "Apply " + action + " to the " + n + " ticked device(s)?";
    }
    if (all) {
      all.addEventListener("change", function () {
        boxes().forEach(function (b) { b.checked = all.checked; });
        describe();
      });
    }
    bulk.addEventListener("change", describe);
    describe();
  });
})();
