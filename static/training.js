// Live progress of a training run: poll the status endpoint, redraw, reload once when done.
(function () {
  "use strict";
  const live = document.getElementById("live");
  if (!live || live.dataset.active !== "1") return;
  const $ = (id) => document.getElementById(id);
  const fmtEta = (s) => (s == null ? "" : s >= 60 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`);

  function points(history, column, max) {
    return history
      .filter((row) => row[column] != null)
      .map((row) => `${(row[0] * 400).toFixed(1)},${(118 - (row[column] / max) * 114).toFixed(1)}`)
      .join(" ");
  }

  function draw(status) {
    const pct = Math.round(status.progress * 100);
    $("progress-fill").style.width = `${pct}%`;
    live.querySelector(".progress").setAttribute("aria-valuenow", pct);
    const d = status.detail;
    let text = `${pct}%`;
    if (d.epochs) text += ` · epoch ${d.epoch + 1}/${d.epochs} · batch ${d.batch}/${d.batches}`;
    if (d.eta_seconds != null && status.active) text += ` · ETA ${fmtEta(d.eta_seconds)}`;
    if (status.cancel_requested && status.active) text += " · cancelling…";
    $("progress-text").textContent = text;
    $("run-state").textContent = status.state_display;
    const losses = status.history.flatMap((r) => [r[1], r[2]]).filter((v) => v != null);
    const max = Math.max(1e-6, ...losses);
    $("train-loss").setAttribute("points", points(status.history, 1, max));
    $("valid-loss").setAttribute("points", points(status.history, 2, max));
    $("log-tail").textContent = status.log_tail.join("\n");
  }

  async function poll() {
    try {
      const response = await fetch(live.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const status = await response.json();
        draw(status);
        if (!status.active) { window.location.reload(); return; }
      }
    } catch (error) { /* a missed poll is retried below */ }
    window.setTimeout(poll, 1000);
  }
  poll();
})();
