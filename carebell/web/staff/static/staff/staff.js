// carebell staff app: small enhancements. Every form works without them.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // The site switcher submits itself when a site is chosen.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // Timing rows of an automated message: add and remove.
  var offsets = document.querySelector("[data-offsets]");
  if (!offsets) { return; }
  function renumber() {
    offsets.querySelectorAll("[data-offset-row]").forEach(function (row, index) {
      row.querySelectorAll("input, select, label").forEach(function (el) {
        ["name", "id", "for"].forEach(function (attr) {
          var value = el.getAttribute(attr);
          if (value) { el.setAttribute(attr, value.replace(/offset-\d+-/, "offset-" + index + "-")); }
        });
      });
    });
  }
  offsets.addEventListener("click", function (event) {
    var button = event.target.closest("[data-remove-row]");
    if (!button) { return; }
    var rows = offsets.querySelectorAll("[data-offset-row]");
    var row = button.closest("[data-offset-row]");
    if (rows.length > 1) { row.remove(); } else { row.querySelector("input").value = ""; }
    renumber();
  });
  var add = document.querySelector("[data-add-row]");
  if (add) {
    add.addEventListener("click", function () {
      var rows = offsets.querySelectorAll("[data-offset-row]");
      if (rows.length >= 12) { return; }
      var copy = rows[rows.length - 1].cloneNode(true);
      copy.querySelectorAll(".error").forEach(function (el) { el.remove(); });
      copy.querySelector("input").value = "";
      offsets.appendChild(copy);
      renumber();
      copy.querySelector("input").focus();
    });
  }
})();
