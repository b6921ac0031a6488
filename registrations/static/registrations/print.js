// The receipt's Print button (kept out of the page so a strict Content-Security-Policy can apply).
(function () {
  "use strict";
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () {
      window.print();
    });
  });
})();
