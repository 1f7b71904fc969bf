//! What `magpie bench` prints and writes: memtier's "ALL STATS" table, the
//! memtier-shaped JSON, CSV, and for `--compare` a summary table and a
//! self-contained HTML page (inline SVG, no external assets).

use std::fmt::Write;

use serde_json::{json, Value};

use super::worker::{RunStats, TypeStats, Workload};
use super::BenchArgs;

/// Percentiles shown everywhere.
const PERCENTILES: [(f64, &str); 4] =
    [(50.0, "p50"), (90.0, "p90"), (99.0, "p99"), (99.9, "p99.9")];

fn ms(us: f64) -> f64 {
    us / 1000.0
}

/// Derived numbers for one row.
struct Row {
    ops: f64,
    hits: f64,
    misses: f64,
    avg: f64,
    pct: [f64; 4],
    max: f64,
    kbs: f64,
}

fn row(t: &TypeStats, secs: f64) -> Row {
    let secs = secs.max(1e-9);
    let h = &t.hist;
    let has = !h.is_empty();
    Row {
        ops: t.count as f64 / secs,
        hits: t.hits as f64 / secs,
        misses: t.misses as f64 / secs,
        avg: if has { ms(h.mean()) } else { 0.0 },
        pct: PERCENTILES.map(|(p, _)| {
            if has {
                ms(h.value_at_percentile(p) as f64)
            } else {
                0.0
            }
        }),
        max: if has { ms(h.max() as f64) } else { 0.0 },
        kbs: t.bytes as f64 / 1024.0 / secs,
    }
}

/// memtier's final table (latencies in milliseconds).
pub fn table(s: &RunStats) -> String {
    let secs = s.duration.as_secs_f64();
    let mut out = String::new();
    let width = 6 + 13 * 3 + 16 * 6 + 13;
    let _ = writeln!(out, "ALL STATS\n{}", "=".repeat(width));
    let _ = writeln!(
        out,
        "{:<6}{:>13}{:>13}{:>13}{:>16}{:>16}{:>16}{:>16}{:>16}{:>16}{:>13}",
        "Type",
        "Ops/sec",
        "Hits/sec",
        "Misses/sec",
        "Avg. Latency",
        "p50 Latency",
        "p90 Latency",
        "p99 Latency",
        "p99.9 Latency",
        "Max Latency",
        "KB/sec"
    );
    let _ = writeln!(out, "{}", "-".repeat(width));
    let totals = s.totals();
    for (name, t, hits) in [
        ("Sets", &s.sets, false),
        ("Gets", &s.gets, true),
        ("Totals", &totals, true),
    ] {
        let r = row(t, secs);
        let (h, m) = if hits {
            (format!("{:.2}", r.hits), format!("{:.2}", r.misses))
        } else {
            ("---".into(), "---".into())
        };
        let _ = writeln!(
            out,
            "{:<6}{:>13.2}{:>13}{:>13}{:>16.5}{:>16.5}{:>16.5}{:>16.5}{:>16.5}{:>16.5}{:>13.2}",
            name, r.ops, h, m, r.avg, r.pct[0], r.pct[1], r.pct[2], r.pct[3], r.max, r.kbs
        );
    }
    let errors = totals.errors;
    if errors > 0 {
        let _ = writeln!(out, "{errors} error replies");
    }
    out
}

fn type_json(t: &TypeStats, secs: f64) -> Value {
    let r = row(t, secs);
    let mut pct = serde_json::Map::new();
    for ((p, _), v) in PERCENTILES.iter().zip(r.pct) {
        pct.insert(format!("p{p:.2}"), json!(v));
    }
    json!({
        "Count": t.count,
        "Hits": t.hits,
        "Misses": t.misses,
        "Errors": t.errors,
        "Ops/sec": r.ops,
        "Hits/sec": r.hits,
        "Misses/sec": r.misses,
        "Average Latency": r.avg,
        "Min Latency": if t.hist.is_empty() { 0.0 } else { ms(t.hist.min() as f64) },
        "Max Latency": r.max,
        "KB/sec": r.kbs,
        "Percentile Latencies": pct,
    })
}

