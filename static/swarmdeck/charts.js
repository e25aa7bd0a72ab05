/* Swarmdeck charts: a thin layer over uPlot (static/vendor/uplot) shared by the live run page,
 * reports, trends and comparisons.
 *
 *   const chart = SwarmCharts.timeseries(element, {
 *     title: "Requests per second",
 *     unit: "req/s",                     // shown in the legend and the y axis
 *     x: "elapsed",                      // "elapsed": seconds since the run started (m:ss); "time": epoch s; "index": 1, 2, 3
 *     series: [{label: "RPS", color: SwarmCharts.colors.rps}, {label: "Failures/s", color: SwarmCharts.colors.fail}],
 *     data: [[0, 1, 2], [10, 12, 11], [0, 1, 0]],   // x values, then one array per series (null = gap)
 *     height: 220,
 *     log: false,                        // a logarithmic y axis
 *   });
 *   chart.setData(newData);   // replace all points (cheap: uPlot redraws once)
 *
 * With `rest: {label: "whole run", values: [...]}` (one value per series), the legend shows those
 * values whenever the cursor is off the chart; chart.setData(newData, newRest) updates both.
 * Without it, the legend shows the newest point at rest.
 *
 *   SwarmCharts.run({rps: el, latency: el, users: el}, series, totals, {active, users})
 * draws the three charts of one run (live page and HTML report) and returns {setData(series,
 * totals, live)}: their legends at rest say what the run's Aggregated row says, and the peak
 * users (the current users while it runs), never the last second, which is usually a partial one.
 *
 * Charts follow their container's width.
 */
