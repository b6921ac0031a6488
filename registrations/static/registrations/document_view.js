// The reason form opens the copy in a new tab; this page stays and says where the copy went.
(function () {
  "use strict";

  var form = document.querySelector("form[data-opens-copy]");
  var note = document.getElementById("copy-opened");
  if (!form || !note) {
    return;
  }
  // The browser checks the required reason first: "submit" fires only when the tab opens.
  form.addEventListener("submit", function () {
    note.hidden = false;
  });
})();
