// Choosing a language submits the switcher form (no inline handler: the CSP forbids them).
(function () {
  "use strict";
  var select = document.getElementById("language-select");
  if (select) {
    select.addEventListener("change", function () {
      select.form.submit();
    });
  }
})();