(function () {
  "use strict";

  const colors = {
    rps: "#2563eb", fail: "#dc2626", users: "#059669",
    p50: "#0891b2", p95: "#d97706", p99: "#7c3aed",
    // Distinct series for overlays (comparisons, trends): run 1, run 2, ...
    palette: ["#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626", "#0891b2", "#db2777", "#65a30d"],
  };

  function clock(seconds) {
    if (seconds == null) return "";
    const s = Math.round(seconds), sign = s < 0 ? "-" : "", a = Math.abs(s);
    const h = Math.floor(a / 3600), m = Math.floor((a % 3600) / 60), r = a % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return sign + (h ? h + ":" : "") + mm + ":" + String(r).padStart(2, "0");
  }

  function number(value, unit) {
    if (value == null || Number.isNaN(value)) return "–";
    const abs = Math.abs(value);
    let text;
    if (abs >= 1e6) text = (value / 1e6).toFixed(abs >= 1e7 ? 0 : 1) + "M";
    else if (abs >= 1e4) text = (value / 1e3).toFixed(abs >= 1e5 ? 0 : 1) + "k";
    else if (abs >= 100) text = value.toFixed(0);
    else if (abs >= 10) text = value.toFixed(1);
    else text = value.toFixed(abs >= 1 || abs === 0 ? 2 : 3);
    return unit ? text + " " + unit : text;
  }

  function axisNumber(value) {
    // Axis ticks: no trailing zeros ("5", "2.5", "1.2k"), unlike legend values.
    if (value == null) return "";
    const abs = Math.abs(value);
    if (abs >= 1e6) return +(value / 1e6).toFixed(1) + "M";
    if (abs >= 1e4) return +(value / 1e3).toFixed(1) + "k";
    return String(+value.toFixed(abs >= 10 ? 0 : abs >= 1 ? 1 : 3));
  }

  function showLatest(u) {
    const last = u.data[0] ? u.data[0].length - 1 : -1;
    if (last >= 0) u.setLegend({idx: last});
  }

  function xAxis(kind) {
    // Whole seconds (and runs) only: a 6 s run must not label 0:01 twice.
    if (kind === "elapsed") return {values: (u, splits) => splits.map(clock),
                                    incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400]};
    if (kind === "index") return {values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? "#" + v : "")),
                                  incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500]};
    return {};
  }

  function timeseries(element, options) {
    const x = options.x || "elapsed";
    const unit = options.unit || "";
    const series = [{
      label: x === "elapsed" ? "Elapsed" : x === "index" ? "Run" : "Time",
      value: x === "elapsed" ? (u, v) => clock(v) : x === "index" ? (u, v) => (v == null ? "" : "#" + v) : undefined,
    }];
    let rest = options.rest || null;
    const xValue = series[0].value || ((u, v) => (v == null ? "" : String(v)));
    // uPlot asks for a value with idx null when the cursor is off the chart: the rest values then.
    series[0].value = (u, v, sidx, idx) => (idx == null && rest ? rest.label || "" : xValue(u, v));
    options.series.forEach((s, i) => {
      const format = (v) => (s.integer ? (v == null ? "–" : Math.round(v).toLocaleString("en-US")) : number(v, s.unit || unit));
      series.push({
        label: s.label,
        stroke: s.color,
        width: s.width || 1.6,
        fill: s.fill || undefined,
        dash: s.dash || undefined,
        spanGaps: !!s.spanGaps,
        points: {show: x === "index" || !!s.points},
        value: (u, v, sidx, idx) => format(idx == null && rest ? (rest.values || [])[i] : v),
        scale: s.scale || "y",
      });
    });
    const axes = [
      Object.assign({stroke: "#64748b", grid: {stroke: "#e2e8f0", width: 1}, ticks: {stroke: "#e2e8f0"}}, xAxis(x)),
      {stroke: "#64748b", grid: {stroke: "#e2e8f0", width: 1}, ticks: {stroke: "#e2e8f0"}, size: 56,
       values: (u, splits) => splits.map(axisNumber)},
    ];
    const width = Math.max(240, element.clientWidth || 600);
    const opts = {
      title: options.title || "",
      width: width,
      height: options.height || 220,
      series: series,
      axes: axes,
      // log: for percentiles that differ by orders of magnitude (p50 1 ms next to p99 200 ms).
      scales: {x: {time: x === "time"},
               y: options.log ? {distr: 3, log: 10}
                              : {range: (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.08 : 1]}},
      legend: {live: true},
      // Off the chart, the legend shows the rest values, or else the latest ones, instead of dashes.
      hooks: {setCursor: [(u) => { if (u.cursor.idx == null) atRest(u); }]},
      cursor: {drag: {x: true, y: false}},
    };
    const data = options.data || [[], ...options.series.map(() => [])];
    const atRest = (u) => (rest ? u.setLegend({idx: null}) : showLatest(u));
    const plot = new uPlot(opts, data, element);
    atRest(plot);
    let last = width;
    const observer = new ResizeObserver(() => {
      const w = Math.max(240, element.clientWidth);
      if (Math.abs(w - last) > 2) { last = w; plot.setSize({width: w, height: opts.height}); }
    });
    observer.observe(element);
    return {
      plot: plot,
      setData(next, nextRest) {
        if (nextRest !== undefined) rest = nextRest;
        plot.setData(next);
        if (plot.cursor.idx == null) atRest(plot);
      },
      destroy() { observer.disconnect(); plot.destroy(); },
    };
  }

  // ---- the three charts of one run ----------------------------------------------------------------

  function aggregated(totals) {
    return (totals || []).find((row) => row.name === "Aggregated") || {};
  }

  function peak(values) {
    let most = null;
    for (const v of values || []) if (v != null && (most == null || v > most)) most = v;
    return most;
  }

  // What each legend says at rest: the run's figures. `live`: {active, users} while it runs.
  function runFigures(series, totals, live) {
    const row = aggregated(totals);
    const active = !!(live && live.active);
    const label = active ? "so far" : "whole run";
    return {
      rps: {label: label, values: [row.rps, row.failures_per_s]},
      latency: {label: label, values: [row.p50, row.p95, row.p99]},
      users: {label: active ? "now" : "peak", values: [active && live.users != null ? live.users : peak(series.users)]},
    };
  }

  function run(elements, series, totals, live) {
    const c = colors;
    const rest = runFigures(series, totals, live);
    const charts = {
      rps: timeseries(elements.rps, {title: "Requests and failures per second", unit: "/s", rest: rest.rps,
        series: [{label: "RPS", color: c.rps, fill: "rgba(37,99,235,.08)"}, {label: "Failures/s", color: c.fail}],
        data: [series.tick, series.rps, series.fails_per_s]}),
      // Percentiles often coincide (few requests in a second: p95 = p99). Each line drawn over
      // another is dashed, so the one beneath shows through its gaps instead of vanishing.
      latency: timeseries(elements.latency, {title: "Response times (ms)", unit: "ms", rest: rest.latency,
        series: [{label: "p50", color: c.p50}, {label: "p95", color: c.p95, width: 2, dash: [10, 4]},
                 {label: "p99", color: c.p99, dash: [3, 5]}],
        data: [series.tick, series.p50_ms, series.p95_ms, series.p99_ms]}),
      users: timeseries(elements.users, {title: "Users", rest: rest.users,
        series: [{label: "Users", color: c.users, fill: "rgba(5,150,105,.08)", integer: true}],
        data: [series.tick, series.users]}),
    };
    return {
      charts: charts,
      setData(nextSeries, nextTotals, nextLive) {
        const figures = runFigures(nextSeries, nextTotals, nextLive);
        charts.rps.setData([nextSeries.tick, nextSeries.rps, nextSeries.fails_per_s], figures.rps);
        charts.latency.setData([nextSeries.tick, nextSeries.p50_ms, nextSeries.p95_ms, nextSeries.p99_ms], figures.latency);
        charts.users.setData([nextSeries.tick, nextSeries.users], figures.users);
      },
    };
  }

  window.SwarmCharts = {timeseries: timeseries, run: run, colors: colors, clock: clock, number: number};
})();
