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

  // Whole years from a date typed as YYYY-MM-DD to today; null while the date is incomplete.
  function ageToday(value) {
    var parts = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || "");
    if (!parts) {
      return null;
    }
    var year = Number(parts[1]);
    var month = Number(parts[2]);
    var day = Number(parts[3]);
    var today = new Date();
    var age = today.getFullYear() - year;
    var thisMonth = today.getMonth() + 1;
    if (thisMonth < month || (thisMonth === month && today.getDate() < day)) {
      age -= 1;
    }
    return age;
  }

  // The confirming adult: folded away while the customer is an adult by the date of birth
  // typed; open for a company, a minor, or when something was entered there or is wrong.
  function representative() {
    var section = document.getElementById("representative-fields");
    if (!section) {
      return;
    }
    var minorAge = Number(section.getAttribute("data-minor-age"));
    var birth = document.getElementById("id_date_of_birth");
    var reveal = document.getElementById("representative-show");
    var opened = section.hasAttribute("data-representative-open");

    function isMinor() {
      var age = birth ? ageToday(birth.value) : null;
      return age !== null && !isNaN(minorAge) && age < minorAge;
    }
    function hasValues() {
      return Array.prototype.some.call(
        section.querySelectorAll("input, select, textarea"),
        function (field) {
          return field.type === "file" ? field.files.length > 0 : field.value !== "";
        }
      );
    }
    function update() {
      var visible = opened || isMinor() || hasValues();
      section.hidden = !visible;
      if (reveal) {
        reveal.hidden = visible;
      }
    }

    if (birth) {
      birth.addEventListener("input", update);
      birth.addEventListener("change", update);
    }
    if (reveal) {
      reveal.querySelector("button").addEventListener("click", function () {
        opened = true;
        update();
        var first = section.querySelector("input, select");
        if (first) {
          first.focus();
        }
      });
    }
    update();
  }

  representative();
  toggle("sim_kind", "data-sim-kind");
  toggle("channel", "data-channel");
  toggle("by", "data-find-by");
  toggle("new_sim_kind", "data-sim-kind");
})();
