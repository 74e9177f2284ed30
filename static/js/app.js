// Behaviour that templates ask for with data attributes, so that no page needs an inline script or an inline
// event handler: the Content-Security-Policy runs scripts from our static files only.
(function () {
  // <select data-autosubmit>: submit its form as soon as the choice changes.
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (!field.matches || !field.matches("[data-autosubmit]") || !field.form) return;
    if (field.form.requestSubmit) field.form.requestSubmit(); else field.form.submit();
  });
})();
