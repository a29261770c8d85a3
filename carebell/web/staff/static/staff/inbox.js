// carebell inbox: new texts and delivery reports without a reload, presence, and
// quick responses filling the reply box. Every page works without it.
(function () {
  "use strict";
  var LIST_EVERY = 5000, THREAD_EVERY = 3000, BEAT_EVERY = 10000;

  function poll(url, params, onData) {
    var query = Object.keys(params).map(function (k) {
      return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]);
    }).join("&");
    var joiner = url.indexOf("?") === -1 ? "?" : "&";
    return fetch(url + joiner + query, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        // Sent to sign-in: the session ended (idle logoff; polls do not keep it
        // alive). Reload, so the page's patient data gives way to the sign-in page.
        if (response.redirected) { window.location.reload(); return null; }
        if (response.status === 200) { return response.json().then(onData); }
        return null;  // 204: nothing changed; anything else: try again next time
      })
      .catch(function () { return null; });
  }

  function every(ms, step) {
    var busy = false;
    window.setInterval(function () {
      if (busy || document.hidden) { return; }
      busy = true;
      Promise.resolve(step()).then(function () { busy = false; }, function () { busy = false; });
    }, ms);
  }

  // The header's Inbox link counts this person's unread conversations.
  function showUnread(count) {
    var link = document.querySelector('.main-nav a[href$="/staff/inbox/"]');
    if (!link || count === undefined) { return; }
    var badge = link.querySelector(".count");
    if (!count) { if (badge) { badge.remove(); } return; }
    if (!badge) { badge = document.createElement("span"); badge.className = "count"; link.appendChild(badge); }
    badge.textContent = count >= 100 ? "99+" : String(count);
  }

  // The inbox list.
  var list = document.querySelector("[data-inbox-list][data-poll]");
  if (list) {
    every(LIST_EVERY, function () {
      return poll(list.dataset.poll, { token: list.dataset.token }, function (data) {
        list.dataset.token = data.token;
        list.innerHTML = data.html;
        showUnread(data.unread);
      });
    });
  }

  // One conversation: its thread and who else has it open.
  var thread = document.querySelector("[data-thread][data-poll]");
  if (thread) {
    var lastBeat = Date.now();
    var presence = document.querySelector("[data-presence]");
    var body = thread.querySelector("[data-thread-body]");
    every(THREAD_EVERY, function () {
      var params = { token: thread.dataset.token, watch: thread.dataset.watch };
      if (Date.now() - lastBeat >= BEAT_EVERY) { params.beat = "1"; lastBeat = Date.now(); }
      return poll(thread.dataset.poll, params, function (data) {
        thread.dataset.token = data.token;
        if (data.html !== undefined) {
          thread.dataset.watch = data.watched;
          body.innerHTML = data.html;
        }
        if (data.present !== undefined && presence) {
          presence.textContent = data.present.length ? presence.dataset.label + " " + data.present.join(", ") : "";
        }
      });
    });
  }

  // A quick response fills the message, which staff may edit before sending.
  var quick = document.querySelector("[data-quick-response]");
  var text = document.querySelector("[data-reply-body]");
  if (quick && text) {
    quick.addEventListener("change", function () {
      var chosen = quick.options[quick.selectedIndex];
      if (chosen && chosen.dataset.body !== undefined) { text.value = chosen.dataset.body; text.focus(); }
    });
  }
})();
