/* The live page's Current ratio tab: the share of each user class and task, as Locust's web UI
 * shows it (locust.user.inspectuser.get_ratio), computed from the static model the page embeds
 * (runs/ratio.py: classes with weight and fixed_count, tasks with their share of their parent)
 * and the users per class the slots report (meta.class_users), or, before they do, Locust's
 * distribution of the users running (or configured). runs/ratio.py's `ratio` is the same
 * computation, checked against Locust's own.
 */
(function () {
  "use strict";

  const body = document.getElementById("ratio-body");
  const source = document.getElementById("run-ratio");
  if (!body || !source || !window.swarmdeckLive) return;
  const model = JSON.parse(source.textContent);
  let shownFor = null;

  function esc(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, (c) => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  }

  // Python's round(): halves to even, as Locust's _calc_distribution rounds.
  function pyRound(x) {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  function distribution(classes, users) {
    const fixed = classes.reduce((n, c) => n + (c.fixed_count || 0), 0);
    const totalWeight = classes.filter((c) => !c.fixed_count).reduce((n, c) => n + c.weight, 0) || 1;
    users = users || (fixed ? 1 : totalWeight);
    const weighted = Math.max(0, users - fixed);
    const counts = {};
    for (const c of classes) counts[c.name] = c.fixed_count || pyRound((c.weight / totalWeight) * weighted);
    return counts;
  }

  function percent(value) { return (value * 100).toFixed(1) + "%"; }

  function rows(tasks, path, depth, total, perClass, out) {
    for (const task of tasks) {
      const here = path + "/" + task.name;
      const t = total * task.share, p = perClass * task.share;
      out.push('<tr data-path="' + esc(here) + '"><td style="padding-left:' + (0.5 + depth * 1.2) + 'rem"><span class="mono">' +
               esc(task.name) + "</span>" + (task.taskset ? ' <span class="badge">task set</span>' : "") +
               '</td><td class="num"></td><td class="num ratio-total">' + percent(t) + '</td><td class="num ratio-class">' +
               percent(p) + "</td></tr>");
      rows(task.tasks || [], here, depth + 1, t, p, out);
    }
  }

  // The users per class the slots report while the run goes; else Locust's distribution of the
  // users running now, or of the configured users when none run.
  function usersNow() {
    const meta = window.swarmdeckLive.state.meta;
    const reported = meta.active ? meta.class_users || {} : {};
    const sum = Object.values(reported).reduce((a, b) => a + b, 0);
    if (sum > 0) return {users: sum, how: "reported", reported: reported};
    if (meta.active && meta.users > 0) return {users: meta.users, how: "running"};
    const params = meta.params || {};
    return {users: Number(params.live_users || params.users || 0), how: "configured"};
  }

  function render() {
    const now = usersNow();
    const users = now.users;
    const signature = JSON.stringify(now);
    if (shownFor === signature) return;
    shownFor = signature;
    const classes = model.classes || [];
    document.getElementById("ratio-empty").hidden = classes.length > 0;
    const counts = now.reported ? Object.fromEntries(classes.map((c) => [c.name, now.reported[c.name] || 0]))
      : distribution(classes, users);
    const spawned = Object.values(counts).reduce((a, b) => a + b, 0) || 1;
    const out = [];
    for (const c of classes) {
      const share = counts[c.name] / spawned;
      out.push('<tr class="ratio-user" data-path="' + esc(c.name) + '"><td><strong>' + esc(c.name) + "</strong>" +
               (c.fixed_count ? ' <span class="small muted">fixed_count ' + c.fixed_count + "</span>" :
                ' <span class="small muted">weight ' + c.weight + "</span>") + '</td><td class="num">' + counts[c.name] +
               '</td><td class="num ratio-total">' + percent(share) + '</td><td class="num ratio-class">' + percent(share) + "</td></tr>");
      rows(c.tasks || [], c.name, 1, share, 1.0, out);
    }
    body.innerHTML = out.join("");
    document.getElementById("ratio-note").textContent = (now.how === "reported"
      ? "Shares for the " + users + " users running now, per class as the load generators report them; " +
        "tasks by the locustfile's task weights, as Locust computes its ratio."
      : "Shares for " + users + " users (" + (now.how === "running" ? "running now" : "configured") + "), from the " +
        "locustfile's weights and fixed_count, as Locust distributes users: no load generator has reported " +
        "its users per class yet.") + (model.approximate ? " Some weights are not literals and count as 1." : "");
  }

  document.addEventListener("swarmdeck:message", () => requestAnimationFrame(render));
  render();
})();
