// The staff console's only script of its own. No inline script anywhere: the page's
// Content-Security-Policy allows scripts from /admin/static/ alone.
(function () {
  "use strict";

  // Every htmx request carries the session's CSRF token as a header; plain form posts carry
  // it as the hidden _csrf field. The token is in <meta name="csrf-token">.
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) {
      event.detail.headers["X-CSRF-Token"] = meta.getAttribute("content");
    }
  });

  // A form that came back with errors: the first invalid field gets the focus.
  document.addEventListener("DOMContentLoaded", function () {
    var invalid = document.querySelector('[aria-invalid="true"]');
    if (invalid) {
      invalid.focus();
    }
  });

  // A form marked data-warn-unsaved asks before the page is left with changes in it.
  var dirty = false;
  document.addEventListener("input", function (event) {
    if (event.target.form && event.target.form.hasAttribute("data-warn-unsaved")) {
      dirty = true;
    }
  });
  document.addEventListener("submit", function (event) {
    if (event.target.hasAttribute("data-warn-unsaved")) {
      dirty = false;
    }
  });
  window.addEventListener("beforeunload", function (event) {
    if (dirty) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  // The import form (data-upload): the file is sent as the request's body, as the API takes it,
  // with the options in the query and the CSRF token in its header. Queued: the job's page;
  // refused: why, under the form.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var action = form.getAttribute("data-upload");
    if (!action) {
      return;
    }
    event.preventDefault();
    var file = form.querySelector('input[type="file"]').files[0];
    var out = document.getElementById("upload-result");
    if (!file) {
      return;
    }
    var format = form.elements.format.value;
    var query = new URLSearchParams({
      format: format,
      mode: form.elements.mode.value,
      on_error: form.elements.on_error.value,
      dry_run: form.elements.dry_run.checked ? "true" : "false"
    });
    var meta = document.querySelector('meta[name="csrf-token"]');
    var button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    out.textContent = "Uploading…";
    fetch(action + "?" + query.toString(), {
      method: "POST",
      body: file,
      credentials: "same-origin",
      headers: {
        "Content-Type": format === "jsonl" ? "application/x-ndjson" : "text/csv",
        "X-CSRF-Token": meta ? meta.getAttribute("content") : ""
      }
    }).then(function (response) {
      if (response.ok && response.redirected) {
        window.location.assign(response.url);
        return;
      }
      return response.text().then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var error = doc.getElementById("upload-error");
        out.replaceChildren(error ? document.importNode(error, true) : document.createTextNode("The upload failed (" + response.status + ")."));
        button.disabled = false;
      });
    }).catch(function () {
      out.textContent = "The upload failed: the server could not be reached.";
      button.disabled = false;
    });
  });
})();