/// The "ALL STATS" object of the JSON report (memtier's names; latencies
/// in milliseconds; Count/Hits/Misses/Errors are absolute numbers).
pub fn stats_json(s: &RunStats) -> Value {
    let secs = s.duration.as_secs_f64();
    json!({
        "Sets": type_json(&s.sets, secs),
        "Gets": type_json(&s.gets, secs),
        "Totals": type_json(&s.totals(), secs),
        "Unsent": s.unsent,
        "Runtime": {
            "Start time": s.start_ms,
            "Finish time": s.end_ms,
            "Total duration": s.duration.as_millis() as u64,
        },
    })
}

/// The "configuration" object of the JSON report.
pub fn config_json(a: &BenchArgs, w: &Workload) -> Value {
    json!({
        "server": a.server,
        "port": w.addr.port(),
        "protocol": w.proto.name(),
        "threads": w.threads,
        "clients": w.clients,
        "requests": w.requests,
        "test_time": w.test_time.map(|t| t.as_secs()),
        "ratio": a.ratio,
        "pipeline": w.pipeline,
        "data_size": a.data_size,
        "data_size_range": a.data_size_range,
        "key_pattern": a.key_pattern,
        "key_minimum": w.space.min,
        "key_maximum": w.space.max,
        "key_zipf_exp": w.space.zipf_exp,
        "key_prefix": w.prefix,
        "rate": w.rate,
        "seed": w.seed,
    })
}

/// CSV: one row per target and type.
pub fn csv(rows: &[(&str, &RunStats)]) -> String {
    let mut out = String::from(
        "target,type,count,errors,ops_per_sec,hits_per_sec,misses_per_sec,avg_ms,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,kb_per_sec\n",
    );
    for (label, s) in rows {
        let secs = s.duration.as_secs_f64();
        let totals = s.totals();
        for (name, t) in [("Sets", &s.sets), ("Gets", &s.gets), ("Totals", &totals)] {
            let r = row(t, secs);
            let _ = writeln!(
                out,
                "\"{}\",{name},{},{},{:.2},{:.2},{:.2},{:.5},{:.5},{:.5},{:.5},{:.5},{:.5},{:.2}",
                label.replace('"', "\"\""),
                t.count,
                t.errors,
                r.ops,
                r.hits,
                r.misses,
                r.avg,
                r.pct[0],
                r.pct[1],
                r.pct[2],
                r.pct[3],
                r.max,
                r.kbs
            );
        }
    }
    out
}

/// One `--compare` target over all its rounds.
pub struct TargetSummary {
    /// The target's label (see [`super::Target::label`]).
    pub label: String,
    /// Address, protocol and server version.
    pub detail: String,
    /// Total ops/sec of each round, in run order.
    pub rounds: Vec<f64>,
    /// Median of `rounds`.
    pub median_ops: f64,
    /// Every round's counts and latencies together (duration summed).
    pub merged: RunStats,
}

