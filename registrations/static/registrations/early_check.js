// Early checks at the identity step: once a document number is typed, the server says what the
// customer already holds against the limit and whether the name and date of birth agree with
// other registrations of the document. The values go in a POST body, never in an address.
// Without JavaScript nothing here runs: the same checks happen when the step is saved.
(function () {
  "use strict";

  var result = document.getElementById("identity-check");
  var form = document.getElementById("step-form");
  var number = document.getElementById("id_document_number");
  if (!result || !form || !number || !result.dataset.checkUrl) {
    return;
  }
  var confirmBox = document.getElementById("discrepancy-confirm");
  var compared = ["name_en", "name_zh", "date_of_birth"];
  var watched = ["document_number"].concat(compared);
  var timer = null;
  var sent = "";
  var sequence = 0;

  function field(name) {
    return document.getElementById("id_" + name);
  }

  function body() {
    var params = new URLSearchParams();
    var token = form.querySelector('input[name="csrfmiddlewaretoken"]');
    params.append("csrfmiddlewaretoken", token ? token.value : "");
    watched.forEach(function (name) {
      var input = field(name);
      if (input) {
        params.append(name, input.value);
      }
    });
    return params;
  }

  // A note under each field that disagrees, read by screen readers with the field.
  function markFields(names, message) {
    compared.forEach(function (name) {
      var input = field(name);
      if (!input) {
        return;
      }
      var id = "id_" + name + "_check";
      var note = document.getElementById(id);
      var described = (input.getAttribute("aria-describedby") || "")
        .split(" ")
        .filter(function (part) {
          return part && part !== id;
        });
      // A field the server already marked says so itself, with the same words.
      if (names.indexOf(name) === -1 || input.classList.contains("is-invalid")) {
        if (note) {
          note.remove();
        }
      } else {
        if (!note) {
          note = document.createElement("div");
          note.id = id;
          note.className = "form-text text-warning-emphasis fw-semibold identity-check-note";
          input.insertAdjacentElement("afterend", note);
        }
        note.textContent = message;
        described.push(id);
      }
      if (described.length) {
        input.setAttribute("aria-describedby", described.join(" "));
      } else {
        input.removeAttribute("aria-describedby");
      }
    });
  }

  function show(html) {
    result.innerHTML = html;
    var found = result.querySelector("[data-discrepancy-fields]");
    var names = found ? found.getAttribute("data-discrepancy-fields").split(" ").filter(Boolean) : [];
    markFields(names, found ? found.getAttribute("data-field-message") || "" : "");
    if (confirmBox) {
      var checkbox = confirmBox.querySelector("input[type=checkbox]");
      var stays = confirmBox.querySelector(".is-invalid") || (checkbox && checkbox.checked);
      confirmBox.hidden = names.length === 0 && !stays;
    }
  }

  function check() {
    timer = null;
    if (!number.value.trim()) {
      sent = "";
      show("");
      return;
    }
    var params = body();
    var key = params.toString();
    if (key === sent) {
      return;
    }
    sent = key;
    var mine = ++sequence;
    fetch(result.dataset.checkUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-CSRFToken": params.get("csrfmiddlewaretoken"),
      },
      body: key,
    })
      .then(function (response) {
        return response.ok ? response.text() : "";
      })
      .then(function (html) {
        if (mine === sequence) {
          show(html);
        }
      })
      .catch(function () {
        if (mine === sequence) {
          sent = "";
          show("");
        }
      });
  }

  function later() {
    if (timer !== null) {
      window.clearTimeout(timer);
    }
    timer = window.setTimeout(check, 600);
  }

  watched.forEach(function (name) {
    var input = field(name);
    if (input) {
      input.addEventListener("input", later);
      input.addEventListener("change", later);
    }
  });
  if (number.value.trim()) {
    check();
  }
})();
