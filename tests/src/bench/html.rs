//! `report.html` and `first_calls.svg`: every bench's output in
//! [`output_dir`](super::output_dir) drawn in one self-contained page (no
//! network, no script).
//!
//! - A chart: the first-call latency distributions (every distribution whose
//!   name contains `first_call` in any `<bench>.distributions.json`) as CDFs
//!   on a log-scale x axis, also written alone as `first_calls.svg`.
//! - A table of every `*_vs_*` figure (ratios to an alternative measured in
//!   the same run) of any `<bench>.json`, with its target and PASS / MISS.
//!
//! Benches call [`write_report`] at the end of `main`, after
//! [`Report::write_json`](super::Report::write_json), so whichever runs last
//! writes the complete page.

use std::fmt::Write as _;
use std::path::PathBuf;

/// A parsed JSON value (just enough for the benches' own files).
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn num(&self) -> Option<f64> {
        match self {
            Json::Num(v) => Some(*v),
            _ => None,
        }
    }
    fn str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.s.get(self.i) == Some(&c)).then(|| self.i += 1)
    }
    fn value(&mut self) -> Option<Json> {
        self.ws();
        match *self.s.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut fields = Vec::new();
                if self.eat(b'}').is_some() {
                    return Some(Json::Obj(fields));
                }
                loop {
                    self.ws();
                    let Json::Str(key) = self.value()? else {
                        return None;
                    };
                    self.eat(b':')?;
                    fields.push((key, self.value()?));
                    if self.eat(b',').is_none() {
                        self.eat(b'}')?;
                        return Some(Json::Obj(fields));
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                if self.eat(b']').is_some() {
                    return Some(Json::Arr(items));
                }
                loop {
                    items.push(self.value()?);
                    if self.eat(b',').is_none() {
                        self.eat(b']')?;
                        return Some(Json::Arr(items));
                    }
                }
            }
            b'"' => {
                self.i += 1;
                let mut out = String::new();
                loop {
                    let c = *self.s.get(self.i)?;
                    self.i += 1;
                    match c {
                        b'"' => return Some(Json::Str(out)),
                        b'\\' => {
                            let e = *self.s.get(self.i)?;
                            self.i += 1;
                            match e {
                                b'n' => out.push('\n'),
                                b'r' => out.push('\r'),
                                b't' => out.push('\t'),
                                b'u' => {
                                    let hex = std::str::from_utf8(self.s.get(self.i..self.i + 4)?)
                                        .ok()?;
                                    self.i += 4;
                                    out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
                                }
                                other => out.push(other as char),
                            }
                        }
                        _ => {
                            // Copy the whole UTF-8 sequence.
                            let start = self.i - 1;
                            let len = match c {
                                0xf0.. => 4,
                                0xe0.. => 3,
                                0xc0.. => 2,
                                _ => 1,
                            };
                            self.i = start + len;
                            out.push_str(std::str::from_utf8(self.s.get(start..self.i)?).ok()?);
                        }
                    }
                }
            }
            b'n' => self.word("null", Json::Null),
            b't' => self.word("true", Json::Bool(true)),
            b'f' => self.word("false", Json::Bool(false)),
            _ => {
                let start = self.i;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'
                    )
                {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
                text.parse().ok().map(Json::Num)
            }
        }
    }
    fn word(&mut self, w: &str, v: Json) -> Option<Json> {
        self.s[self.i..].starts_with(w.as_bytes()).then(|| {
            self.i += w.len();
            v
        })
    }
}

fn parse(text: &str) -> Option<Json> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let v = p.value()?;
    p.ws();
    (p.i == p.s.len()).then_some(v)
}

/// A ratio figure read back from a bench's JSON.
#[derive(Debug, Clone)]
struct Ratio {
    bench: String,
    name: String,
    value: Option<f64>,
    at_most: Option<f64>,
    at_least: Option<f64>,
}

/// A distribution read back: bench, name, quantiles (ns).
type Distribution = (String, String, Vec<f64>);

fn read_outputs() -> (Vec<Distribution>, Vec<Ratio>) {
    let dir = super::output_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    files.sort();
    let mut dists = Vec::new();
    let mut ratios = Vec::new();
    for path in files {
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let Some(json) = std::fs::read_to_string(&path).ok().and_then(|t| parse(&t)) else {
            continue;
        };
        if let Some(bench) = file.strip_suffix(".distributions.json") {
            if let Json::Obj(fields) = json {
                for (name, v) in fields {
                    if let Json::Arr(items) = v {
                        let q: Vec<f64> = items.iter().filter_map(Json::num).collect();
                        if !q.is_empty() {
                            dists.push((bench.to_string(), name, q));
                        }
                    }
                }
            }
        } else if let Some(bench) = file.strip_suffix(".json") {
            let Json::Arr(figures) = json else { continue };
            for f in &figures {
                let Some(name) = f.get("name").and_then(Json::str) else {
                    continue;
                };
                if name.contains("_vs_") {
                    ratios.push(Ratio {
                        bench: bench.to_string(),
                        name: name.to_string(),
                        value: f.get("value").and_then(Json::num),
                        at_most: f.get("at_most").and_then(Json::num),
                        at_least: f.get("at_least").and_then(Json::num),
                    });
                }
            }
        }
    }
    (dists, ratios)
}

