/* ir console: live updates. The pages work without this file; it only
   - listens to /api/stream (Server-Sent Events) and, on `change`, fetches the board (or the incident list)
     as an HTML fragment and swaps it in without a reload — but never under someone's fingers: while a
     field in it has focus or holds typed text, the swap waits and a status line says so;
   - ticks the countdowns every second between changes, turning them amber when due soon and red when overdue;
   - disables a form's buttons once it is sent (no double submission).
   Strings come from the page (#ir-strings), from the console's one dictionary. */
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
    if (!withButton && !lasting) {
      clearing = window.setTimeout(function () {
        status.textContent = "";
      }, 6000); // said, then out of the way
    }
    if (withButton) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "btn";
      button.textContent = say("live.apply");
      button.addEventListener("click", function () {
        applyPending(true);
      });
      status.appendChild(button);
    }
  }

  /* -- countdowns ---------------------------------------------------------------------------------- */

  var loadedAt = Date.now();

  function tick() {
    var root = document.querySelector("[data-live]");
    if (root && root.getAttribute("data-tick") === "0") {
      return;
    }
    var soon = root ? parseInt(root.getAttribute("data-soon") || "900", 10) : 900;
    var elapsed = (Date.now() - loadedAt) / 1000;
    var items = document.querySelectorAll(".cd[data-left]");
    for (var i = 0; i < items.length; i++) {
      var el = items[i];
      var left = parseFloat(el.getAttribute("data-left")) - elapsed;
      var state = left < 0 ? "overdue" : left <= soon ? "due_soon" : "upcoming";
      el.textContent = left < 0 ? say("cd.late", { t: span(-left) }) : say("cd.left", { t: span(left) });
      el.classList.remove("dl-upcoming", "dl-due_soon", "dl-overdue");
      el.classList.add("dl-" + state);
    }
  }

  /* -- live updates --------------------------------------------------------------------------------- */

  var root = document.querySelector("[data-live]");
  var pending = null; // a fetched fragment waiting for the user to finish typing
  var inFlight = false;
  var again = false;

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

  function swap(html) {
    var focusedId = document.activeElement && root.contains(document.activeElement) ? document.activeElement.id : null;
    var openDetails = [];
    root.querySelectorAll("details[open]").forEach(function (d) {
      var owner = d.closest("[id]");
      openDetails.push((owner ? owner.id : "") + "|" + (d.className || ""));
    });
    root.setAttribute("aria-busy", "true");
    root.innerHTML = html;
    root.querySelectorAll("details").forEach(function (d) {
      var owner = d.closest("[id]");
      if (openDetails.indexOf((owner ? owner.id : "") + "|" + (d.className || "")) >= 0) {
        d.open = true;
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
    var kind = root.getAttribute("data-live");
    announce(kind === "board" ? say("live.updated", { version: currentVersion() }) : say("live.list_updated"));
  }

  function applyPending(force) {
    if (pending === null) {
      return;
    }
    if (!force && editing()) {
      return;
    }
    var html = pending;
    pending = null;
    swap(html);
  }

  function refresh() {
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    fetch(root.getAttribute("data-fragment"), {
      credentials: "same-origin",
      headers: { Accept: "text/html" },
      cache: "no-store",
    })
      .then(function (response) {
        if (response.redirected && /\/(login|password)(\?|$)/.test(new URL(response.url).pathname + "?")) {
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
          pending = html;
          announce(say("live.pending"), true);
        } else {
          pending = null;
          swap(html);
        }
      })
      .catch(function () {
        announce(say("live.reconnecting"), false, true);
      })
      .then(function () {
        inFlight = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  function connect() {
    if (!root || !window.EventSource) {
      return;
    }
    var source = new EventSource(root.getAttribute("data-stream"));
    var wasDown = false;
    source.addEventListener("open", function () {
      root.setAttribute("data-connected", "1");
      announce(say("live.connected"));
      if (wasDown) {
        refresh(); // changes may have been missed while the connection was down
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
      refresh();
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
        b.disabled = true;
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
    // deadlines move on without any event: refresh the states now and then, tick the countdowns every second
    window.setInterval(function () {
      if (document.visibilityState === "visible") {
        refresh();
      }
    }, 60000);
  }
  window.setInterval(tick, 1000);
})();
