// The idle sign-out warning. The server signs a session out after some minutes without a
// request; this counts down from the seconds it left on <body data-idle-seconds-left>, and a
// minute before the end shows a warning whose button posts to the keep-alive endpoint.
//
// Several tabs share one session: before warning or giving up, the script asks the server how
// long is really left (activity in another tab counts), and a tab that renews the session tells
// the others through localStorage.
(function () {
  "use strict";
  var body = document.body;
  var left = parseInt(body.getAttribute("data-idle-seconds-left"), 10);
  var warnAt = parseInt(body.getAttribute("data-idle-warning-seconds"), 10);
  var statusUrl = body.getAttribute("data-session-url");
  var loginUrl = body.getAttribute("data-login-url");
  var box = document.getElementById("idle-warning");
  var countdown = document.getElementById("idle-countdown");
  var form = document.getElementById("idle-keep-alive");
  if (!(left >= 0) || !(warnAt > 0) || !statusUrl || !box || !countdown || !form) {
    return;
  }
  var STORAGE_KEY = "simreg-session-renewed";
  var deadline = Date.now() + left * 1000;
  var checkedAt = 0; // when the server last confirmed the deadline
  var asking = false;
  var latest = 0; // number of the newest request: an older answer arriving late is ignored
  var stopped = false;

  function secondsLeft() {
    return Math.max(0, Math.round((deadline - Date.now()) / 1000));
  }

  function show(seconds) {
    var minutes = Math.floor(seconds / 60);
    var rest = seconds % 60;
    countdown.textContent = minutes + ":" + (rest < 10 ? "0" : "") + rest;
    if (box.classList.contains("d-none")) {
      box.classList.remove("d-none");
      var button = form.querySelector("button");
      if (button) {
        button.focus();
      }
    }
  }

  function hide() {
    box.classList.add("d-none");
  }

  function signedOut() {
    var here = window.location.pathname + window.location.search;
    window.location.assign(loginUrl + "?next=" + encodeURIComponent(here));
  }

  function update(data) {
    if (!data || data.signed_in !== true) {
      signedOut();
      return;
    }
    if (typeof data.seconds_left === "number") {
      deadline = Date.now() + data.seconds_left * 1000;
    }
    checkedAt = Date.now();
  }

  function tellOtherTabs() {
    try {
      window.localStorage.setItem(STORAGE_KEY, String(Date.now()));
    } catch (e) {
      // Storage may be disabled; the other tabs then find out when they ask the server.
    }
  }

  function ask(request, force) {
    if (asking && !force) {
      return;
    }
    asking = true;
    var mine = ++latest;
    // A redirect means the session is gone (to the sign-in page): do not follow it here.
    fetch(request.url, {
      method: request.method || "GET",
      body: request.body,
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      redirect: "manual",
    })
      .then(function (response) {
        if (response.type === "opaqueredirect" || response.status === 401) {
          return { signed_in: false };
        }
        if (response.status === 403) {
          stopped = true; // a user with no role: no page to keep alive
          hide();
          return null;
        }
        if (!response.ok) {
          return null; // a passing failure: try again at the next tick
        }
        return response.json();
      })
      .then(function (data) {
        if (data !== null && mine === latest) {
          update(data);
          if (request.method === "POST" && data.signed_in === true) {
            tellOtherTabs(); // only now: a tab asking earlier would still see the old time
          }
        }
      })
      .catch(function () {
        // Offline for a moment: the next tick asks again.
      })
      .then(function () {
        if (mine !== latest) {
          return;
        }
        asking = false;
        if (!stopped && secondsLeft() > 0) {
          tick(); // show or hide the warning at once; at zero the next tick asks again
        }
      });
  }

  function tick() {
    var seconds = secondsLeft();
    if (seconds > warnAt) {
      hide();
      return;
    }
    // Before warning, and every 10 seconds while warning, ask the server: another tab may
    // have renewed the session.
    if (Date.now() - checkedAt > 10000 || seconds === 0) {
      ask({ url: statusUrl });
      return;
    }
    show(seconds);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    hide();
    // Sent even while the status is being asked: the renewal must not wait for it.
    ask({ url: form.action, method: "POST", body: new FormData(form) }, true);
  });

  window.addEventListener("storage", function (event) {
    if (event.key === STORAGE_KEY && secondsLeft() <= warnAt) {
      ask({ url: statusUrl }, true); // newer than any answer under way
    }
  });

  // Loading a page is activity: the other tabs' countdowns start again.
  tellOtherTabs();

  window.setInterval(function () {
    if (!asking && !stopped) {
      tick();
    }
  }, 1000);
})();
