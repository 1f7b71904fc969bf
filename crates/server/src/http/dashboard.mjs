// magpie's live dashboard (GET /dashboard): polls /v1/stats once a second
// and draws the last two minutes of each figure as a sparkline, to watch
// load, memory and evictions, and to spot a leak as a line that only
// climbs. A plain ES module with no dependencies. The functions before
// the DOM part are pure and exported, so crates/server/tests/http.rs runs
// them under node against a live server's /v1/stats.

/** Samples kept per figure: two minutes at one a second. */
export const HISTORY = 120;

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

/**
 * The figures, in page order: [id, label, kind, read, unit]. A "rate" is
 * the change of a counter per second between two samples; a "gauge" is
 * drawn as read.
 */
export const FIGURES = [
  ["ops", "commands/s (RESP + memcached)", "rate", (s) => s.counters.commands_processed, ""],
  ["hits", "keyspace hits/s", "rate", (s) => s.counters.keyspace_hits, ""],
  ["misses", "keyspace misses/s", "rate", (s) => s.counters.keyspace_misses, ""],
  ["http", "HTTP responses/s", "rate", (s) => sum(Object.values(s.http_responses)), ""],
  ["keys", "keys", "gauge", (s) => sum(Object.values(s.keyspace).map((d) => d.keys)), ""],
  ["keyspace_bytes", "keyspace memory (entries + tables)", "gauge",
    (s) => s.memory.entries_bytes + s.memory.tables_bytes, "B"],
  ["resident", "resident memory", "gauge", (s) => s.memory.resident_bytes ?? 0, "B"],
  ["evicted", "evictions/s", "rate", (s) => s.counters.evicted_keys, ""],
  ["expired", "expirations/s", "rate", (s) => s.counters.expired_keys, ""],
  ["clients", "connected clients", "gauge", (s) => s.connected_clients, ""],
  ["net_in", "network in", "rate", (s) => s.counters.net_input_bytes, "B/s"],
  ["net_out", "network out", "rate", (s) => s.counters.net_output_bytes, "B/s"],
  ["log", "log size", "gauge", (s) => (s.persistence.enabled ? s.persistence.log_bytes : 0), "B"],
];

/** An empty history. */
export function newState() {
  return { prev: null, series: Object.fromEntries(FIGURES.map(([id]) => [id, []])) };
}

/**
 * Adds one /v1/stats reading taken at `t` seconds. Rates need a previous
 * reading; a counter that went down (CONFIG RESETSTAT, a restart) reads
 * as 0 for that step rather than a negative rate.
 */
export function update(state, stats, t) {
  const values = Object.fromEntries(FIGURES.map(([id, , , read]) => [id, read(stats)]));
  for (const [id, , kind] of FIGURES) {
    let v = values[id];
    if (kind === "rate") {
      if (!state.prev || t <= state.prev.t) continue;
      v = Math.max(0, (v - state.prev.values[id]) / (t - state.prev.t));
    }
    const series = state.series[id];
    series.push(v);
    if (series.length > HISTORY) series.shift();
  }
  state.prev = { t, values, stats };
  return state;
}

/**
 * The SVG path of `points` in a `width` x `height` box, scaled from 0 (or
 * the smallest point, if negative) to the largest; an empty string for no
 * points.
 */
