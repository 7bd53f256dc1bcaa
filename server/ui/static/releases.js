// termd console, releases pages: the artifact upload with its progress
// bar, the creation form's rollout fields, and keeping the release page's
// live part still while a confirmation dialog is open. No inline script,
// no eval (the Content-Security-Policy forbids both).
(function () {
  "use strict";

  function $(id) { return document.getElementById(id); }

  function fmt(n) { return Number(n).toLocaleString("en-US"); }

  // The artifact goes as the request body (not a multipart form), with
  // the session's CSRF token in X-CSRF-Token; XMLHttpRequest because
  // fetch reports no upload progress. The console streams it to the
  // artifact store (POST /v1/artifacts) and answers the API's JSON.
  function upload() {
    var input = $("artifact-file"), button = $("artifact-upload");
    if (!input || !button) { return; }
    var bar = $("artifact-progress"), status = $("artifact-status");
    function say(text, bad) {
      status.textContent = text;
      status.classList.toggle("error", !!bad);
    }
    button.addEventListener("click", function () {
      var file = input.files && input.files[0];
      if (!file) { say("Choose a file first.", true); return; }
      var most = Number(input.dataset.max || 0);
      if (most && file.size > most) { say("The file is larger than the console takes (" + fmt(most) + " bytes): use termctl artifact upload.", true); return; }
      var csrf = document.querySelector("#release-form input[name=csrf]");
      var xhr = new XMLHttpRequest();
      xhr.open("POST", "/ui/artifacts");
      xhr.setRequestHeader("X-CSRF-Token", csrf ? csrf.value : "");
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          bar.value = Math.floor(e.loaded * 100 / e.total);
          say(fmt(e.loaded) + " of " + fmt(e.total) + " bytes");
        }
      });
      xhr.addEventListener("load", function () {
        button.disabled = false;
        var body = {};
        try { body = JSON.parse(xhr.responseText); } catch (err) { body = { message: xhr.responseText }; }
        if (xhr.status === 401) { location.href = "/ui/login"; return; }
        if (xhr.status !== 200 && xhr.status !== 201) {
          bar.value = 0;
          say("Refused (HTTP " + xhr.status + "): " + (body.message || xhr.statusText), true);
          return;
        }
        bar.value = 100;
        $("sha256").value = body.sha256;
        $("size").value = "";
        $("url").value = "";
        status.dataset.sha256 = body.sha256;
        say("Stored: sha256 " + body.sha256 + ", " + fmt(body.size) + " bytes.");
      });
      xhr.addEventListener("error", function () {
        button.disabled = false;
        bar.value = 0;
        say("The upload failed: the connection broke.", true);
      });
      button.disabled = true;
      bar.value = 0;
      say("Uploading " + file.name + " …");
      xhr.send(file);
    });
    var pick = $("artifact-pick");
    if (pick) {
      pick.addEventListener("change", function () {
        if (pick.value) { $("sha256").value = pick.value; $("size").value = ""; $("url").value = ""; }
      });
    }
  }

  // Show the rollout fields of the chosen kind of rollout only.
  function phaseFields() {
    var sel = $("phases");
    if (!sel) { return; }
    function show() {
      document.querySelectorAll("[data-for-phases]").forEach(function (el) {
        el.classList.toggle("off", el.dataset.forPhases.split(" ").indexOf(sel.value) < 0);
      });
    }
    sel.addEventListener("change", show);
    show();
  }

  // The live part reloads every few seconds and holds the action
  // buttons: while the confirmation dialog is open, neither reload nor
  // swap it, so the form being confirmed stays in the page.
  function holdWhileConfirming() {
    function confirming() { var d = $("confirm"); return !!(d && d.open); }
    document.body.addEventListener("htmx:beforeRequest", function (e) {
      if (confirming() && e.target.id === "release-live") { e.preventDefault(); }
    });
    document.body.addEventListener("htmx:beforeSwap", function (e) {
      if (confirming() && e.target.id === "release-live") { e.detail.shouldSwap = false; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    upload();
    phaseFields();
    holdWhileConfirming();
  });
})();
