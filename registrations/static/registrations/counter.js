// Progressive enhancement of the counter forms: without JavaScript every field simply shows.
(function () {
  "use strict";

  function toggle(radioName, attribute) {
    var radios = document.querySelectorAll('input[type="radio"][name="' + radioName + '"]');
    if (!radios.length) {
      return;
    }
    function update() {
      var chosen = document.querySelector('input[type="radio"][name="' + radioName + '"]:checked');
      document.querySelectorAll("[" + attribute + "]").forEach(function (group) {
        group.hidden = chosen !== null && group.getAttribute(attribute) !== chosen.value;
      });
    }
    radios.forEach(function (radio) {
      radio.addEventListener("change", update);
    });
    update();
  }

  toggle("sim_kind", "data-sim-kind");
  toggle("channel", "data-channel");
  toggle("by", "data-find-by");
})();