export function sparkline(points, width, height) {
  if (points.length === 0) return "";
  const hi = Math.max(...points);
  const lo = Math.min(0, ...points);
  const span = hi - lo || 1;
  const step = points.length > 1 ? width / (HISTORY - 1) : 0;
  const x0 = width - step * (points.length - 1);
  return points
    .map((p, i) => {
      const x = x0 + step * i;
      const y = height - ((p - lo) / span) * height;
      return `${i === 0 ? "M" : "L"}${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(" ");
}

/** `n` with a k/M/G suffix (powers of 1024 for bytes), for a tile. */
export function human(n, unit) {
  const bytes = unit.startsWith("B");
  const base = bytes ? 1024 : 1000;
  const suffixes = bytes ? ["", "Ki", "Mi", "Gi", "Ti"] : ["", "k", "M", "G", "T"];
  let i = 0;
  while (Math.abs(n) >= base && i < suffixes.length - 1) {
    n /= base;
    i += 1;
  }
  const digits = i === 0 && Number.isInteger(n) ? 0 : n < 10 ? 2 : n < 100 ? 1 : 0;
  return `${n.toFixed(digits)} ${suffixes[i]}${unit}`.trim();
}

/** A latency in microseconds, to three significant digits. */
export function duration(us) {
  if (us >= 1e6) return `${(us / 1e6).toPrecision(3)} s`;
  if (us >= 1e3) return `${(us / 1e3).toPrecision(3)} ms`;
  return `${us.toPrecision(3)} µs`;
}

/**
 * The busiest commands between two readings: {door, name, rate, p99_us},
 * most calls per second first, at most `limit`.
 */
export function topCommands(prev, stats, dt, limit = 10) {
  const rows = [];
  for (const [door, commands] of Object.entries(stats.commands)) {
    for (const [name, c] of Object.entries(commands)) {
      const before = prev?.commands?.[door]?.[name]?.calls ?? 0;
      const rate = dt > 0 ? Math.max(0, (c.calls - before) / dt) : 0;
      rows.push({ door, name, rate, p99_us: c.p99_us });
    }
  }
  rows.sort((a, b) => b.rate - a.rate || a.name.localeCompare(b.name));
  return rows.slice(0, limit);
}

// ------------------------------------------------------------ the page

function el(tag, attrs = {}, text = "") {
  const e = document.createElementNS(
    tag === "svg" || tag === "path" ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml",
    tag,
  );
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
}

function start() {
  const state = newState();
  const tiles = document.getElementById("tiles");
  const parts = {};
  for (const [id, label] of FIGURES) {
    const tile = el("div", { class: "tile" });
    const value = el("div", { class: "value" }, "…");
    const svg = el("svg", { viewBox: "0 0 240 40", preserveAspectRatio: "none" });
    const path = el("path", { d: "" });
    svg.append(path);
    tile.append(el("div", { class: "label" }, label), value, svg);
    tiles.append(tile);
    parts[id] = { value, path };
  }
  const status = document.getElementById("status");
  const top = document.getElementById("top");
  const extra = document.getElementById("extra");
  let prevStats = null;
  let prevT = 0;
  async function poll() {
    try {
      const res = await fetch("/v1/stats", { cache: "no-store" });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const stats = await res.json();
      const t = performance.now() / 1000;
      update(state, stats, t);
      for (const [id, , , , unit] of FIGURES) {
        const series = state.series[id];
        if (series.length) parts[id].value.textContent = human(series[series.length - 1], unit);
        parts[id].path.setAttribute("d", sparkline(series, 240, 40));
      }
      const m = stats.memory;
      const limit = m.maxmemory_bytes
        ? `limit ${human(m.maxmemory_bytes, "B")} (${m.maxmemory_policy})`
        : "no memory limit";
      const log = stats.persistence.enabled
        ? `log ${stats.persistence.ok ? "ok" : "FAILING"}, appendfsync ${stats.persistence.appendfsync}`
        : "ephemeral";
      extra.textContent = `${limit} · ${log} · up ${stats.uptime_seconds} s`;
      top.replaceChildren();
      for (const r of topCommands(prevStats, stats, t - prevT)) {
        const row = el("tr");
        row.append(
          el("td", {}, r.door),
          el("td", {}, r.name),
          el("td", {}, human(r.rate, "/s")),
          el("td", {}, duration(r.p99_us)),
        );
        top.append(row);
      }
      prevStats = stats;
      prevT = t;
      status.textContent = "live";
      status.className = "ok";
    } catch (e) {
      status.textContent = `no answer from /v1/stats: ${e.message}`;
      status.className = "err";
    }
  }
  poll();
  setInterval(poll, 1000);
}

if (typeof document !== "undefined") start();
