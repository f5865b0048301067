// Keyboard-first reviewer desk: a key per label, Enter confirms, X out of domain, S skip, ? help.
(function () {
  "use strict";
  var form = document.getElementById("decision-form");
  if (!form) {
    if (document.getElementById("queue-empty")) {
      window.setTimeout(function () { window.location.reload(); }, 15000);
    }
    return;
  }
  var shownAt = performance.now();
  var submitted = false;
  var duration = document.getElementById("duration_ms");
  var help = document.getElementById("help");
  form.addEventListener("submit", function (event) {
    if (submitted) { event.preventDefault(); return; }
    submitted = true;
    duration.value = String(Math.round(performance.now() - shownAt));
  });
  document.getElementById("help-toggle").addEventListener("click", function () {
    help.hidden = !help.hidden;
  });
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA")) { return; }
    var key = event.key === "Enter" ? "Enter" : event.key.toLowerCase();
    var buttons = form.querySelectorAll("[data-key]");
    for (var i = 0; i < buttons.length; i++) {
      var wanted = buttons[i].getAttribute("data-key");
      if (wanted === key || wanted.toLowerCase() === key) {
        event.preventDefault();
        if (buttons[i].type === "submit") {
          if (typeof form.requestSubmit === "function") { form.requestSubmit(buttons[i]); }
          else { buttons[i].click(); }
        } else {
          buttons[i].click();
        }
        return;
      }
    }
  });
})();
