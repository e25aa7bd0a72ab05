/* Charts of the history pages (scenario trends, run comparison), drawn with SwarmCharts.
 *
 *   SwarmHistory.trends(element, data)    data: the JSON of runs-trends-data (x, ids, urls, p50_ms, ...,
 *                                         markers: locustfile version and label changes between runs)
 *   SwarmHistory.compare(element, data)   data: {x, step, runs: ["#3", ...], rps: [[...], ...], p50, p95}
 */
(function () {
  "use strict";

  function panel(parent, className) {
    const div = document.createElement("div");
    div.className = className || "chart";
    parent.appendChild(div);
    return div;
  }

  /* Trend charts put run i of the window at x = i; show the run's own id instead, and open it on click. */
  function labelRuns(chart, ids, urls) {
    const plot = chart.plot;
    const runLabel = (v) => (Number.isInteger(v) && ids[v - 1] != null ? "#" + ids[v - 1] : "");
    plot.series[0].label = "Run";
    plot.series[0].value = (u, v) => (v == null ? "" : runLabel(v));
    plot.axes[0].values = (u, splits) => splits.map(runLabel);
    plot.redraw(false, true);
    plot.over.style.cursor = "pointer";
    plot.over.title = "Click to open the run";
    plot.over.addEventListener("click", () => {
      const index = plot.cursor.idx;
      if (index != null && urls[index]) window.location.href = urls[index];
    });
  }

  function trends(element, data) {
    const c = SwarmCharts.colors;
    const specs = [
      {title: "Response time (log scale)", unit: "ms", log: true, series: [
        {label: "p50", color: c.p50, key: "p50_ms"}, {label: "p95", color: c.p95, key: "p95_ms"},
        {label: "p99", color: c.p99, key: "p99_ms"}]},
      {title: "Requests per second", unit: "req/s", series: [{label: "RPS", color: c.rps, key: "rps"}]},
      {title: "Failures (% of requests)", unit: "%", series: [{label: "Failure %", color: c.fail, key: "fail_pct"}]},
    ];
    // Each axis says its unit: the titles do not all say it (runs/history.py's failure_percent is a %).
    return specs.map((spec) => {
      const chart = SwarmCharts.timeseries(panel(element), {
        title: spec.title, unit: spec.unit, axisUnit: true, x: "index", height: 200, log: !!spec.log,
        markers: data.markers || [],
        series: spec.series.map((s) => ({label: s.label, color: s.color, spanGaps: true})),
        data: [data.x, ...spec.series.map((s) => data[s.key])],
      });
      labelRuns(chart, data.ids, data.urls);
      return chart;
    });
  }

  function compare(element, data) {
    const palette = SwarmCharts.colors.palette;
    const runs = data.runs.map((name, i) => ({label: i === 0 ? name + " (baseline)" : name, color: palette[i % palette.length],
                                              width: i === 0 ? 2.2 : 1.6, spanGaps: true}));
    const every = data.step > 1 ? " (" + data.step + " s averages)" : "";
    return [
      {title: "p95 response time" + every, unit: "ms", key: "p95"},
      {title: "p50 response time" + every, unit: "ms", key: "p50"},
      {title: "Requests per second" + every, unit: "req/s", key: "rps"},
    ].map((spec) => SwarmCharts.timeseries(panel(element), {
      title: spec.title, unit: spec.unit, x: "elapsed", height: 220, series: runs, data: [data.x, ...data[spec.key]],
    }));
  }

  window.SwarmHistory = {trends: trends, compare: compare};
})();
