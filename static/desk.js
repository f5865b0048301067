// The reviewer desk: keyboard first, the next item prefetched, decisions posted without waiting.
// Keys: a key per label, Enter confirms the suggestion, X out of domain, S skip, Z/Backspace undo,
// ? help. Without JavaScript the same forms post and the server redirects to the next item.
(function () {
  "use strict";
  var desk = document.getElementById("desk");
  var form = document.getElementById("decision-form");
  if (!desk || !form) { return; }
  var $ = function (id) { return document.getElementById(id); };
  var endpoints = JSON.parse($("desk-endpoints").textContent);
  // Blindness is per task: the shadow stage and audit samples hide the model's guess (the
  // server leaves it out of their JSON); the page's flag covers the first task only.
  var blind = desk.getAttribute("data-blind") === "1";
  var csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
  var current = JSON.parse($("desk-task").textContent);
  var next = null;
  var recent = [];           // tasks decided but maybe not yet recorded by the server
  var fetching = false;
  var shownAt = performance.now();
  var errorTimer = null;

  function held() {
    var ids = recent.slice();
    if (current) { ids.push(current.id); }
    if (next) { ids.push(next.id); }
    return ids.join(",");
  }

  function showError(text) {
    var box = $("desk-error");
    box.textContent = text;
    box.hidden = false;
    window.clearTimeout(errorTimer);
    errorTimer = window.setTimeout(function () { box.hidden = true; }, 8000);
  }

  function preload(task) {
    var urls = [task.model_view_url].concat(task.clip && task.clip.playable ? [] : [task.image_url]);
    (task.clip ? task.clip.frames : []).forEach(function (frame) { urls.push(frame.url); });
    urls.forEach(function (url) { new Image().src = url; });
  }

  function renderQueue(queue) {
    var box = $("queue-counts");
    var parts = Object.keys(queue || {}).map(function (reason) {
      return reason + " " + queue[reason];
    });
    box.textContent = "Waiting: " + (parts.length ? parts.join(" · ") : "0");
  }

  function renderSuggestion(suggestion) {
    var visible = Boolean(suggestion) && !blind;
    $("suggestion").hidden = !visible;
    $("confirm-button").hidden = !visible;
    if (!visible) { return; }
    $("suggestion-label").textContent = suggestion.label;
    $("confirm-label").textContent = suggestion.label;
    $("suggestion-confidence").textContent = suggestion.confidence.toFixed(2);
    var list = $("top3");
    list.textContent = "";
    suggestion.top.forEach(function (pair) {
      var li = document.createElement("li");
      li.textContent = pair[0] + " " + pair[1].toFixed(2);
      list.appendChild(li);
    });
    $("ood-warning").hidden = !suggestion.is_ood;
  }

  // A clip: its video (MP4/WebM; a GIF plays in the <img>) and a strip of its sampled frames,
  // each with the model's label only when the stage shows suggestions (the server omits it).
  function renderClip(task) {
    var clip = task.clip, video = $("item-video"), strip = $("frame-strip");
    var playable = Boolean(clip && clip.playable);
    video.hidden = !playable;
    $("item-image").hidden = playable;
    if (playable) { video.src = task.image_url; } else { video.removeAttribute("src"); }
    strip.hidden = !clip;
    strip.textContent = "";
    (clip ? clip.frames : []).forEach(function (frame) {
      var li = document.createElement("li"), img = document.createElement("img");
      var time = document.createElement("span");
      li.className = "frame";
      img.className = "pixelated";
      img.src = frame.url;
      img.alt = "Frame at " + frame.time + " s";
      time.className = "frame-time";
      time.textContent = frame.time + " s";
      li.appendChild(img);
      li.appendChild(time);
      if (frame.label !== undefined && !blind) {
        var said = document.createElement("span");
        said.className = "frame-label";
        said.textContent = frame.label + " " + frame.confidence.toFixed(2) +
          (frame.is_ood ? " · out of domain" : "");
        li.appendChild(said);
      }
      strip.appendChild(li);
    });
  }

  function render(task) {
    $("task-pane").hidden = !task;
    $("queue-empty").hidden = Boolean(task);
    $("item").setAttribute("data-task", task ? String(task.id) : "");
    if (!task) { return; }
    var image = $("item-image");
    blind = task.blind !== false;
    renderClip(task);
    if (!(task.clip && task.clip.playable)) { image.src = task.image_url; }
    image.classList.toggle("pixelated", task.small);
    $("model-view").src = task.model_view_url;
    $("item-caption").textContent = task.width + "×" + task.height + " px" +
      (task.small ? " — small image, shown enlarged with visible pixels" : "") +
      " · " + task.reason_display;
    $("task-id").value = String(task.id);
    desk.setAttribute("data-blind", blind ? "1" : "0");
    $("blind-note").hidden = !blind;
    renderSuggestion(task.suggestion);
    shownAt = performance.now();
  }

  function fetchNext() {
    if (fetching || next) { return; }
    fetching = true;
    fetch(endpoints.next + "?held=" + held(), { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        var task = data.task;
        if (task && (!current || task.id !== current.id)) {
          if (!current) { current = task; render(current); window.setTimeout(fetchNext, 0); return; }
          next = task;
          preload(next);
        }
      })
      .catch(function () { showError("Could not reach the server; retrying."); })
      .finally(function () { fetching = false; });
  }

  function post(url, fields) {
    var body = new FormData();
    body.append("csrfmiddlewaretoken", csrf);
    Object.keys(fields).forEach(function (key) { body.append(key, fields[key]); });
    return fetch(url, { method: "POST", body: body, credentials: "same-origin", keepalive: true })
      .then(function (response) { return response.json(); });
  }

  function decide(verdict, label) {
    if (!current) { return; }
    if (verdict === "confirm" && (blind || !current.suggestion)) { return; }
    var task = current;
    recent.push(task.id);
    if (recent.length > 10) { recent.shift(); }
    var duration = Math.round(performance.now() - shownAt);
    current = next;
    next = null;
    render(current);
    // One round trip records the decision and claims the item after the one now shown.
    post(endpoints.decide, {
      task: task.id, verdict: verdict, label: label || "", duration_ms: duration, held: held()
    }).then(function (data) {
      if (!data.ok) { showError(data.error); fetchNext(); return; }
      var incoming = data.next;
      if (incoming && !current) { current = incoming; render(current); fetchNext(); }
      else if (incoming && !next && incoming.id !== current.id) { next = incoming; preload(next); }
      else { fetchNext(); }
    }).catch(function () {
      showError("Your decision may not have been saved: the server did not answer.");
      fetchNext();
    });
    if (!current) { fetchNext(); }
  }

  function undo() {
    post(endpoints.undo, {}).then(function (data) {
      if (!data.ok) { showError(data.error); return; }
      recent = recent.filter(function (id) { return id !== data.task.id; });
      if (current && current.id !== data.task.id) { next = current; }
      current = data.task;
      render(current);
    }).catch(function () { showError("Undo failed: the server did not answer."); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var submitter = event.submitter;
    if (!submitter) { return; }
    if (submitter.name === "label") { decide("correct", submitter.value); }
    else { decide(submitter.value, ""); }
  });
  $("undo-form").addEventListener("submit", function (event) { event.preventDefault(); undo(); });
  $("help-toggle").addEventListener("click", function () { $("help").hidden = !$("help").hidden; });

  var labelKeys = {};
  form.querySelectorAll(".label-button").forEach(function (button) {
    labelKeys[button.getAttribute("data-key").toLowerCase()] = button.value;
  });
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA")) { return; }
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    var handled = true;
    if (Object.prototype.hasOwnProperty.call(labelKeys, key)) { decide("correct", labelKeys[key]); }
    else if (key === "Enter") { decide("confirm", ""); }
    else if (key === "x") { decide("ood", ""); }
    else if (key === "s") { decide("skip", ""); }
    else if (key === "z" || key === "Backspace") { undo(); }
    else if (key === "?") { $("help").hidden = !$("help").hidden; }
    else { handled = false; }
    if (handled) { event.preventDefault(); }
  });

  window.setInterval(function () {
    var ids = [current && current.id, next && next.id].filter(Boolean).join(",");
    if (ids) { post(endpoints.renew, { held: ids }).catch(function () {}); }
  }, 60000);
  window.setInterval(function () {
    fetch(endpoints.stats, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        renderQueue(data.queue);
        $("stat-hour").textContent = data.stats.last_hour;
        $("stat-today").textContent = data.stats.today;
        $("stat-agreement").textContent = data.stats.agreement_today === null ? "—" :
          Math.round(data.stats.agreement_today * 100) + "%";
      }).catch(function () {});
  }, 20000);
  window.setInterval(function () { if (!current) { fetchNext(); } }, 5000);

  render(current);
  fetchNext();
})();