const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn ns_label(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{} s", v / 1e9),
        v if v >= 1e6 => format!("{} ms", v / 1e6),
        v if v >= 1e3 => format!("{} µs", v / 1e3),
        v => format!("{v} ns"),
    }
}

/// What a distribution is, for the chart's legend (the raw name for
/// unknown ones).
fn label(bench: &str, name: &str) -> String {
    match (bench, name) {
        ("runtime", "first_call_ns") => "lazyrt runtime".into(),
        (_, "manager_first_call_ns") => "lazyrt manager (reexports)".into(),
        (_, "glibc_plt_first_call_ns") => "glibc lazy PLT".into(),
        (_, "orc19_first_call_ns") => "LLVM 19 ORC (LazyCallThroughManager)".into(),
        (_, "orc22_first_call_ns") => "LLVM 22 ORC (LazyReexportsManager)".into(),
        _ => format!("{name} ({bench})"),
    }
}

/// Three significant digits: `187 ns`, `1.82 µs`, `2.14 ms`.
fn short_ns(v: f64) -> String {
    let (value, unit) = match v {
        v if v >= 1e6 => (v / 1e6, "ms"),
        v if v >= 1e3 => (v / 1e3, "µs"),
        v => (v, "ns"),
    };
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$} {unit}")
}

