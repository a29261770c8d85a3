// The import page's progress bar: polls the job while it is checked or applied,
// and shows the finished page (its outcome and report) once it is done.
(function () {
  "use strict";
  const bar = document.getElementById("import-bar");
  if (bar) {
    // The page's own width for the bar (CSSOM, which the style CSP allows).
    bar.style.width = "100%";
    bar.style.height = "1.2rem";
  }
  const box = document.getElementById("import-progress");
  if (!box) return;
  const rows = document.getElementById("import-rows");
  const url = box.dataset.pollUrl;

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((job) => {
        bar.value = job.percent;
        bar.textContent = job.percent + "%";
        if (rows) rows.textContent = job.rows + " rows read";
        if (job.running) {
          window.setTimeout(poll, 1000);
        } else {
          bar.value = 100;
          window.location.reload();
        }
      })
      .catch(() => window.setTimeout(poll, 3000));
  }
  window.setTimeout(poll, 500);
})();
