// carebell message-format editor: the preview follows the text as it is typed.
// Without this script the editor's Preview button renders the same on the server.
(function () {
  "use strict";
  var form = document.querySelector("[data-format-editor]");
  if (!form) { return; }
  var panel = document.querySelector("[data-preview-panel]");
  var state = document.querySelector("[data-preview-state]");
  var body = form.querySelector("[data-body]");
  var timer = null;
  var latest = 0;
  var lastFocused = body;

  function $(selector) { return panel.querySelector(selector); }
  function show(selector, visible) {
    var el = $(selector);
    if (el) { el.classList.toggle("hidden", !visible); }
  }
  function fill(list, items, render) {
    if (!list) { return; }
    while (list.firstChild) { list.removeChild(list.firstChild); }
    items.forEach(function (item) { list.appendChild(render(item)); });
  }
  function item(text) {
    var li = document.createElement("li");
    li.textContent = text;
    return li;
  }
  function text(selector, value) {
    var el = $(selector);
    if (el) { el.textContent = value === undefined || value === null ? "" : String(value); }
  }

  function cell(content, code) {
    var td = document.createElement("td");
    if (code) {
      var c = document.createElement("code");
      c.textContent = content;
      td.appendChild(c);
    } else {
      td.textContent = content;
    }
    return td;
  }

  function render(data) {
    text("[data-preview-body]", data.body);
    text("[data-preview-subject]", data.subject);
    // The HTML part only ever goes into the sandboxed frame (no scripts, no origin).
    var frame = $("[data-preview-html]");
    if (frame) {
      frame.srcdoc = data.html || "";
      show("[data-preview-html-box]", Boolean(data.html));
    }
    var counter = $("[data-sms-counter]");
    if (counter) {
      counter.classList.toggle("hidden", data.channel !== "sms");
      text("[data-sms-encoding]", data.encoding);
      text("[data-sms-characters]", data.characters);
      text("[data-sms-segments]", data.segments);
    }
    fill($("[data-preview-errors]"), data.errors, function (p) { return item(p.message); });
    show("[data-preview-errors-box]", data.errors.length > 0);
    fill($("[data-preview-warnings]"), data.warnings, function (p) { return item(p.message); });
    show("[data-preview-warnings-box]", data.warnings.length > 0);
    var culprits = data.culprits || [];
    fill($("[data-culprits]"), culprits, function (c) {
      var tr = document.createElement("tr");
      var what = cell(" " + c.name, false);
      var code = document.createElement("code");
      code.textContent = c.codepoint;
      what.insertBefore(code, what.firstChild);
      tr.appendChild(what);
      tr.appendChild(cell(c.replacement === null ? "—" : c.replacement, c.replacement !== null));
      return tr;
    });
    show("[data-culprits-box]", culprits.length > 0);
    fill($("[data-placeholders]"), data.placeholders, function (p) {
      var li = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "secondary chip";
      button.setAttribute("data-insert", p.token);
      button.title = p.description;
      button.textContent = p.token;
      li.appendChild(button);
      return li;
    });
  }

  function refresh() {
    var ticket = ++latest;
    var data = new FormData(form);
    if (state) { state.textContent = state.getAttribute("data-updating") || ""; }
    fetch(form.getAttribute("data-preview-url"), {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-CSRFToken": data.get("csrfmiddlewaretoken"), "Accept": "application/json" }
    }).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.json();
    }).then(function (json) {
      if (ticket !== latest) { return; }  // an answer to an older keystroke
      render(json);
      if (state) { state.textContent = ""; }
    }).catch(function () {
      if (state && ticket === latest) { state.textContent = state.getAttribute("data-unavailable") || ""; }
    });
  }

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  }

  form.addEventListener("input", soon);
  form.addEventListener("change", soon);
  form.addEventListener("focusin", function (event) {
    if (event.target.matches("textarea, input[type=text]")) { lastFocused = event.target; }
  });

  // The placeholder picker puts a token where the cursor was.
  panel.addEventListener("click", function (event) {
    var button = event.target.closest("[data-insert]");
    if (!button || !lastFocused) { return; }
    var field = lastFocused;
    var token = button.getAttribute("data-insert");
    var start = field.selectionStart === null ? field.value.length : field.selectionStart;
    var end = field.selectionEnd === null ? start : field.selectionEnd;
    field.value = field.value.slice(0, start) + token + field.value.slice(end);
    field.focus();
    field.setSelectionRange(start + token.length, start + token.length);
    soon();
  });
})();
