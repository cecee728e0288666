/* ir console: live updates. The pages work without this file; it only
   - listens to /api/stream (Server-Sent Events) and, on `change`, fetches the board (or the incident list)
     as an HTML fragment and swaps it in without a reload — but never under someone's fingers: while a
     field in it has focus or holds typed text, the swap waits and the status line says so;
   - ticks the countdowns every second between changes, turning them amber when due soon and red when
     overdue, and fetches the board afresh when one of them crosses such a line (deadlines move on
     without any event);
   - disables a form's buttons once it is sent (no double submission).
   What it says comes from the page (#ir-strings): the console's one dictionary, in the reader's language.
   The status line (#live-status) is the polite live region: a change is announced in one short line,
   rather than the whole board being read out again. */
(function () {
  "use strict";

  var strings = {};
  try {
    strings = JSON.parse(document.getElementById("ir-strings").textContent || "{}");
  } catch (e) {
    strings = {};
  }

  function say(key, fields) {
    var text = strings[key] || "";
    Object.keys(fields || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(String(fields[name]));
    });
    return text;
  }

  /* the same wording as the server's (rendering.span_text) */
  function span(seconds) {
    var s = Math.abs(Math.round(seconds));
    var d = Math.floor(s / 86400);
    var h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60);
    var sec = s % 60;
    var parts;
    if (d) {
      parts = [d + say("unit.d"), h ? h + say("unit.h") : ""];
    } else if (h) {
      parts = [h + say("unit.h"), m ? m + say("unit.m") : ""];
    } else if (m) {
      parts = [m + say("unit.m"), sec && m < 10 ? sec + say("unit.s") : ""];
    } else {
      parts = [sec + say("unit.s")];
    }
    return parts.filter(Boolean).join(say("unit.sep"));
  }

  var status = document.getElementById("live-status");
  var clearing = null;

  function announce(text, withButton, lasting) {
    if (!status) {
      return;
    }
    window.clearTimeout(clearing);
    status.textContent = text;
    if (withButton) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "btn";
      button.textContent = say("live.apply");
      button.addEventListener("click", function () {
        applyPending(true);
      });
      status.appendChild(button);
    } else if (!lasting) {
      clearing = window.setTimeout(function () {
        status.textContent = ""; // said, then out of the way
      }, 6000);
    }
  }

  var root = document.querySelector("[data-live]");
  var pending = null; // a fetched fragment waiting for the user to finish typing
  var inFlight = false;
  var queued = null;
  var lastTimerRefresh = 0;

  /* -- countdowns ---------------------------------------------------------------------------------- */

  var loadedAt = Date.now();

  function tick() {
    if (root && root.getAttribute("data-tick") === "0") {
      return; // simulated time: the server's clock, not this one, says how late it is
    }
    var soon = root ? parseInt(root.getAttribute("data-soon") || "900", 10) : 900;
    var elapsed = (Date.now() - loadedAt) / 1000;
    var crossed = false;
    var items = document.querySelectorAll(".cd[data-left]");
    for (var i = 0; i < items.length; i++) {
      var el = items[i];
      var left = parseFloat(el.getAttribute("data-left")) - elapsed;
      var state = left < 0 ? "overdue" : left <= soon ? "due_soon" : "upcoming";
      el.textContent = left < 0 ? say("cd.late", { t: span(-left) }) : say("cd.left", { t: span(left) });
      if (!el.classList.contains("dl-" + state)) {
        crossed = true;
        el.classList.remove("dl-upcoming", "dl-due_soon", "dl-overdue");
        el.classList.add("dl-" + state);
      }
    }
    if (crossed && root && Date.now() - lastTimerRefresh > 30000) {
      lastTimerRefresh = Date.now();
      refresh("timer"); // the cards, counts and lists follow the countdowns that crossed a line
    }
  }

  /* -- live updates --------------------------------------------------------------------------------- */

  function currentVersion() {
    var board = root && root.querySelector("[data-version]");
    return board ? parseInt(board.getAttribute("data-version"), 10) : -1;
  }

  function editing() {
    var active = document.activeElement;
    if (active && root.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) {
      return true;
    }
    var fields = root.querySelectorAll("input, textarea, select");
    for (var i = 0; i < fields.length; i++) {
      if (dirty(fields[i])) {
        return true;
      }
    }
    return false;
  }

  function dirty(field) {
    var type = field.type;
    if (type === "hidden" || type === "submit" || type === "button") {
      return false;
    }
    if (type === "file") {
      return Boolean(field.files && field.files.length);
    }
    if (type === "radio" || type === "checkbox") {
      return field.checked !== field.defaultChecked;
    }
    if (field.tagName === "SELECT") {
      var options = field.options;
      var marked = false;
      for (var i = 0; i < options.length; i++) {
        marked = marked || options[i].defaultSelected;
      }
      for (var j = 0; j < options.length; j++) {
        var expected = marked ? options[j].defaultSelected : j === 0;
        if (options[j].selected !== expected) {
          return true;
        }
      }
      return false;
    }
    return field.value !== field.defaultValue;
  }

  function detailsKey(d) {
    var owner = d.parentElement ? d.parentElement.closest("[id]") : null;
    return (owner ? owner.id : "") + "|" + (d.className || "");
  }

  function swap(html, reason) {
    var before = currentVersion();
    var focusedId = document.activeElement && root.contains(document.activeElement) ? document.activeElement.id : null;
    var open = [];
    root.querySelectorAll("details[open]").forEach(function (d) {
      open.push(detailsKey(d));
    });
    root.setAttribute("aria-busy", "true");
    root.innerHTML = html;
    root.querySelectorAll("details").forEach(function (d) {
      if (open.indexOf(detailsKey(d)) >= 0) {
        d.open = true; // what the reader had unfolded stays unfolded
      }
    });
    root.removeAttribute("aria-busy");
    if (focusedId) {
      var target = document.getElementById(focusedId);
      if (target) {
        target.focus({ preventScroll: true });
      }
    }
    loadedAt = Date.now();
    tick();
    if (reason !== "change") {
      return;
    }
    if (root.getAttribute("data-live") === "board") {
      if (currentVersion() !== before) {
        announce(say("live.updated", { version: currentVersion() }));
      }
    } else {
      announce(say("live.list_updated"));
    }
  }

  function applyPending(force) {
    if (pending === null || (!force && editing())) {
      return;
    }
    var next = pending;
    pending = null;
    swap(next.html, next.reason);
  }

  function refresh(reason) {
    if (inFlight) {
      queued = queued === "change" ? queued : reason;
      return;
    }
    inFlight = true;
    fetch(root.getAttribute("data-fragment"), {
      credentials: "same-origin",
      headers: { Accept: "text/html" },
      cache: "no-store",
    })
      .then(function (response) {
        var path = new URL(response.url).pathname;
        if (response.redirected && (path === "/login" || path === "/password")) {
          window.location.assign(response.url); // signed out meanwhile
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html === null) {
          return;
        }
        if (editing()) {
          pending = { html: html, reason: reason };
          if (reason === "change") {
            announce(say("live.pending"), true);
          }
        } else {
          pending = null;
          swap(html, reason);
        }
      })
      .catch(function () {
        announce(say("live.reconnecting"), false, true);
      })
      .then(function () {
        inFlight = false;
        if (queued !== null) {
          var again = queued;
          queued = null;
          refresh(again);
        }
      });
  }

  function connect() {
    if (!window.EventSource) {
      return;
    }
    var source = new EventSource(root.getAttribute("data-stream"));
    var wasDown = false;
    source.addEventListener("open", function () {
      root.setAttribute("data-connected", "1");
      if (wasDown) {
        announce(say("live.connected"));
        refresh("change"); // changes may have been missed while the connection was down
      }
      wasDown = false;
    });
    source.addEventListener("change", function (event) {
      if (root.getAttribute("data-live") === "board") {
        try {
          var data = JSON.parse(event.data);
          if (typeof data.version === "number" && data.version <= currentVersion()) {
            return; // already showing it (our own change, seen after the redirect)
          }
        } catch (e) {
          /* refresh anyway */
        }
      }
      refresh("change");
    });
    source.addEventListener("error", function () {
      root.removeAttribute("data-connected");
      wasDown = true;
      announce(say("live.reconnecting"), false, true);
    });
  }

  /* -- forms --------------------------------------------------------------------------------------- */

  document.addEventListener("submit", function (event) {
    var form = event.target;
    window.setTimeout(function () {
      form.querySelectorAll("button[type=submit], button:not([type])").forEach(function (b) {
        b.disabled = true; // sent: a second tap would send it twice
      });
    }, 0);
  });

  window.addEventListener("pageshow", function () {
    document.querySelectorAll("button[disabled]").forEach(function (b) {
      b.disabled = false; // back from the history: the buttons work again
    });
  });

  document.addEventListener("focusout", function () {
    window.setTimeout(function () {
      applyPending(false);
    }, 200);
  });

  if (window.matchMedia && window.matchMedia("(min-width: 900px)").matches) {
    document.querySelectorAll("details[data-open-wide]").forEach(function (d) {
      d.open = true; // room enough: show the section links at once
    });
  }

  if (root) {
    connect();
    if (root.getAttribute("data-live") === "list") {
      // the list's counts move on with the clock: look again every minute while it is on screen
      window.setInterval(function () {
        if (document.visibilityState === "visible") {
          refresh("timer");
        }
      }, 60000);
    }
  }
  window.setInterval(tick, 1000);
})();
