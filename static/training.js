// A training run's page: the loss chart (axes, values, epoch marks), drawn from the history the
// page carries and, while the run is active, redrawn from the status endpoint every second; the
// page reloads once when the run is done, and the chart is drawn again from the saved history.
(function () {
  "use strict";
  const live = document.getElementById("live");
  if (!live) return;
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const W = 640, H = 280, L = 56, R = 16, T = 16, B = 44;
  const fmtEta = (s) => (s == null ? "" : s >= 60 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`);
  const fmtLoss = (v) => (v == null ? "—" : v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(3));

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (text != null) node.textContent = text;
    return node;
  }

  function niceStep(range, count) {
    const raw = range / count;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const unit = raw / power;
    return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
  }

  // history rows: [fraction of the run done, train loss, validation loss] (either loss may be null)
  function drawChart(history, epochs) {
    const svg = $("loss-chart");
    if (!svg) return;
    epochs = Math.max(1, epochs || 1);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const losses = history.flatMap((r) => [r[1], r[2]]).filter((v) => v != null && isFinite(v));
    const peak = losses.length ? Math.max(1e-6, ...losses) : 1;
    const step = niceStep(peak, 4);
    const top = Math.max(step, Math.ceil(peak / step) * step);
    const x = (epoch) => L + (epoch / epochs) * (W - L - R);
    const y = (loss) => H - B - (loss / top) * (H - T - B);
    for (let v = 0; v <= top + step / 2; v += step) {
      svg.appendChild(el("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      svg.appendChild(el("text", { class: "y-tick", x: L - 6, y: y(v) + 4, "text-anchor": "end" }, fmtLoss(v)));
    }
    const every = Math.ceil(epochs / 12);
    for (let e = 0; e <= epochs; e += 1) {
      if (e > 0 && e < epochs) svg.appendChild(el("line", { class: "epoch-mark", x1: x(e), x2: x(e), y1: T, y2: H - B }));
      if (e % every === 0 || e === epochs) {
        svg.appendChild(el("text", { class: "x-tick", x: x(e), y: H - B + 16, "text-anchor": "middle" }, String(e)));
      }
    }
    svg.appendChild(el("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
    svg.appendChild(el("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
    svg.appendChild(el("text", { class: "axis-title", x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle" }, "epoch"));
    svg.appendChild(el("text", { class: "axis-title", x: 14, y: (T + H - B) / 2, "text-anchor": "middle", transform: `rotate(-90 14 ${(T + H - B) / 2})` }, "loss"));
    const last = { 1: null, 2: null };
    for (const [column, cls] of [[1, "train"], [2, "valid"]]) {
      const rows = history.filter((r) => r[column] != null && isFinite(r[column]));
      if (!rows.length) continue;
      const points = rows.map((r) => `${x(r[0] * epochs).toFixed(1)},${y(r[column]).toFixed(1)}`).join(" ");
      svg.appendChild(el("polyline", { id: `${cls}-loss`, class: cls, points }));
      if (column === 2) {  // validation loss is measured once an epoch: mark each value
        for (const r of rows) svg.appendChild(el("circle", { class: cls, cx: x(r[0] * epochs), cy: y(r[2]), r: 3, fill: "#b35900" }));
      }
      last[column] = rows[rows.length - 1][column];
    }
    const values = $("loss-values");
    if (values) values.textContent = `latest: train loss ${fmtLoss(last[1])} · validation loss ${fmtLoss(last[2])}`;
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
    drawChart(status.history, d.epochs || Number(live.dataset.epochs));
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

  const saved = $("loss-history");
  drawChart(saved ? JSON.parse(saved.textContent) : [], Number(live.dataset.epochs));
  if (live.dataset.active === "1") poll();
})();
