// The group message wizard: a preference chosen in step 1 is saved at once, a saved
// format or a recent message fills in step 2, and step 3 drives and shows the send's
// progress.
(function () {
  "use strict";

  document.querySelectorAll("select[data-fix]").forEach(function (select) {
    select.selectedIndex = -1;
    select.addEventListener("change", function () {
      document.getElementById(select.getAttribute("form")).requestSubmit();
    });
  });

  // A missing mobile or email is flagged only for a chosen channel (or before any).
  var channels = document.querySelectorAll("#group-recipients input[name=channels]");
  var reflag = function () {
    var chosen = Array.prototype.filter.call(channels, function (c) { return c.checked; })
      .map(function (c) { return c.value; });
    document.querySelectorAll("td[data-channel]").forEach(function (cell) {
      var wanted = chosen.length === 0 || chosen.indexOf(cell.dataset.channel) >= 0;
      cell.classList.toggle("flag-cell", wanted);
    });
  };
  channels.forEach(function (c) { c.addEventListener("change", reflag); });

  var chooser = document.querySelector("select[data-sources]");
  var data = document.getElementById("group-sources");
  if (chooser && data) {
    var sources = JSON.parse(data.textContent);
    chooser.addEventListener("change", function () {
      var source = sources[Number(chooser.value)];
      if (!source) { return; }
      if (source.channel === "email") {
        var subject = document.getElementById("id_email_subject");
        var body = document.getElementById("id_email_body");
        if (subject) { subject.value = source.subject; }
        if (body) { body.value = source.body; }
      } else {
        var text = document.getElementById("id_sms_body");
        if (text) { text.value = source.body; text.dispatchEvent(new Event("input")); }
      }
    });
  }

  var sms = document.getElementById("id_sms_body") || document.querySelector("#one-off textarea[data-sms-count]");
  var count = document.getElementById("sms-count");
  if (sms && count) {
    // A rough figure while typing (GSM-7 assumed); the review counts each rendered text.
    var show = function () {
      var n = sms.value.length;
      var segments = n <= 160 ? 1 : Math.ceil(n / 153);
      count.textContent = n + " characters, about " + segments + " segment(s) before placeholders are filled in.";
    };
    sms.addEventListener("input", show);
    show();
  }

  var box = document.getElementById("group-progress");
  if (box) {
    var bar = box.querySelector("progress");
    var line = box.querySelector("[data-progress-text]");
    var poll = function () {
      // A POST: each poll also writes the next part of the send (see views/group_send).
      fetch(box.dataset.progressUrl, {
        method: "POST",
        headers: { Accept: "application/json", "X-CSRFToken": box.dataset.csrf },
        credentials: "same-origin"
      })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (p) {
          if (!p) { return; }
          bar.value = p.percent;
          line.textContent = p.done + " of " + p.total + " patients: " + p.queued + " messages queued, " + p.blocked + " blocked.";
          if (p.status === "done") {
            box.querySelector("h2").textContent = "Sent to the queue";
            box.dataset.done = "1";
          } else {
            setTimeout(poll, 300);
          }
        });
    };
    if (bar.value < 100) { poll(); } else { box.dataset.done = "1"; }
  }
})();
