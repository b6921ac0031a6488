// A job page follows its job: the progress while it runs, then the whole page again (with
// the outcome, rendered by the server) once it has ended.
(function () {
  "use strict";

  var job = document.getElementById("audit-job");
  if (!job || !job.dataset.statusUrl) {
    return;
  }
  var state = job.querySelector("[data-job-state]");
  var bar = job.querySelector("[data-job-progress]");
  var count = job.querySelector("[data-job-count]");
  var delay = 1000;

  function later() {
    // Quick at first, then less often: a long export needs no polling every second.
    delay = Math.min(delay * 1.25, 5000);
    window.setTimeout(poll, delay);
  }

  function show(status) {
    state.textContent = status.state_label;
    state.classList.toggle("text-bg-primary", status.state === "running");
    state.classList.toggle("text-bg-secondary", status.state !== "running");
    count.textContent = status.progress_label;
    if (status.total > 0) {
      bar.max = status.total;
      bar.value = status.done;
    }
  }

  function poll() {
    fetch(job.dataset.statusUrl, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (response.status === 401 || response.status === 403 || response.status === 404) {
          // Signed out, or the job is not there for this user: the page itself says so.
          window.location.reload();
          return null;
        }
        return response.ok ? response.json() : null;
      })
      .then(function (status) {
        if (status && status.finished) {
          window.location.reload();
          return;
        }
        if (status) {
          show(status);
        }
        later();
      })
      .catch(later);
  }

  later();
})();
