// The run page's Logs tab: what each slot printed and logged. The first page comes from
// logs.json (filtered on the server); new lines arrive on the run's WebSocket as "logs"
// messages (live.js re-dispatches every message as a "swarmdeck:message" DOM event).
(function () {
  "use strict";
  const panel = document.getElementById("logs-panel");
  if (!panel) return;
  const $ = (id) => document.getElementById(id);
  const body = $("logs-body");
  const KEEP = 5000;            // lines kept in the page; the download has every kept line
  let lines = [];
  let matching = 0;
  let loading = null;
  // Follow new lines unless the person scrolled up to read; measured only while the tab is shown
  // (a hidden tab has no scroll position, and must still be at the bottom when it opens).
  let follow = true;
  body.addEventListener("scroll", () => {
    if (!panel.hidden) follow = body.scrollHeight - body.scrollTop - body.clientHeight < 40;
  });
  function keepUp() { if (follow) body.scrollTop = body.scrollHeight; }
  new MutationObserver(() => { if (!panel.hidden) keepUp(); }).observe(panel, {attributes: true, attributeFilter: ["hidden"]});

  function filters() {
    const slot = $("logs-slot").value;
    const levels = [...panel.querySelectorAll("#logs-levels input:checked")].map((box) => box.value);
    return {slot, levels, q: $("logs-q").value.trim()};
  }

  function query(f) {
    const params = new URLSearchParams();
    if (f.slot !== "") params.append("slot", f.slot);
    const all = panel.querySelectorAll("#logs-levels input").length;
    if (f.levels.length !== all) f.levels.forEach((level) => params.append("level", level));
    if (f.q) params.append("q", f.q);
    return params.toString();
  }

  function matches(line, f) {
    return (f.slot === "" || String(line.slot) === f.slot) && f.levels.includes(line.level) &&
      (!f.q || line.message.toLowerCase().includes(f.q.toLowerCase()));
  }

  function stamp(t) {
    return new Date(t * 1000).toISOString().slice(11, 23);
  }

  function row(line) {
    const el = document.createElement("div");
    el.className = "log-line level-" + line.level.toLowerCase();
    el.dataset.slot = line.slot;
    const source = line.logger ? " " + line.logger + ":" : "";
    el.textContent = stamp(line.t) + "  slot " + line.slot + "  " + line.level.padEnd(7) + source + " " + line.message;
    return el;
  }

  function render() {
    body.replaceChildren(...lines.map(row));
    keepUp();
    $("logs-empty").hidden = lines.length > 0;
    $("count-logs").textContent = matching ? matching.toLocaleString() : "";
  }

  function append(incoming) {
    const f = filters();
    const fresh = incoming.filter((line) => matches(line, f));
    if (!fresh.length) return;
    lines.push(...fresh);
    matching += fresh.length;
    fresh.forEach((line) => body.appendChild(row(line)));
    while (lines.length > KEEP) { lines.shift(); body.firstChild.remove(); }
    keepUp();
    $("logs-empty").hidden = true;
    $("count-logs").textContent = matching.toLocaleString();
    addSlots(fresh.map((line) => line.slot));
  }

  function addSlots(slots) {
    const select = $("logs-slot");
    const known = new Set([...select.options].map((o) => o.value));
    slots.forEach((slot) => {
      if (known.has(String(slot))) return;
      known.add(String(slot));
      select.add(new Option("slot " + slot, String(slot)));
    });
  }

  function load() {
    const f = filters();
    const q = query(f);
    $("logs-download").href = panel.dataset.textUrl + (q ? "?" + q : "");
    if (loading) loading.abort();
    loading = new AbortController();
    fetch(panel.dataset.jsonUrl + (q ? "?" + q : ""), {signal: loading.signal, credentials: "same-origin"})
      .then((response) => response.json())
      .then((data) => {
        lines = data.lines;
        matching = data.matching;
        addSlots(data.slots);
        const notes = $("logs-notes");
        notes.hidden = !data.notes.length;
        notes.textContent = data.notes.join(" ");
        render();
      })
      .catch((error) => { if (error.name !== "AbortError") console.warn("logs:", error); });
  }

  let typing = null;
  $("logs-filters").addEventListener("change", load);
  $("logs-q").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(load, 300); });
  $("logs-filters").addEventListener("submit", (event) => { event.preventDefault(); load(); });
  document.addEventListener("swarmdeck:message", (event) => {
    const message = event.detail;
    if (message.type === "logs") append(message.lines);
    else if (message.type === "state") load();  // (re)connected: catch up from the database
  });
  load();
})();
