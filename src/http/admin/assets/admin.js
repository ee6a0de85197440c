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
})();
