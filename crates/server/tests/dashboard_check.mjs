// Run by crates/server/tests/http.rs: `node dashboard_check.mjs HTTP_PORT
// RESP_PORT KEYS`. Feeds two live /v1/stats readings, with RESP commands
// between them, to the dashboard's own functions and checks what they make
// of them. Exits non-zero (with the reason) on the first mismatch.
import assert from "node:assert/strict";
import net from "node:net";
import {
  FIGURES, HISTORY, newState, update, sparkline, human, duration, topCommands,
} from "../src/http/dashboard.mjs";

const [httpPort, respPort, keys] = process.argv.slice(2).map(Number);
const stats = async () => (await fetch(`http://127.0.0.1:${httpPort}/v1/stats`)).json();

// n PINGs over RESP, waiting for every reply
function pings(n) {
  return new Promise((resolve, reject) => {
    const s = net.connect(respPort, "127.0.0.1", () => s.write("*1\r\n$4\r\nPING\r\n".repeat(n)));
    let got = "";
    s.on("data", (d) => {
      got += d;
      if (got.length >= n * "+PONG\r\n".length) {
        s.end();
        resolve();
      }
    });
    s.on("error", reject);
  });
}

const state = newState();
const first = await stats();
update(state, first, 10);
// a gauge has its first point at once; a rate needs two readings
assert.equal(state.series.keys.at(-1), keys);
assert.equal(state.series.ops.length, 0);
await pings(500);
const second = await stats();
update(state, second, 12);
const ops = state.series.ops.at(-1);
assert.ok(ops >= 250 && ops <= 260, `commands/s over 2 s of 500 PINGs (+ the stats calls): ${ops}`);
for (const [id] of FIGURES) {
  const v = state.series[id].at(-1);
  assert.ok(Number.isFinite(v) && v >= 0, `${id}: ${v}`);
}
assert.ok(state.series.keyspace_bytes.at(-1) > 0);
const top = topCommands(first, second, 2);
assert.equal(top[0].door, "resp");
assert.equal(top[0].name, "ping");
assert.equal(top[0].rate, 250);

// a counter that went down reads as 0, not negative
const reset = structuredClone(second);
reset.counters.commands_processed = 0;
update(state, reset, 13);
assert.equal(state.series.ops.at(-1), 0);

// history is bounded
for (let t = 14; t < 14 + 2 * HISTORY; t++) update(state, second, t);
assert.equal(state.series.keys.length, HISTORY);

// sparklines: empty, flat, rising; always inside the box
assert.equal(sparkline([], 240, 40), "");
assert.equal(sparkline([5], 240, 40), "M240.0,0.0");
const path = sparkline([0, 1, 2], 240, 40);
assert.match(path, /^M[\d.]+,40\.0 L[\d.]+,20\.0 L240\.0,0\.0$/);
for (const n of sparkline(state.series.keys, 240, 40).match(/-?[\d.]+/g).map(Number)) {
  assert.ok(n >= 0 && n <= 240, `point ${n} outside the box`);
}

assert.equal(human(999, ""), "999");
assert.equal(human(1500, "/s"), "1.50 k/s");
assert.equal(human(3 * 1024 * 1024, "B"), "3.00 MiB");
assert.equal(human(0, "B"), "0 B");
assert.equal(duration(393.216), "393 µs");
assert.equal(duration(2.048), "2.05 µs");
assert.equal(duration(81920), "81.9 ms");
assert.equal(duration(2.5e6), "2.50 s");
console.log("dashboard ok");