impl TargetSummary {
    /// Summarises the rounds run against one target (at least one).
    pub fn new(label: &str, detail: &str, runs: &[RunStats]) -> TargetSummary {
        let rounds: Vec<f64> = runs
            .iter()
            .map(|r| r.totals().count as f64 / r.duration.as_secs_f64().max(1e-9))
            .collect();
        let mut sorted = rounds.clone();
        sorted.sort_by(f64::total_cmp);
        let median_ops = match sorted.len() {
            0 => 0.0,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        let mut merged = runs[0].clone();
        for r in &runs[1..] {
            merged.sets.merge(&r.sets);
            merged.gets.merge(&r.gets);
            merged.unsent += r.unsent;
            merged.duration += r.duration;
            merged.end_ms = r.end_ms;
        }
        TargetSummary {
            label: label.to_string(),
            detail: detail.to_string(),
            rounds,
            median_ops,
            merged,
        }
    }

    fn latencies(&self) -> [f64; 5] {
        let r = row(&self.merged.totals(), 1.0);
        [r.pct[0], r.pct[1], r.pct[2], r.pct[3], r.max]
    }

    /// This target in the JSON report.
    pub fn json(&self) -> Value {
        json!({
            "target": self.label,
            "detail": self.detail,
            "rounds ops/sec": self.rounds,
            "median ops/sec": self.median_ops,
            "ALL STATS": stats_json(&self.merged),
        })
    }
}

/// The `--compare` summary printed on stdout.
pub fn compare_table(s: &[TargetSummary]) -> String {
    let mut out =
        String::from("\nCOMPARISON (median ops/sec over rounds; latency over all rounds, msec)\n");
    let lw = s
        .iter()
        .map(|t| t.label.chars().count() + 2)
        .fold(32, usize::max);
    let _ = writeln!(
        out,
        "{:<lw$}{:>14}{:>14}{:>14}{:>12}{:>12}{:>12}{:>12}{:>12}",
        "Target", "Median ops/s", "Min ops/s", "Max ops/s", "p50", "p90", "p99", "p99.9", "max"
    );
    for t in s {
        let l = t.latencies();
        let min = t.rounds.iter().copied().fold(f64::INFINITY, f64::min);
        let max = t.rounds.iter().copied().fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "{:<lw$}{:>14.2}{:>14.2}{:>14.2}{:>12.3}{:>12.3}{:>12.3}{:>12.3}{:>12.3}",
            t.label, t.median_ops, min, max, l[0], l[1], l[2], l[3], l[4]
        );
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const COLORS: [&str; 6] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1",
];

/// Horizontal bars of median throughput with min-max whiskers.
fn throughput_svg(s: &[TargetSummary]) -> String {
    let longest = s.iter().map(|t| t.label.chars().count()).max().unwrap_or(0);
    let label_w = (longest as f64 * 7.0 + 16.0).max(220.0);
    let (w, bar_h, gap) = (label_w + 540.0, 26.0, 14.0);
    let h = 20.0 + s.len() as f64 * (bar_h + gap);
    let top = s
        .iter()
        .flat_map(|t| t.rounds.iter().copied())
        .fold(1.0, f64::max);
    let scale = (w - label_w - 90.0) / top;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    for (i, t) in s.iter().enumerate() {
        let y = 10.0 + i as f64 * (bar_h + gap);
        let min = t.rounds.iter().copied().fold(f64::INFINITY, f64::min);
        let max = t.rounds.iter().copied().fold(0.0, f64::max);
        let c = COLORS[i % COLORS.len()];
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{label_w}" y="{y}" width="{:.1}" height="{bar_h}" fill="{c}"/><line x1="{:.1}" x2="{:.1}" y1="{}" y2="{}" stroke="#222"/><text x="{:.1}" y="{}">{:.0}</text>"##,
            label_w - 8.0,
            y + bar_h * 0.65,
            esc(&t.label),
            t.median_ops * scale,
            label_w + min * scale,
            label_w + max * scale,
            y + bar_h / 2.0,
            y + bar_h / 2.0,
            label_w + max * scale + 6.0,
            y + bar_h * 0.65,
            t.median_ops
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Grouped bars: p50, p90, p99, p99.9 and max latency per target, on a
/// log scale so tails and medians fit one chart.
fn latency_svg(s: &[TargetSummary]) -> String {
    let names = ["p50", "p90", "p99", "p99.9", "max"];
    let (w, left, bottom) = (760.0, 60.0, 40.0);
    let plot_h = 260.0;
    // a legend line per target under the chart
    let h = 20.0 + plot_h + bottom + 18.0 * s.len() as f64;
    let all: Vec<f64> = s
        .iter()
        .flat_map(|t| t.latencies())
        .filter(|v| *v > 0.0)
        .collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min).max(0.001);
    let hi = all.iter().copied().fold(0.0, f64::max).max(lo * 10.0);
    let (llo, lhi) = (lo.log10().floor(), hi.log10().ceil());
    let y_of = |v: f64| {
        let v = v.max(10f64.powf(llo));
        20.0 + plot_h - (v.log10() - llo) / (lhi - llo) * plot_h
    };
    let group_w = (w - left - 10.0) / names.len() as f64;
    let bar_w = (group_w - 16.0) / s.len().max(1) as f64;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let mut e = llo;
    while e <= lhi {
        let v = 10f64.powf(e);
        let y = y_of(v);
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{v} ms</text>"##,
            w - 10.0,
            left - 4.0,
            y + 4.0
        );
        e += 1.0;
    }
    for (g, name) in names.iter().enumerate() {
        let gx = left + g as f64 * group_w + 8.0;
        for (i, t) in s.iter().enumerate() {
            let v = t.latencies()[g];
            let y = y_of(v);
            let _ = write!(
                svg,
                r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {name} {v:.3} ms</title></rect>"#,
                gx + i as f64 * bar_w,
                bar_w - 2.0,
                (20.0 + plot_h - y).max(0.0),
                COLORS[i % COLORS.len()],
                esc(&t.label)
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{name}</text>"#,
            gx + (group_w - 16.0) / 2.0,
            20.0 + plot_h + 20.0
        );
    }
    for (i, t) in s.iter().enumerate() {
        let y = 20.0 + plot_h + bottom + 18.0 * i as f64;
        let _ = write!(
            svg,
            r#"<rect x="{left}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{}" y="{:.1}">{}</text>"#,
            y - 9.0,
            COLORS[i % COLORS.len()],
            left + 16.0,
            y,
            esc(&t.label)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The self-contained `--compare` report; `command` is the command line
/// that produced it, shown on the page.
pub fn html(a: &BenchArgs, w: &Workload, s: &[TargetSummary], command: &str) -> String {
    let mut rows = String::new();
    for (i, t) in s.iter().enumerate() {
        let l = t.latencies();
        let rounds: Vec<String> = t.rounds.iter().map(|r| format!("{r:.0}")).collect();
        let _ = write!(
            rows,
            r#"<tr><td><span class="sw" style="background:{}"></span>{}</td><td>{}</td><td>{:.0}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td></tr>"#,
            COLORS[i % COLORS.len()],
            esc(&t.label),
            esc(&t.detail),
            t.median_ops,
            rounds.join(" / "),
            l[0],
            l[1],
            l[2],
            l[3],
            l[4],
            t.merged.totals().errors
        );
    }
    let load = match (w.requests, w.test_time, w.rate) {
        (_, _, Some(r)) => format!("open loop at {r} req/s"),
        (Some(n), _, _) => format!("{n} requests per connection"),
        (_, Some(t), _) => format!("{} s per run", t.as_secs()),
        _ => String::new(),
    };
    format!(
        r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>magpie bench comparison</title>
<style>body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}}td:first-child,th:first-child,td:nth-child(2),th:nth-child(2){{text-align:left}}pre{{background:#f4f4f4;padding:8px;white-space:pre-wrap}}.sw{{display:inline-block;width:10px;height:10px;margin-right:6px}}</style>
</head><body>
<h1>magpie bench comparison</h1>
<p>Made by:</p>
<pre>{command}</pre>
<p>{threads} threads &times; {clients} connections, pipeline {pipeline}, ratio {ratio} (SET:GET), key pattern {pattern} over {kmin}..{kmax}, values {dmin}-{dmax} bytes, {load}; {rounds} rounds in alternating order.</p>
<h2>Throughput (median ops/sec; whisker = min..max over rounds)</h2>
{tp}
<h2>Latency percentiles (all rounds, log scale)</h2>
{lat}
<h2>Numbers</h2>
<table><tr><th>Target</th><th>Address, server</th><th>Median ops/s</th><th>Rounds ops/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th><th>errors</th></tr>
{rows}</table>
</body></html>
"#,
        command = esc(command),
        threads = w.threads,
        clients = w.clients,
        pipeline = w.pipeline,
        ratio = esc(&a.ratio),
        pattern = esc(&a.key_pattern),
        kmin = w.space.min,
        kmax = w.space.max,
        dmin = w.sizes.0,
        dmax = w.sizes.1,
        load = esc(&load),
        rounds = a.compare_rounds,
        tp = throughput_svg(s),
        lat = latency_svg(s),
    )
}
