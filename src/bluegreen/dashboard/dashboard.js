// The dashboard's live parts: requests/s per colour (a reading a second, the last minute drawn
// as one line per colour) and the steps of a deploy or switch started here. DOM built with
// textContent only: text from hosts is never parsed as HTML.
"use strict";
(function () {
  const HISTORY = 60;
  const svgNS = "http://www.w3.org/2000/svg";

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  const traffic = document.getElementById("traffic");
  if (traffic) {
    const app = traffic.dataset.app;
    const bars = traffic.querySelector(".bars");
    // Kept across the page's own reloads (after a job), so the line shows the switch.
    const key = "bluegreen-traffic-" + app;
    const series = JSON.parse(sessionStorage.getItem(key) || "{}");
    async function tick() {
      try {
        const r = await fetch("/api/app/" + encodeURIComponent(app) + "/traffic",
                              { credentials: "same-origin" });
        if (r.ok) draw(await r.json());
      } catch (e) { /* the next reading tries again */ }
      setTimeout(tick, 1000);
    }
    function draw(sample) {
      bars.replaceChildren();
      let top = 1;
      for (const c of sample.colours) {
        const s = (series[c.color] = series[c.color] || []);
        s.push(c.per_second || 0);
        if (s.length > HISTORY) s.shift();
        top = Math.max(top, ...s);
      }
      sessionStorage.setItem(key, JSON.stringify(series));
      const svg = document.createElementNS(svgNS, "svg");
      svg.setAttribute("viewBox", "0 0 " + (HISTORY - 1) + " 40");
      svg.setAttribute("preserveAspectRatio", "none");
      svg.setAttribute("class", "chart");
      for (const c of sample.colours) {
        const rate = c.per_second === null ? "..." : c.per_second.toFixed(1);
        const row = el("div", undefined, "bar c-" + c.color);
        row.dataset.color = c.color;
        row.dataset.rate = c.per_second === null ? "" : String(c.per_second);
        row.appendChild(el("span", c.color.toUpperCase() + " " + (c.role || "?"), "name"));
        const fill = el("span", undefined, "fill");
        fill.style.width = (100 * (c.per_second || 0) / top) + "%";
        row.appendChild(fill);
        row.appendChild(el("span", rate + " req/s", "rate"));
        bars.appendChild(row);
        const line = document.createElementNS(svgNS, "polyline");
        const s = series[c.color];  // the newest reading at the right edge
        const pts = s.map((v, i) => (HISTORY - s.length + i) + "," + (39 - 37 * v / top).toFixed(1));
        line.setAttribute("points", pts.join(" "));
        line.setAttribute("class", "line c-" + c.color);
        svg.appendChild(line);
      }
      bars.appendChild(svg);
      if (sample.error) bars.appendChild(el("p", sample.error, "notice"));
    }
    tick();
  }

  const job = document.getElementById("job");
  if (job) {
    const id = job.dataset.job;
    const list = job.querySelector(".steps");
    const outcome = job.querySelector(".outcome");
    let sawRunning = false;
    async function poll() {
      let view = null;
      try {
        const r = await fetch("/api/jobs/" + encodeURIComponent(id), { credentials: "same-origin" });
        if (r.ok) view = await r.json();
      } catch (e) { /* try again */ }
      if (view) {
        // One row per step: its latest event (start, then ok / failed / skipped).
        const latest = new Map();
        for (const s of view.steps) latest.set(s.step, s);
        list.replaceChildren();
        for (const s of latest.values()) {
          const took = s.duration_s === null ? "" : " (" + s.duration_s.toFixed(1) + "s)";
          const state = s.status === "start" ? "running" : s.status;
          list.appendChild(el("li", s.step + ": " + state + took + (s.message ? " - " + s.message : ""),
                              "step " + state));
        }
        if (view.done) {
          job.dataset.done = view.ok ? "ok" : "failed";
          outcome.textContent = view.kind + (view.ok ? " done: " : " FAILED: ") + view.message;
          outcome.className = "outcome " + (view.ok ? "ok" : "failed");
          // Status and history changed: show them as they are now (once).
          if (sawRunning) setTimeout(() => location.reload(), 1500);
          return;
        }
        sawRunning = true;
      }
      setTimeout(poll, 500);
    }
    poll();
  }
})();
