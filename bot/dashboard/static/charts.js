// Supervisor charts: queue length and waits by priority over the shift, data from
// /dashboard/supervisor/stats.json, drawn with the vendored uPlot.
(function () {
  "use strict";
  const colours = { 1: "#c0392b", 2: "#d68910", 3: "#2874a6", 4: "#7f8c8d" };
  const charts = {};
  function series(label) {
    const s = [{}];
    [1, 2, 3, 4].forEach(function (p) {
      s.push({ label: "P" + p, stroke: colours[p], width: 2, spanGaps: label === "wait", points: { show: label === "wait" } });
    });
    return s;
  }
  function draw(id, label, data) {
    const el = document.getElementById(id);
    if (!el || typeof uPlot === "undefined") return;
    const width = Math.max(300, el.clientWidth || 600);
    if (charts[id]) { charts[id].setData(data); return; }
    charts[id] = new uPlot({ width: width, height: 220, series: series(label), scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(1, max || 0)]; } } } }, data, el);
  }
  function load() {
    fetch("/dashboard/supervisor/stats.json", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (!d) return;
        const pick = function (obj) { return [d.t].concat([1, 2, 3, 4].map(function (p) { return obj[String(p)]; })); };
        draw("chart-queue", "queue", pick(d.queue));
        draw("chart-wait", "wait", pick(d.wait_minutes));
        document.body.dataset.chartsReady = "1";
      })
      .catch(function () {});
  }
  load();
  setInterval(load, 30000);
})();
