/* The live run page: renders the state embedded in the page, then keeps it current over the
 * run's WebSocket (/ws/runs/<id>/): a full state on every (re)connect, then one delta per tick.
 * Message shapes: runs/live.py. Time series merge by tick number and a delta's rows (only those
 * that changed, runs/changes.py) by key, so overlaps are harmless; a gap in the deltas' numbers
 * asks the server for the full state again. The endpoint table is updated row by row, cell by
 * cell: only the text that changed is written.
 *
 * window.swarmdeckLive exposes the state and, for bench/live_dashboard.py, how long each update
 * took on the main thread: `applied` (reading and merging a message) and `timings` (rendering), ms.
 */
(function () {
  "use strict";

  const root = document.getElementById("live-run");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const fmt = SwarmCharts.number;
  const TABLE_LIMIT = 500;   // failure rows shown (the endpoint table shows every row: the collector caps them)
  const integers = new Intl.NumberFormat("en-US", {maximumFractionDigits: 0});

  let state = JSON.parse($("run-state").textContent);
  let socket = null, retry = 0, retryTimer = null, countdownTimer = null, clockSkew = 0;
  let sortKey = null, sortDir = 1, renderQueued = false;
  let charts = null;   // SwarmCharts.run, once the Charts tab was opened
  let zoomed = null;   // a window of a long run the charts show instead: {from, to, series, width}
  // Endpoints picked on the Charts tab ("Aggregated" is the run's own series). A picked endpoint's
  // history is fetched once (runs-endpoint-series); its next seconds come from the deltas' `current`.
  const MAX_PICKED = 8;
  let picked = ["Aggregated"];
  const endpointTicks = {};   // "GET /ok" -> Map(tick -> {rps, fails_per_s, p50_ms, p95_ms, p99_ms} | null)
  let pickerSignature = null, markersSignature = null;
  const timings = [], applied = [];
  // The deltas' numbering (runs/changes.py): null until the first delta after a full state.
  let lastSeq = null, lastEpoch = null, resyncing = false;
  const resyncs = [];   // the seq of each delta that found a gap (the page asked for the state then)

  // ---- helpers --------------------------------------------------------------------------------
  function esc(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, (c) => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  }
  function ms(value) { return value == null ? "–" : value >= 100 ? Math.round(value).toString() : value.toFixed(value >= 10 ? 1 : 2); }
  function int(value) { return value == null ? "–" : integers.format(Math.round(value)); }
  function nowServer() { return Date.now() / 1000 - clockSkew; }
  function key(row) { return row.method + " " + row.name; }
  function errorKey(row) { return JSON.stringify([row.method, row.name, row.error]); }
  function isAggregate(row) { return row.method === "" && row.name === "Aggregated"; }
  // As Python orders them (workers.stats): by name then method; errors by count, most first. (JavaScript
  // compares UTF-16 units, Python code points: the same order but for characters past U+FFFF.)
  function compare(a, b) { return a < b ? -1 : a > b ? 1 : 0; }
  function byName(a, b) { return compare(a.name, b.name) || compare(a.method, b.method); }
  function byCount(a, b) {
    return b.count - a.count || compare(a.method, b.method) || compare(a.name, b.name) || compare(a.error, b.error);
  }

  // ---- merging messages -----------------------------------------------------------------------
  function mergeSeries(into, add) {
    if (!add || !add.tick || !add.tick.length) return;
    const names = Object.keys(into);
    for (let i = 0; i < add.tick.length; i++) {
      const tick = add.tick[i];
      let at = into.tick.length;
      while (at > 0 && into.tick[at - 1] >= tick) at--;   // overlaps sit at the end
      const replace = into.tick[at] === tick;
      for (const name of names) {
        const value = add[name] ? add[name][i] : null;
        if (replace) into[name][at] = value; else into[name].splice(at, 0, value);
      }
    }
  }

  // `rows` with `changed` put in by key and the `removed` keys taken out: the same array when
  // nothing changed. The order is kept; `order` sorts when rows were added (or always, `resort`).
  function mergeRows(rows, changed, removed, keyOf, order, resort) {
    if (!changed.length && !removed.length) return rows;
    const at = new Map();
    rows.forEach((row, i) => at.set(keyOf(row), i));
    const out = rows.slice();
    let added = false;
    for (const row of changed) {
      const i = at.get(keyOf(row));
      if (i === undefined) { at.set(keyOf(row), out.length); out.push(row); added = true; } else out[i] = row;
    }
    const gone = new Set(removed);
    const kept = gone.size ? out.filter((row) => !gone.has(keyOf(row))) : out;
    if (added || resort) kept.sort(order);
    return kept;
  }

  function mergeTotals(rows, changed, removed) {
    const had = rows.length > 0 && isAggregate(rows[rows.length - 1]);
    let aggregate = had ? rows[rows.length - 1] : null;
    const endpoints = [];
    for (const row of changed) { if (isAggregate(row)) aggregate = row; else endpoints.push(row); }
    const merged = mergeRows(had ? rows.slice(0, -1) : rows, endpoints, removed.map((pair) => pair[0] + " " + pair[1]),
                             key, byName, false);
    if (aggregate) {
      // Rows this delta did not carry got no request, but a second older: their rates follow the
      // run's duration, which the Aggregated row tells (rps = requests / duration for every row).
      const perRequest = aggregate.requests ? aggregate.rps / aggregate.requests : 0;
      const carried = new Set(endpoints);
      for (const row of merged) {
        if (carried.has(row)) continue;
        row.rps = row.requests * perRequest;
        row.failures_per_s = row.failures * perRequest;
      }
    }
    return aggregate ? merged.concat([aggregate]) : merged;
  }

  function applyDelta(message) {
    const removed = message.removed || {};
    if (message.totals || removed.totals) state.totals = mergeTotals(state.totals || [], message.totals || [], removed.totals || []);
    if (message.errors || removed.errors) {
      state.errors = mergeRows(state.errors || [], message.errors || [], (removed.errors || []).map(
        (k) => JSON.stringify(k)), errorKey, byCount, true);
    }
    if (message.slots || removed.slots) {
      state.slots = mergeRows(state.slots || [], message.slots || [], removed.slots || [], (slot) => slot.index,
                              (a, b) => a.index - b.index, false);
    }
  }

  // A delta follows the previous one (same collector, next number), or the page missed one: then
  // it asks for the full state (the socket's next connect sends it anyway).
  function checkSequence(message) {
    const follows = lastSeq === null || (message.epoch === lastEpoch && message.seq === lastSeq + 1);
    lastSeq = message.seq;
    lastEpoch = message.epoch;
    if (follows || resyncing) return;
    resyncing = true;
    resyncs.push(message.seq);
    if (socket && socket.readyState === 1) socket.send(JSON.stringify({type: "refresh"}));
  }

  function apply(message) {
    document.dispatchEvent(new CustomEvent("swarmdeck:message", {detail: message}));  // logs.js listens
    if (message.type === "logs") return;
    if (message.type === "state") {
      state = message;
      lastSeq = lastEpoch = null;
      resyncing = false;
      refetchEndpoints(null);   // what was missed while disconnected
    } else {
      if (message.type === "delta" && typeof message.seq === "number") checkSequence(message);
      takeCurrent(message);
      state.meta = message.meta || state.meta;
      if (message.type === "delta") applyDelta(message);
      else if (message.slots) state.slots = message.slots;   // a state change: every slot
      if (message.exceptions) state.exceptions = message.exceptions;
      if (message.current) state.current = message.current;
      if (message.series) mergeSeries(state.series, message.series);
    }
    if (state.meta.now) clockSkew = Date.now() / 1000 - state.meta.now;
    if (typeof message.produced_at === "number") {
      window.swarmdeckLive.freshness.push({produced_at: message.produced_at, received_at: Date.now() / 1000});
    }
    scheduleRender();
    if (!state.meta.active) finish();
  }

  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      const started = performance.now();
      render();
      timings.push(performance.now() - started);
      if (timings.length > 600) timings.shift();
    });
  }

  // ---- rendering --------------------------------------------------------------------------------
  function render() {
    renderHeader();
    renderHeadline();
    renderTable();
    renderCharts();
    renderFailures();
    renderExceptions();
    renderWorkers();
    renderHistory();
  }

  function renderHeader() {
    const meta = state.meta;
    const badge = $("run-status");
    const preparing = meta.active && (state.slots || []).some((slot) => slot.status === "preparing");
    badge.textContent = meta.status_label + (preparing ? " · preparing requirements" : "");
    badge.className = "badge status-" + meta.status;
    if (!meta.active && $("flash-box")) $("flash-box").hidden = true;  // "Stopping…" is over once the run ended
    const report = $("report-button");
    if (report) report.hidden = ["queued", "dispatching", "cancelled"].includes(meta.status);
    const queued = meta.status === "queued";
    $("queue-box").hidden = !queued;
    if (queued && meta.queue_position) $("queue-position").textContent = meta.queue_position;
    if (queued && meta.queue) {
      $("queue-reason").textContent = meta.queue.reason ? "It is " + meta.queue.reason + "." : "";
      $("queue-eta").textContent = meta.queue.eta && meta.queue.eta !== "now" ? "Estimated start: " + meta.queue.eta + "." : "";
    }
    const reason = $("reason-box");
    reason.hidden = !meta.reason;
    // "Slot 0 could not start: ZeroDivisionError: …" then, after a blank line, the traceback.
    const [summary, ...detail] = (meta.reason || "").split("\n\n");
    reason.innerHTML = esc(summary) + (detail.length ? '<pre class="small traceback">' + esc(detail.join("\n\n")) + "</pre>" : "");
    reason.className = meta.status === "failed" ? "error-box" : "warning-box";
    const warnings = meta.warnings || [];
    $("warnings-box").hidden = !warnings.length;
    $("warnings-box").innerHTML = warnings.map((w) => "<div>⚠ " + esc(w.message) + "</div>").join("");
    const stop = $("stop-form");
    if (stop) {
      stop.hidden = !meta.active;
      $("stop-button").textContent = ["queued", "dispatching", "starting"].includes(meta.status) ? "Cancel" : "Stop";
      $("stop-button").disabled = meta.status === "stopping";
    }
    const again = $("run-again");
    if (again) again.hidden = meta.active;
    const edit = $("edit-users");
    if (edit) edit.hidden = meta.status !== "running";
    $("overflow-note").hidden = !meta.endpoints_overflowed;
    renderVerdict();
    renderProgress();
  }

  // The pass/fail verdict, once the run ended (same markup as templates/runs/_verdict.html).
  function renderVerdict() {
    const meta = state.meta;
    const box = $("verdict-box");
    if (!box) return;
    box.hidden = meta.active || !meta.verdict;
    if (box.hidden) return;
    const sign = {">=": "≥ ", "<=": "≤ "};
    const result = (c) => c.aborted ? ["fail", "ABORTED"] : !c.applicable ? ["na", "N/A"] : c.passed ? ["pass", "PASS"] : ["fail", "FAIL"];
    const rows = (meta.criteria || []).map((c) => {
      const [css, label] = result(c);
      return "<tr><td><span class=\"badge verdict-" + css + "\">" + label + "</span></td><td>" + esc(c.criterion) +
        "</td><td class=\"num\">" + esc(c.measured_text) + "</td><td class=\"num\">" +
        (c.applicable ? (sign[c.operator] || "") + esc(c.limit_text) : "–") + "</td><td class=\"small\">" + esc(c.detail) + "</td></tr>";
    }).join("");
    box.innerHTML = "<div class=\"verdict-block\"><strong>Pass/fail criteria</strong> <span class=\"badge verdict-" + esc(meta.verdict) + "\">" +
      esc(meta.verdict.toUpperCase()) + "</span><div class=\"table-scroll\"><table class=\"compact striped verdict-criteria\"><thead><tr>" +
      "<th>Result</th><th>Criterion</th><th class=\"num\">Measured</th><th class=\"num\">Limit</th><th>Note</th></tr></thead><tbody>" +
      rows + "</tbody></table></div></div>";
  }

  function renderProgress() {
    const meta = state.meta;
    const box = $("progress");
    if (!meta.started_at) { box.hidden = true; return; }
    box.hidden = false;
    const end = meta.ended_at || nowServer();
    const elapsed = Math.max(0, end - meta.started_at);
    const duration = Number(meta.params.duration || 0);
    const target = meta.params.live_users != null ? meta.params.live_users : meta.params.users;
    // An ended run took its stop (users finishing, the last snapshot) beyond its duration: "0:26 of 0:25"
    // read as an overrun, so an ended run says what it ran and what was planned.
    $("progress-time").textContent = meta.ended_at
      ? "ran " + SwarmCharts.clock(elapsed) + (duration ? " (planned " + SwarmCharts.clock(duration) + ")" : "")
      : SwarmCharts.clock(elapsed) + (duration ? " of " + SwarmCharts.clock(duration) : "");
    $("progress-users").textContent = meta.active ? (meta.users + " / " + target + " users spawned") : "";
    const bar = $("progress-bar");
    bar.max = duration || 1;
    bar.value = duration ? Math.min(elapsed, duration) : 0;
  }

  function lastTick(name) {
    const values = state.series[name];
    return values && values.length ? values[values.length - 1] : null;
  }

  function renderHeadline() {
    const meta = state.meta;
    $("headline").hidden = !meta.started_at;   // a run that never started has no figures to show
    const aggregate = state.totals.find((r) => r.name === "Aggregated") || {};
    const target = meta.params.live_users != null ? meta.params.live_users : meta.params.users;
    const running = meta.active && meta.started_at;
    const peak = state.series.users.reduce((a, b) => Math.max(a, b || 0), 0);
    $("h-users").textContent = int(meta.active ? meta.users : peak);
    $("h-users-sub").textContent = meta.active ? "of " + int(target) : "at peak, of " + int(target);
    $("h-rps").textContent = running ? fmt(lastTick("rps") || 0) : fmt(aggregate.rps);
    $("h-rps-sub").textContent = running ? "this second · " + fmt(aggregate.rps) + " on average" : "on average";
    const requests = aggregate.requests || 0, failures = aggregate.failures || 0;
    const ratio = requests ? (100 * failures) / requests : 0;
    const fail = $("h-fail");
    fail.textContent = requests ? ratio.toFixed(ratio >= 10 || ratio === 0 ? 0 : 1) + "%" : "—";
    fail.className = ratio > 0 ? "bad" : "";
    $("h-fail-sub").textContent = int(failures) + " failed" + (running ? " · " + fmt(lastTick("fails_per_s") || 0) + "/s now" : "");
    $("h-p95").textContent = running && lastTick("p95_ms") != null ? ms(lastTick("p95_ms")) + " ms" : (aggregate.p95 != null ? ms(aggregate.p95) + " ms" : "—");
    $("h-p95-sub").textContent = aggregate.p95 == null ? (running ? "no response yet" : "no responses")
      : running ? "this second · " + ms(aggregate.p95) + " ms overall"
      : "overall · p50 " + ms(aggregate.p50) + " ms · p99 " + ms(aggregate.p99) + " ms";
    $("h-requests").textContent = int(requests);
    $("h-requests-sub").textContent = aggregate.mean_ms != null ? "average " + ms(aggregate.mean_ms) + " ms" : "";
  }

  // The endpoint rows in the order shown: {key, row, current_rps, current_fails}.
  function tableRows() {
    const current = state.current || {};
    const active = state.meta.active;
    const rows = [];
    for (const r of state.totals) {
      if (r.name === "Aggregated") continue;
      const k = key(r), now = current[k];
      rows.push({key: k, row: r, current_rps: active ? (now && now.rps) || 0 : null,
                 current_fails: active ? (now && now.fails_per_s) || 0 : null});
    }
    if (sortKey) {
      const value = sortKey === "current_rps" || sortKey === "current_fails" ? (item) => item[sortKey] : (item) => item.row[sortKey];
      rows.sort((a, b) => {
        const x = value(a), y = value(b);
        if (x == null && y == null) return 0;
        if (x == null) return 1;
        if (y == null) return -1;
        return (typeof x === "string" ? x.localeCompare(y) : x - y) * sortDir;
      });
    }
    return rows;
  }

  // Each table row is kept by its key (tr[data-key]) with its cells, the values they show and their
  // text; an update formats only the values that changed and writes only the text that did, so a
  // selection in the other cells stays.
  function text(value) { return value == null ? "" : String(value); }
  const CELLS = [["method", text, ""], ["name", text, "mono"], ["requests", int, "num"], ["failures", int, "num"],
                 ["p50", ms, "num"], ["p90", ms, "num"], ["p95", ms, "num"], ["p99", ms, "num"], ["mean_ms", ms, "num"],
                 ["min_ms", ms, "num"], ["max_ms", ms, "num"], ["avg_size", int, "num"]];
  const CURRENT_RPS = CELLS.length, CURRENT_FAILS = CELLS.length + 1, FAILURES_CELL = 3;
  const tableRowsByKey = new Map();   // key -> {tr, cells, nodes, values, texts, row, rps, fails, bad}

  function tableRow(k, aggregate) {
    let entry = tableRowsByKey.get(k);
    if (!entry) {
      const tr = document.createElement("tr");
      tr.dataset.key = k;
      if (aggregate) tr.className = "aggregate";
      const cells = [...CELLS.map((cell) => cell[2]), "num", "num"].map((css) => {
        const td = tr.appendChild(document.createElement("td"));
        if (css) td.className = css;
        return td;
      });
      // Each cell's text node is written in place (nodeValue): cheaper than a new node per change.
      const nodes = cells.map((td) => td.appendChild(document.createTextNode("")));
      entry = {tr: tr, cells: cells, nodes: nodes, values: CELLS.map(() => undefined), texts: cells.map(() => null),
               row: null, rps: undefined, fails: undefined, bad: false};
      tableRowsByKey.set(k, entry);
    }
    return entry;
  }

  function write(entry, i, shown) {
    if (shown === entry.texts[i]) return;
    entry.nodes[i].nodeValue = shown;
    entry.texts[i] = shown;
  }

  function updateRow(entry, r, currentRps, currentFails) {
    // A row the last delta did not carry is the same object: its cells are as they were.
    if (entry.row !== r) {
      entry.row = r;
      for (let i = 0; i < CELLS.length; i++) {
        const value = r[CELLS[i][0]];
        if (value === entry.values[i]) continue;
        entry.values[i] = value;
        write(entry, i, CELLS[i][1](value));
      }
      const bad = Boolean(r.failures);
      if (bad !== entry.bad) {
        entry.cells[FAILURES_CELL].classList.toggle("bad", bad);
        entry.bad = bad;
      }
    }
    if (currentRps !== entry.rps) {
      entry.rps = currentRps;
      write(entry, CURRENT_RPS, currentRps == null ? "–" : fmt(currentRps));
    }
    if (currentFails !== entry.fails) {
      entry.fails = currentFails;
      write(entry, CURRENT_FAILS, currentFails == null ? "–" : fmt(currentFails));
    }
  }

  // A long table keeps only the rows near the viewport in the document (WINDOW_MARGIN above and below
  // it), with a spacer row for the rows above and one for those below: with a thousand endpoints the
  // browser lays out, styles and paints about a hundred rows a second instead of every one of them.
  const WINDOW_FROM = 200, WINDOW_MARGIN = 40;
  let rowHeight = 0;   // measured on the first windowed render
  const spacers = [0, 1].map(() => {
    const tr = document.createElement("tr");
    tr.className = "spacer";
    tr.setAttribute("aria-hidden", "true");
    const td = tr.appendChild(document.createElement("td"));
    td.colSpan = CELLS.length + 2;
    return tr;
  });

  // [first, end) of the rows to keep, in their shown order.
  function windowOf(count) {
    if (count <= WINDOW_FROM) return [0, count];
    const body = $("stats-body");
    if (!body.offsetParent) return [0, Math.min(count, 2 * WINDOW_MARGIN)];   // another tab is shown
    const top = body.getBoundingClientRect().top, height = rowHeight || 30;
    let first = Math.max(0, Math.floor(-top / height) - WINDOW_MARGIN);
    first -= first % 2;   // striping stays in step
    const end = Math.min(count, Math.max(first + 1, Math.ceil((window.innerHeight - top) / height) + WINDOW_MARGIN));
    return [Math.min(first, count - 1), end];
  }

  function spacer(index, rows) {
    const tr = spacers[index];
    tr.firstChild.style.height = Math.round(rows * (rowHeight || 30)) + "px";
    return tr;
  }

  function renderTable() {
    const rows = tableRows();
    const aggregate = state.totals.find((r) => r.name === "Aggregated");
    const [first, end] = windowOf(rows.length);
    const windowed = end - first < rows.length;
    const wanted = [];
    if (windowed && first > 0) wanted.push(spacer(0, first));
    for (let i = first; i < end; i++) {
      const item = rows[i];
      const entry = tableRow(item.key, false);
      updateRow(entry, item.row, item.current_rps, item.current_fails);
      wanted.push(entry.tr);
    }
    if (windowed && end < rows.length) wanted.push(spacer(1, rows.length - end));
    if (aggregate && rows.length) {
      const entry = tableRow("Aggregated", true);   // an endpoint's key (method + " " + name) has a space
      const shown = aggregate.method === "" ? aggregate : Object.assign({}, aggregate, {method: ""});
      updateRow(entry, shown, state.meta.active ? lastTick("rps") || 0 : null,
                state.meta.active ? lastTick("fails_per_s") || 0 : null);
      wanted.push(entry.tr);
    }
    // Put the rows in order, moving only those out of place; what is left over is gone.
    const body = $("stats-body");
    let cursor = body.firstChild;
    for (const tr of wanted) {
      if (cursor === tr) cursor = cursor.nextSibling;
      else body.insertBefore(tr, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      if (cursor.dataset) tableRowsByKey.delete(cursor.dataset.key);
      body.removeChild(cursor);
      cursor = next;
    }
    if (windowed && !rowHeight && end > first && body.offsetParent) {
      // Once, in view: the height of a rendered row, for the spacers (rows do not all wrap alike: close enough).
      rowHeight = tableRowsByKey.get(rows[first].key).tr.getBoundingClientRect().height;
      if (rowHeight > 0) {
        if (first > 0) spacer(0, first);
        if (end < rows.length) spacer(1, rows.length - end);
      }
    }
    $("stats-table").classList.toggle("ended", !state.meta.active);   // "current" columns mean nothing then
    const empty = $("stats-empty");
    empty.hidden = rows.length > 0;
    if (!rows.length) {
      empty.textContent = state.meta.active ? "No requests yet: statistics appear here within seconds of the start." : "This run recorded no requests.";
    }
  }

  function renderCharts() {
    const s = zoomed ? zoomed.series : state.series;
    const panel = document.querySelector('[data-panel="charts"]');
    $("charts-empty").hidden = s.tick.length > 0;
    if (panel.hidden) return;   // drawn when the tab opens
    renderEndpointPicker();
    renderResolution();
    const live = {active: state.meta.active, users: state.meta.users};
    const markers = state.meta.markers || [];
    if (!charts) {
      charts = SwarmCharts.run({rps: $("chart-rps"), latency: $("chart-latency"), users: $("chart-users")},
                               s, state.totals, live, {markers: markers, endpoints: picked, endpointSeries: endpointColumns(),
                                                       zoom: (state.series_width || 1) > 1 ? zoomTo : null});
      markersSignature = JSON.stringify(markers);
    } else {
      charts.setData(s, state.totals, live, endpointColumns());
      const signature = JSON.stringify(markers);
      if (signature !== markersSignature) { markersSignature = signature; charts.setMarkers(markers); }
    }
  }

  // ---- a long run's resolution and zoom ------------------------------------------------------------
  // A long run's series comes downsampled (state.series_width seconds per point, runs/downsample.py):
  // a drag across a chart fetches that window, finer (runs-series); "Whole run" goes back to it.
  function renderResolution() {
    const width = zoomed ? zoomed.width : (state.series_width || 1);
    $("chart-resolution").hidden = !zoomed && width === 1;
    $("chart-zoom-reset").hidden = !zoomed;
    const points = width > 1 ? "one point per " + int(width) + " s (users and response times: each point's highest)"
      : "every second";
    $("chart-resolution-text").textContent = zoomed
      ? SwarmCharts.clock(zoomed.from) + " to " + SwarmCharts.clock(zoomed.to) + ": " + points + "."
      : "Whole run: " + points + ". Drag across a chart to zoom in.";
  }

  async function zoomTo(from, to) {
    const params = new URLSearchParams({from: String(from), to: String(to)});
    try {
      const response = await fetch(root.dataset.seriesUrl + "?" + params.toString(),
                                   {credentials: "same-origin", headers: {"Accept": "application/json"}});
      if (!response.ok) return;
      const body = await response.json();
      zoomed = {from: from, to: to, series: body.series, width: body.series_width};
    } catch (error) {
      return;   // the next drag asks again
    }
    renderCharts();
  }

  $("chart-zoom-reset").addEventListener("click", () => { zoomed = null; renderCharts(); });

  // ---- endpoints on the Charts tab ----------------------------------------------------------------
  function endpointKeys() {
    return (state.totals || []).filter((row) => row.name !== "Aggregated").map(key);
  }

  function renderEndpointPicker() {
    const keys = endpointKeys();
    const signature = keys.join("\n") + "|" + picked.join("\n");
    if (signature === pickerSignature) return;
    pickerSignature = signature;
    const full = picked.length >= MAX_PICKED;
    $("chart-endpoints-list").innerHTML = ["Aggregated", ...keys].map((k) => {
      const on = picked.includes(k);
      return '<label><input type="checkbox" value="' + esc(k) + '"' + (on ? " checked" : "") +
        (full && !on ? " disabled" : "") + ">" + esc(k) + "</label>";
    }).join("");
  }

  // Columns of the picked endpoints aligned with the charts' ticks (null: no request that second).
  function endpointColumns() {
    const columns = {};
    for (const k of picked) {
      if (k === "Aggregated") continue;
      const seconds = endpointTicks[k] || new Map();
      const column = {rps: [], fails_per_s: [], p50_ms: [], p95_ms: [], p99_ms: []};
      for (const tick of (zoomed ? zoomed.series : state.series).tick) {
        const f = seconds.get(tick);
        for (const name of Object.keys(column)) column[name].push(f ? (f[name] == null ? null : f[name]) : null);
      }
      columns[k] = column;
    }
    return columns;
  }

  function takeCurrent(message) {
    // One closed second: its figures per endpoint are in `current`. More than one (a catch-up):
    // only the newest is there, so fetch the others.
    const ticks = (message.series && message.series.tick) || [];
    if (!ticks.length) return;
    const loaded = picked.filter((k) => k !== "Aggregated" && endpointTicks[k]);
    if (!loaded.length) return;
    if (ticks.length === 1 && message.current) {
      for (const k of loaded) endpointTicks[k].set(ticks[0], message.current[k] || null);
    } else {
      refetchEndpoints(ticks[0]);
    }
  }

  async function fetchEndpoints(keys, since) {
    if (!keys.length) return;
    for (const k of keys) if (!endpointTicks[k]) endpointTicks[k] = new Map();   // deltas meanwhile land here
    const params = new URLSearchParams();
    for (const k of keys) params.append("name", k);
    if (since != null) params.set("since", since);
    try {
      const response = await fetch(root.dataset.endpointSeriesUrl + "?" + params.toString(),
                                   {credentials: "same-origin", headers: {"Accept": "application/json"}});
      if (!response.ok) return;
      const body = await response.json();
      for (const [k, column] of Object.entries(body.endpoints || {})) {
        const seconds = endpointTicks[k] || (endpointTicks[k] = new Map());
        body.tick.forEach((tick, i) => {
          seconds.set(tick, column.rps[i] == null ? null : {rps: column.rps[i], fails_per_s: column.fails_per_s[i],
            p50_ms: column.p50_ms[i], p95_ms: column.p95_ms[i], p99_ms: column.p99_ms[i]});
        });
      }
    } catch (error) {
      return;   // the next pick or reconnect asks again
    }
    if (charts) charts.setEndpoints(picked, endpointColumns());
  }

  function refetchEndpoints(since) {
    fetchEndpoints(picked.filter((k) => k !== "Aggregated" && endpointTicks[k]), since);
  }

  $("chart-endpoints-list").addEventListener("change", (event) => {
    const box = event.target;
    if (!box.matches("input[type=checkbox]")) return;
    picked = picked.filter((k) => k !== box.value);
    if (box.checked) picked.push(box.value);
    if (!picked.length) picked = ["Aggregated"];
    const missing = picked.filter((k) => k !== "Aggregated" && !endpointTicks[k]);
    if (charts) charts.setEndpoints(picked, endpointColumns());
    renderEndpointPicker();
    fetchEndpoints(missing, null);
  });

  let renderedErrors = null, renderedSlots = null;   // what the Failures and Workers tabs show (unchanged: same array)

  function renderFailures() {
    const errors = state.errors || [];
    if (errors === renderedErrors) return;
    renderedErrors = errors;
    const total = errors.reduce((n, e) => n + e.count, 0);
    $("count-failures").textContent = total ? int(total) : "";
    $("failures-empty").hidden = errors.length > 0;
    $("failures-body").innerHTML = errors.slice(0, TABLE_LIMIT).map((e) =>
      '<tr><td class="num">' + int(e.count) + "</td><td>" + esc(e.method) + '</td><td class="mono">' + esc(e.name) +
      '</td><td class="mono small">' + esc(e.error) + "</td></tr>").join("");
  }

  function renderExceptions() {
    const list = state.exceptions || [];
    const total = list.reduce((n, e) => n + e.count, 0);
    $("count-exceptions").textContent = total ? int(total) : "";
    $("exceptions-empty").hidden = list.length > 0;
    const box = $("exceptions-list");
    const signature = list.map((e) => e.count + e.message).join("|");
    if (box.dataset.signature === signature) return;   // keep open <details> open
    box.dataset.signature = signature;
    box.innerHTML = list.map((e) => "<details><summary><strong>" + int(e.count) + " ×</strong> " + esc(e.message) +
      '</summary><pre class="small">' + esc(e.traceback) + "</pre></details>").join("");
  }

  function renderWorkers() {
    const slots = state.slots || [];
    if (slots === renderedSlots) return;
    renderedSlots = slots;
    $("count-workers").textContent = slots.length ? slots.length : "";
    $("workers-empty").hidden = slots.length > 0;
    $("workers-body").innerHTML = slots.map((s) => {
      const hot = s.cpu != null && s.cpu > 90;
      const [first, ...more] = (s.error || "").split("\n");
      const error = !s.error ? "" : more.length
        ? '<details class="slot-error"><summary class="small">' + esc(first) + '</summary><pre class="small traceback">' + esc(more.join("\n")) + "</pre></details>"
        : '<br><small class="muted">' + esc(first) + "</small>";
      const note = s.status === "preparing" && s.note ? '<br><small class="muted slot-note">' + esc(s.note) + "</small>" : "";
      return "<tr><td>" + s.index + "</td><td>" + esc(s.host || "—") + '</td><td><span class="badge slot-' + esc(s.status) + '">' +
        esc(s.status) + "</span>" + note + error +
        '</td><td class="num">' + int(s.users) + '</td><td class="num' + (hot ? " bad" : "") + '">' +
        (s.cpu == null ? "—" : Math.round(s.cpu) + "%") + '</td><td class="num">' + int(s.requests) + "</td></tr>";
    }).join("");
  }

  function renderHistory() {
    $("history-list").innerHTML = (state.meta.history || []).map((h) =>
      "<li><strong>" + esc(h.status) + '</strong> <span class="muted">' + esc((h.at || "").slice(11, 19)) + "</span>" +
      (h.note ? " — " + esc(h.note) : "") + "</li>").join("");
  }

  // ---- the socket -------------------------------------------------------------------------------
  function indicator(text, kind) {
    const el = $("live-indicator");
    el.hidden = !text;
    el.textContent = text || "";
    el.className = "live-indicator " + (kind || "");
  }

  function connect() {
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + root.dataset.wsPath);
    // Live once the state arrives, not on open: while Redis is down the server accepts and closes
    // at once (4503), and the backoff must keep growing through those.
    socket.onmessage = (event) => {
      const started = performance.now();
      retry = 0;
      indicator("● Live", "on");
      apply(JSON.parse(event.data));
      applied.push(performance.now() - started);
      if (applied.length > 600) applied.shift();
    };
    socket.onclose = () => {
      socket = null;
      if (!state.meta.active) return;
      const wait = Math.min(15, Math.pow(2, retry++));   // 1, 2, 4, 8, 15 s
      let left = wait;
      indicator("Disconnected: reconnecting in " + left + " s…", "off");
      countdownTimer = setInterval(() => {
        left -= 1;
        if (left > 0) indicator("Disconnected: reconnecting in " + left + " s…", "off");
      }, 1000);
      retryTimer = setTimeout(connect, wait * 1000);
    };
  }

  function finish() {
    indicator("", "");
    if (socket) { socket.close(); socket = null; }
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
  }

  // ---- tabs, sorting, edit users ----------------------------------------------------------------
  function showTab(name) {
    if (!document.querySelector('#tabs [data-tab="' + name + '"]')) name = "stats";
    document.querySelectorAll("#tabs [data-tab]").forEach((b) => b.setAttribute("aria-selected", String(b.dataset.tab === name)));
    document.querySelectorAll("section.tab").forEach((p) => { p.hidden = p.dataset.panel !== name; });
    if (name === "charts") renderCharts();
    if (name === "stats") renderTable();   // a long table's window follows the viewport
  }
  let windowQueued = false;
  function followViewport() {
    if (windowQueued || state.totals.length <= WINDOW_FROM) return;
    windowQueued = true;
    requestAnimationFrame(() => { windowQueued = false; renderTable(); });
  }
  window.addEventListener("scroll", followViewport, {passive: true});
  window.addEventListener("resize", followViewport, {passive: true});
  document.querySelectorAll("#tabs [data-tab]").forEach((button) => button.addEventListener("click", () => {
    history.replaceState(null, "", "#" + button.dataset.tab);
    showTab(button.dataset.tab);
  }));
  document.querySelectorAll("#stats-table th[data-key]").forEach((th) => th.addEventListener("click", () => {
    const k = th.dataset.key;
    sortDir = sortKey === k ? -sortDir : (th.classList.contains("num") ? -1 : 1);
    sortKey = k;
    document.querySelectorAll("#stats-table th").forEach((h) => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
    renderTable();
  }));

  const usersForm = $("users-form");
  if (usersForm) {
    usersForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const message = $("users-form-message");
      message.textContent = "Applying…";
      try {
        const response = await fetch(usersForm.action, {method: "POST", body: new FormData(usersForm),
                                                         headers: {"Accept": "application/json"}, credentials: "same-origin"});
        const body = await response.json();
        if (body.ok) {
          message.textContent = "Users → " + body.users + " at " + body.spawn_rate + "/s.";
          $("edit-users").open = false;
          flash("Users → " + body.users + " at " + body.spawn_rate + "/s: the slots follow within a second.");
        } else {
          message.textContent = Object.values(body.errors || {}).flat().join(" ");
        }
      } catch (error) {
        message.textContent = "Could not reach Swarmdeck: " + error;
      }
    });
  }

  // Stop without leaving the page: the tab, the picked endpoints and the scroll stay; the
  // WebSocket brings the new state. Without fetch (or on an error) the form posts as usual.
  const stopForm = $("stop-form");
  if (stopForm && window.fetch) {
    stopForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      $("stop-button").disabled = true;
      try {
        const response = await fetch(stopForm.action, {method: "POST", body: new FormData(stopForm),
                                                       credentials: "same-origin"});
        if (!response.ok) throw new Error("HTTP " + response.status);
        if (state.meta.active) {  // the WebSocket may have brought the end already
          flash(["queued", "dispatching", "starting"].includes(state.meta.status) ? "Cancelling the run…"
                : "Stopping: users stop within the stop timeout, then every slot's last numbers are counted.");
        }
      } catch (error) {
        stopForm.submit();
      }
    });
  }

  function flash(text) {
    const box = $("flash-box");
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  window.swarmdeckLive = {get state() { return state; }, get socket() { return socket; }, timings: timings,
                          applied: applied, freshness: [], apply: apply, resyncs: resyncs,
                          get lastSeq() { return lastSeq; }, get lastEpoch() { return lastEpoch; },
                          get charts() { return charts && charts.charts; }, get picked() { return picked.slice(); }};
  showTab((location.hash || "#stats").slice(1));
  render();
  performance.mark("swarmdeck-first-render");   // bench/live_dashboard.py reads it
  setInterval(() => { if (state.meta.active) renderProgress(); }, 1000);
  // A queued run's position moves when runs ahead of it start: ask for it now and then.
  setInterval(() => {
    if (state.meta.status === "queued" && socket && socket.readyState === 1) socket.send(JSON.stringify({type: "refresh"}));
  }, 5000);
  if (state.meta.active) connect();
})();