/// The CDFs of `dists` (bench, name, quantiles in ns) as one SVG.
fn cdf_svg(dists: &[Distribution]) -> String {
    let (w, h) = (1060.0, 520.0);
    let (left, right, top, bottom) = (70.0, 430.0, 40.0, 60.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let positive = dists.iter().flat_map(|d| d.2.iter()).filter(|v| **v > 0.0);
    let lo = positive.clone().fold(f64::INFINITY, |a, b| a.min(*b));
    let hi = positive.fold(0.0f64, |a, b| a.max(*b));
    let (d0, d1) = if lo.is_finite() && hi > 0.0 {
        (
            lo.log10().floor(),
            hi.log10().ceil().max(lo.log10().floor() + 1.0),
        )
    } else {
        (1.0, 4.0)
    };
    let x = |v: f64| left + (v.max(10f64.powf(d0)).log10() - d0) / (d1 - d0) * pw;
    let y = |p: f64| top + (1.0 - p) * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="22" font-size="15" font-weight="bold">First-call latency: CDF (log x; timer included)</text>"#
    );
    // Grid: decades and 2, 5 within; y every 0.1.
    let mut decade = d0;
    while decade <= d1 {
        for (m, major) in [(1.0, true), (2.0, false), (5.0, false)] {
            let v = m * 10f64.powf(decade);
            if v > 10f64.powf(d1) * 1.0001 {
                continue;
            }
            let gx = x(v);
            let _ = writeln!(
                s,
                r##"<line x1="{gx:.1}" y1="{top}" x2="{gx:.1}" y2="{:.1}" stroke="{}" />"##,
                top + ph,
                if major { "#bbb" } else { "#eee" }
            );
            if major {
                let _ = writeln!(
                    s,
                    r#"<text x="{gx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                    top + ph + 18.0,
                    ns_label(v)
                );
            }
        }
        decade += 1.0;
    }
    for i in 0..=10 {
        let p = f64::from(i) / 10.0;
        let gy = y(p);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{gy:.1}" x2="{:.1}" y2="{gy:.1}" stroke="{}" />"##,
            left + pw,
            if i % 5 == 0 { "#bbb" } else { "#eee" }
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{p:.1}</text>"#,
            left - 6.0,
            gy + 4.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">latency of one first call</text>"#,
        left + pw / 2.0,
        h - 16.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">fraction of first calls at most x</text>"#,
        top + ph / 2.0,
        top + ph / 2.0
    );
    for (i, (bench, name, q)) in dists.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let n = q.len().max(2) - 1;
        let points: Vec<String> = q
            .iter()
            .enumerate()
            .map(|(j, v)| format!("{:.1},{:.1}", x(*v), y(j as f64 / n as f64)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        let median = q[q.len() / 2];
        let ly = top + 10.0 + i as f64 * 20.0;
        let lx = left + pw + 20.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}: p50 {}</text>"#,
            lx + 22.0,
            lx + 28.0,
            ly + 4.0,
            escape(&label(bench, name)),
            short_ns(median)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Writes `report.html` and `first_calls.svg` into
/// [`output_dir`](super::output_dir) from every bench output there; returns
/// the page's path.
pub fn write_report() -> std::io::Result<PathBuf> {
    let dir = super::output_dir();
    std::fs::create_dir_all(&dir)?;
    let (dists, ratios) = read_outputs();
    let first_calls: Vec<Distribution> = dists
        .into_iter()
        .filter(|d| d.1.contains("first_call"))
        .collect();
    let svg = cdf_svg(&first_calls);
    std::fs::write(dir.join("first_calls.svg"), &svg)?;
    let mut page = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>lazyrt benchmarks</title>\n<style>\n\
         body { font-family: sans-serif; margin: 2em; }\n\
         table { border-collapse: collapse; }\n\
         td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }\n\
         td.num { text-align: right; font-variant-numeric: tabular-nums; }\n\
         .PASS { color: #080; font-weight: bold; } .MISS { color: #c00; font-weight: bold; }\n\
         </style>\n</head>\n<body>\n<h1>lazyrt benchmarks</h1>\n",
    );
    let _ = writeln!(
        page,
        "<p>From the files in <code>{}</code>. Ratios divide lazyrt's figure by the \
         alternative's, both measured in the same run on this machine (issue #16): \
         below 1 lazyrt is faster / smaller.</p>",
        escape(&dir.display().to_string())
    );
    let (cpu_model, cpus) = super::machine();
    let clock = super::Clock::calibrate();
    let _ = writeln!(
        page,
        "<p>Machine: {}, {cpus} CPUs online, timer overhead {:.1} ns and resolution \
         {:.1} ns (single-call latencies come in its steps), load average {}.</p>",
        escape(&cpu_model),
        clock.overhead_ns(),
        clock.resolution_ns(),
        match super::load_average() {
            Some([one, five, fifteen]) => format!("{one:.2} {five:.2} {fifteen:.2}"),
            None => "unknown".to_string(),
        }
    );
    page.push_str("<h2>First calls</h2>\n");
    if first_calls.is_empty() {
        page.push_str("<p>No first-call distributions yet (run <code>cargo bench</code>).</p>\n");
    } else {
        page.push_str(&svg);
        page.push_str(
            "<table>\n<tr><th>distribution</th><th>bench</th><th>p50</th><th>p90</th>\
             <th>p99</th><th>max</th></tr>\n",
        );
        for (bench, name, q) in &first_calls {
            let at = |p: f64| q[((q.len() - 1) as f64 * p).round() as usize];
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{:.1} ns</td>\
                 <td class=\"num\">{:.1} ns</td><td class=\"num\">{:.1} ns</td>\
                 <td class=\"num\">{:.1} ns</td></tr>",
                escape(name),
                escape(bench),
                at(0.5),
                at(0.9),
                at(0.99),
                at(1.0)
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("<h2>Ratios</h2>\n");
    if ratios.is_empty() {
        page.push_str("<p>No <code>*_vs_*</code> figures yet.</p>\n");
    } else {
        page.push_str(
            "<table>\n<tr><th>figure</th><th>bench</th><th>value</th><th>target</th>\
             <th></th></tr>\n",
        );
        for r in &ratios {
            let (target, verdict) = match (r.at_most, r.at_least, r.value) {
                (Some(l), _, Some(v)) => {
                    (format!("&lt;= {l}"), if v <= l { "PASS" } else { "MISS" })
                }
                (_, Some(l), Some(v)) => {
                    (format!("&gt;= {l}"), if v >= l { "PASS" } else { "MISS" })
                }
                (Some(l), _, None) => (format!("&lt;= {l}"), "MISS"),
                (_, Some(l), None) => (format!("&gt;= {l}"), "MISS"),
                _ => (String::new(), ""),
            };
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{target}</td>\
                 <td class=\"{verdict}\">{verdict}</td></tr>",
                escape(&r.name),
                escape(&r.bench),
                r.value.map_or("n/a".to_string(), |v| format!("{v:.4}")),
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("</body>\n</html>\n");
    let path = dir.join("report.html");
    std::fs::write(&path, page)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bench_json() {
        let v = parse(
            "[{\"name\": \"a_vs_b\", \"value\": 0.5, \"unit\": \"x\", \"at_most\": 1e0},\
             {\"name\": \"q\\u00e9\", \"value\": null, \"unit\": \"µs\"}]",
        )
        .expect("parses");
        let Json::Arr(items) = v else { panic!() };
        assert_eq!(items[0].get("at_most").and_then(Json::num), Some(1.0));
        assert_eq!(items[1].get("name").and_then(Json::str), Some("qé"));
        assert_eq!(items[1].get("value"), Some(&Json::Null));
        assert_eq!(items[1].get("unit").and_then(Json::str), Some("µs"));
        assert!(parse("[1,").is_none());
    }

    #[test]
    fn svg_draws_every_distribution() {
        let q: Vec<f64> = (1..=200).map(f64::from).collect();
        let svg = cdf_svg(&[
            ("a".into(), "x_first_call_ns".into(), q.clone()),
            ("b".into(), "y_first_call_ns".into(), q),
        ]);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }
}
