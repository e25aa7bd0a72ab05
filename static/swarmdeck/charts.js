/* Swarmdeck charts: a thin layer over uPlot (static/vendor/uplot) shared by the live run page,
 * reports, trends and comparisons.
 *
 *   const chart = SwarmCharts.timeseries(element, {
 *     title: "Requests per second",
 *     unit: "req/s",                     // shown in the legend
 *     axisUnit: false,                   // true: on the y axis's ticks too ("2.5%", "200 ms"), for a title without it
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
 * With `markers: [{t, kind, label, text}]` (runs/markers.py: seconds since go), a chart draws a
 * labelled vertical line at each (users changed, stop, abort, slot lost or rejoined, limit hits);
 * chart.setMarkers(list) replaces them. Markers past the last point sit at the right edge. On an
 * "index" axis (trends) t counts runs: runs/trends.py puts a locustfile version or label change
 * (kinds "version", "labels") between two runs, at t = 4.5.
 *
 * SwarmCharts.run(elements, series, totals, live, {markers, endpoints}): `endpoints` picks what the
 * RPS and latency charts show: ["Aggregated"] (the default) or endpoint keys ("GET /ok") with
 * their columns in `endpointSeries` ({key: {rps, fails_per_s, p50_ms, p95_ms, p99_ms}}, aligned
 * with series.tick); run.setEndpoints(picked, endpointSeries) redraws them. `zoom: (from, to) => ...`
 * (optional): a drag across a chart calls it with that window's ticks instead of zooming in (the live
 * page fetches a long run's window, finer than its downsampled series).
 *
 * Lines that coincide (p95 = p99 when a second had few requests): a line without a dash of its own
 * that equals an earlier one somewhere (at a value other than 0) is dashed, with a different dash for
 * each earlier line it meets, so the lines beneath show through its gaps; and where the legend shows
 * equal values (other than 0) it says so: "p99 (= p95)", so every colour in the legend can be found
 * on the chart.
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
    // Endpoints picked on the Charts tab: one family each (light, mid, dark), none of them the
    // Aggregated colours above. RPS mid, failures/s light; p50 light, p95 mid, p99 dark.
    families: [["#fb923c", "#ea580c", "#9a3412"], ["#34d399", "#059669", "#065f46"], ["#e879f9", "#c026d3", "#86198f"],
               ["#a3e635", "#65a30d", "#3f6212"], ["#f472b6", "#db2777", "#9d174d"], ["#38bdf8", "#0284c7", "#075985"],
               ["#818cf8", "#4f46e5", "#312e81"], ["#94a3b8", "#475569", "#1e293b"]],
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

  // Dashes for lines drawn over one (or two, ...) equal earlier lines: long, then short, then dots.
  const COINCIDING_DASHES = [[8, 4], [3, 5], [1, 6]];

  // Two lines at 0 (no failures) read as nothing to find; elsewhere equal values hide one line.
  function same(a, b) {
    return a != null && b != null && a !== 0 && Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
  }

  // For each series (by its index in data, 1..n), how many earlier series on its scale it equals at some point.
  function coincidences(data, scales) {
    return data.map((values, i) => {
      if (i === 0) return 0;
      let met = 0;
      for (let j = 1; j < i; j++) {
        if (scales[j] !== scales[i]) continue;
        const other = data[j] || [];
        if ((values || []).some((v, k) => same(v, other[k]))) met++;
      }
      return met;
    });
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
    const scales = [null, ...options.series.map((s) => s.scale || "y")];
    // A series with a dash of its own keeps it; the others are dashed while they coincide (setDashes).
    const ownDash = [null, ...options.series.map((s) => s.dash || null)];
    function setDashes(target, data) {
      const met = coincidences(data, scales);
      for (let i = 1; i < target.length; i++) {
        if (ownDash[i]) continue;
        target[i].dash = met[i] ? COINCIDING_DASHES[Math.min(met[i], COINCIDING_DASHES.length) - 1] : undefined;
      }
    }
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
    const tickUnit = options.axisUnit && unit ? (unit === "%" ? "%" : " " + unit) : "";
    const axes = [
      Object.assign({stroke: "#64748b", grid: {stroke: "#e2e8f0", width: 1}, ticks: {stroke: "#e2e8f0"}}, xAxis(x)),
      {stroke: "#64748b", grid: {stroke: "#e2e8f0", width: 1}, ticks: {stroke: "#e2e8f0"}, size: tickUnit.length > 2 ? 76 : 56,
       values: (u, splits) => splits.map((v) => (v == null ? "" : axisNumber(v) + tickUnit))},
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
      hooks: {setCursor: [(u) => { if (u.cursor.idx == null) atRest(u); }],
              setLegend: [(u) => nameEqualValues(u, scales, shownValue)],
              setSelect: [(u) => zoomed(u)]},
      // With `zoom`, a drag across the chart asks for that window (zoom(from, to)) instead of zooming in.
      cursor: {drag: {x: true, y: false, setScale: !options.zoom}},
    };
    const data = options.data || [[], ...options.series.map(() => [])];
    setDashes(series, data);
    function zoomed(u) {
      if (!options.zoom || u.select.width < 2) return;
      const from = u.posToVal(u.select.left, "x"), to = u.posToVal(u.select.left + u.select.width, "x");
      u.setSelect({left: 0, top: 0, width: 0, height: 0}, false);
      options.zoom(Math.max(0, Math.floor(from)), Math.ceil(to));
    }
    // The number a legend row shows: the rest value off the chart, else the point's.
    const shownValue = (u, i, idx) => (idx == null ? (rest ? (rest.values || [])[i - 1] : null) : (u.data[i] || [])[idx]);
    const atRest = (u) => (rest ? u.setLegend({idx: null}) : showLatest(u));
    let markers = options.markers || [];
    opts.hooks.draw = [(u) => placeMarkers(u, markers, x)];
    const plot = new uPlot(opts, data, element);
    markDashes(plot);
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
        setDashes(plot.series, next);
        markDashes(plot);
        plot.setData(next);
        if (plot.cursor.idx == null) atRest(plot);
      },
      setMarkers(next) {
        markers = next || [];
        placeMarkers(plot, markers, x);
      },
      destroy() { observer.disconnect(); plot.destroy(); },
    };
  }

  function legendRows(u) {
    return u.root.querySelectorAll(".u-legend .u-series");
  }

  // The legend's swatch of a series is dashed when its line is (uPlot draws it once, at the start).
  function markDashes(u) {
    legendRows(u).forEach((row, i) => {
      const marker = row.querySelector(".u-marker");
      if (i > 0 && marker) marker.style.borderStyle = u.series[i].dash ? "dashed" : "solid";
    });
  }

  // Each legend row whose value reads the same as an earlier row's on its scale (and is not 0) names
  // that row: "p99 (= p95)". `shownValue(u, i, idx)`: the number row i shows.
  function nameEqualValues(u, scales, shownValue) {
    const rows = legendRows(u);
    const idx = u.legend.idx;
    const texts = u.series.map((s, i) => {
      const v = i === 0 || !s.show ? null : shownValue(u, i, idx);
      return v == null || v === 0 ? null : s.value(u, idx == null ? null : (u.data[i] || [])[idx], i, idx);
    });
    u.series.forEach((s, i) => {
      const label = rows[i] && rows[i].querySelector(".u-label");
      if (i === 0 || !label) return;
      const equal = texts[i] == null ? [] : u.series.slice(1, i)
        .filter((other, j) => scales[j + 1] === scales[i] && texts[j + 1] === texts[i]).map((other) => other.label);
      const text = equal.length ? s.label + " (= " + equal.join(" = ") + ")" : s.label;
      if (label.textContent !== text) label.textContent = text;
    });
  }

  // Markers are elements over the plot (not canvas strokes): their labels can be read, hovered
  // (the whole note as a tooltip) and found by tests.
  function placeMarkers(u, markers, x) {
    let layer = u.over.querySelector(".chart-markers");
    if (!layer) {
      layer = document.createElement("div");
      layer.className = "chart-markers";
      u.over.appendChild(layer);
    }
    const xs = u.data[0] || [];
    const first = xs[0], last = xs[xs.length - 1], width = u.over.clientWidth;
    const lefts = xs.length ? markers.map((marker) => Math.round(Math.max(0, Math.min(width - 1,
      u.valToPos(Math.min(Math.max(marker.t, first), last), "x"))))) : [];
    // Redrawn every second while a run goes: touch the elements only when a marker moved or changed.
    const signature = JSON.stringify([markers, lefts, width]);
    if (layer.dataset.signature === signature) return;
    layer.dataset.signature = signature;
    if (!lefts.length) { layer.replaceChildren(); return; }
    const nodes = markers.map((marker, i) => {
      const left = lefts[i];
      const node = document.createElement("div");
      node.className = "chart-marker marker-" + marker.kind;
      node.dataset.kind = marker.kind;
      node.style.left = left + "px";
      // Between two runs on an "index" axis (trends: t = 4.5), a time would mean nothing.
      node.title = (x === "index" ? "" : clock(marker.t) + " ") + (marker.text || marker.label);
      const label = document.createElement("span");
      label.className = "chart-marker-label" + (left > width * 0.7 ? " to-left" : "");
      label.style.top = (i % 3) * 1.15 + "em";   // neighbours overlap less
      label.textContent = marker.label;
      node.appendChild(label);
      return node;
    });
    layer.replaceChildren(...nodes);
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

  function rowOf(totals, key) {
    return (totals || []).find((row) => row.method + " " + row.name === key) || {};
  }

  // Every series its own colour, kept while it stays picked: "Aggregated" has the colours of the
  // Aggregated-only charts; an endpoint the family it got when picked (families[slot]).
  function seriesColors(key, slot) {
    if (key === "Aggregated") return {rps: colors.rps, fail: colors.fail, p50: colors.p50, p95: colors.p95, p99: colors.p99};
    const [light, mid, dark] = colors.families[slot % colors.families.length];
    return {rps: mid, fail: light, p50: light, p95: mid, p99: dark};
  }

  // The picked endpoints: RPS solid, failures/s dashed; p50 dotted, p95 solid, p99 dashed.
  // "Aggregated" is the run's own series. `slots`: {endpoint key: its colour family}.
  function endpointFigures(series, totals, live, picked, columns, slots) {
    const label = active(live) ? "so far" : "whole run";
    const col = (key, name) => align(key === "Aggregated" ? series[name] : ((columns || {})[key] || {})[name] || [],
                                     series.tick);
    const out = {rpsSeries: [], latencySeries: [], rpsData: [series.tick], latencyData: [series.tick],
                 rpsRest: {label: label, values: []}, latencyRest: {label: label, values: []}};
    picked.forEach((key) => {
      const color = seriesColors(key, slots.get(key));
      const row = key === "Aggregated" ? aggregated(totals) : rowOf(totals, key);
      out.rpsSeries.push({label: key + " RPS", color: color.rps}, {label: key + " Failures/s", color: color.fail, dash: [6, 4]});
      out.rpsData.push(col(key, "rps"), col(key, "fails_per_s"));
      out.rpsRest.values.push(row.rps, row.failures_per_s);
      out.latencySeries.push({label: key + " p50", color: color.p50, dash: [2, 4]}, {label: key + " p95", color: color.p95, width: 2},
                             {label: key + " p99", color: color.p99, dash: [10, 4]});
      out.latencyData.push(col(key, "p50_ms"), col(key, "p95_ms"), col(key, "p99_ms"));
      out.latencyRest.values.push(row.p50, row.p95, row.p99);
    });
    return out;
  }

  function endpointCharts(elements, series, totals, live, picked, columns, markers, slots, zoom) {
    const f = endpointFigures(series, totals, live, picked, columns, slots);
    return {
      rps: timeseries(elements.rps, {title: "Requests and failures per second", unit: "/s", markers: markers,
        rest: f.rpsRest, series: f.rpsSeries, data: f.rpsData, zoom: zoom}),
      latency: timeseries(elements.latency, {title: "Response times (ms)", unit: "ms", markers: markers,
        rest: f.latencyRest, series: f.latencySeries, data: f.latencyData, zoom: zoom}),
    };
  }

  function align(values, ticks) {
    // A column shorter than the ticks (an endpoint fetched a moment ago) is padded with gaps.
    if (values.length >= ticks.length) return values.slice(0, ticks.length);
    return values.concat(new Array(ticks.length - values.length).fill(null));
  }

  function active(live) { return !!(live && live.active); }

  function run(elements, series, totals, live, extra) {
    const c = colors;
    extra = extra || {};
    let markers = extra.markers || [];
    let picked = extra.endpoints && extra.endpoints.length ? extra.endpoints : ["Aggregated"];
    let columns = extra.endpointSeries || {};
    const zoom = extra.zoom || null;
    let current = {series: series, totals: totals, live: live};
    const rest = runFigures(series, totals, live);
    // An endpoint keeps its colour family while picked; one unpicked frees its family.
    const slots = new Map();
    function assignSlots() {
      for (const key of [...slots.keys()]) if (!picked.includes(key)) slots.delete(key);
      for (const key of picked) {
        if (key === "Aggregated" || slots.has(key)) continue;
        const taken = new Set(slots.values());
        let slot = 0;
        while (taken.has(slot)) slot++;
        slots.set(key, slot);
      }
    }
    assignSlots();
    const aggregatedOnly = () => picked.length === 1 && picked[0] === "Aggregated";
    function aggregatedCharts(s, figures) {
      return {
        rps: timeseries(elements.rps, {title: "Requests and failures per second", unit: "/s", rest: figures.rps, markers: markers,
          series: [{label: "RPS", color: c.rps, fill: "rgba(37,99,235,.08)"}, {label: "Failures/s", color: c.fail}],
          data: [s.tick, s.rps, s.fails_per_s], zoom: zoom}),
        // Percentiles often coincide (few requests in a second: p95 = p99). Each line drawn over
        // another is dashed, so the one beneath shows through its gaps instead of vanishing.
        latency: timeseries(elements.latency, {title: "Response times (ms)", unit: "ms", rest: figures.latency, markers: markers,
          series: [{label: "p50", color: c.p50}, {label: "p95", color: c.p95, width: 2, dash: [10, 4]},
                   {label: "p99", color: c.p99, dash: [3, 5]}],
          data: [s.tick, s.p50_ms, s.p95_ms, s.p99_ms], zoom: zoom}),
      };
    }
    const charts = aggregatedOnly() ? aggregatedCharts(series, rest)
      : endpointCharts(elements, series, totals, live, picked, columns, markers, slots, zoom);
    charts.users = timeseries(elements.users, {title: "Users", rest: rest.users, markers: markers,
      series: [{label: "Users", color: c.users, fill: "rgba(5,150,105,.08)", integer: true}],
      data: [series.tick, series.users], zoom: zoom});

    function rebuild() {
      charts.rps.destroy();
      charts.latency.destroy();
      const s = current.series;
      const built = aggregatedOnly() ? aggregatedCharts(s, runFigures(s, current.totals, current.live))
        : endpointCharts(elements, s, current.totals, current.live, picked, columns, markers, slots, zoom);
      charts.rps = built.rps;
      charts.latency = built.latency;
    }

    return {
      charts: charts,
      setData(nextSeries, nextTotals, nextLive, nextColumns) {
        current = {series: nextSeries, totals: nextTotals, live: nextLive};
        if (nextColumns) columns = nextColumns;
        const figures = runFigures(nextSeries, nextTotals, nextLive);
        if (aggregatedOnly()) {
          charts.rps.setData([nextSeries.tick, nextSeries.rps, nextSeries.fails_per_s], figures.rps);
          charts.latency.setData([nextSeries.tick, nextSeries.p50_ms, nextSeries.p95_ms, nextSeries.p99_ms], figures.latency);
        } else {
          const f = endpointFigures(nextSeries, nextTotals, nextLive, picked, columns, slots);
          charts.rps.setData(f.rpsData, f.rpsRest);
          charts.latency.setData(f.latencyData, f.latencyRest);
        }
        charts.users.setData([nextSeries.tick, nextSeries.users], figures.users);
      },
      setEndpoints(nextPicked, nextColumns) {
        picked = nextPicked && nextPicked.length ? nextPicked : ["Aggregated"];
        columns = nextColumns || columns;
        assignSlots();
        rebuild();
      },
      setMarkers(next) {
        markers = next || [];
        charts.rps.setMarkers(markers);
        charts.latency.setMarkers(markers);
        charts.users.setMarkers(markers);
      },
    };
  }

  window.SwarmCharts = {timeseries: timeseries, run: run, colors: colors, clock: clock, number: number};
})();
