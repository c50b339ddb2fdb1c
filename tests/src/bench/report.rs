//! Reporting: figures with targets and anchors, printed as a table and
//! written as JSON.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Which side of a target is good.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Pass if `value <= limit`.
    AtMost(f64),
    /// Pass if `value >= limit`.
    AtLeast(f64),
}

impl Target {
    /// Whether `value` meets the target.
    pub fn met_by(self, value: f64) -> bool {
        match self {
            Target::AtMost(limit) => value <= limit,
            Target::AtLeast(limit) => value >= limit,
        }
    }
}

/// One reported figure. Built by [`Report::add`].
#[derive(Debug, Clone)]
pub struct Figure {
    /// JSON name, e.g. `steady_ratio_int_int`.
    pub name: String,
    /// The measured value.
    pub value: f64,
    /// Its unit, e.g. `ns`, `x`, `entries/s`, `B/entry`.
    pub unit: String,
    /// The target it is judged against (printed only).
    pub target: Option<Target>,
    /// What to compare with, e.g. `ORC 19: 1.50`.
    pub anchor: Option<String>,
}

impl Figure {
    /// Sets the target `value <= limit`.
    pub fn at_most(&mut self, limit: f64) -> &mut Self {
        self.target = Some(Target::AtMost(limit));
        self
    }

    /// Sets the target `value >= limit`.
    pub fn at_least(&mut self, limit: f64) -> &mut Self {
        self.target = Some(Target::AtLeast(limit));
        self
    }

    /// Sets the comparison anchor shown next to the value.
    pub fn anchor(&mut self, anchor: impl Into<String>) -> &mut Self {
        self.anchor = Some(anchor.into());
        self
    }
}

/// The figures of one bench, printed as a table and written as JSON.
#[derive(Debug, Clone)]
pub struct Report {
    bench: String,
    figures: Vec<Figure>,
    /// Latency distributions by name: quantiles in ns (see
    /// [`Report::distribution`]).
    distributions: Vec<(String, Vec<f64>)>,
}

/// How many quantiles a distribution keeps (enough to draw its CDF).
const DISTRIBUTION_POINTS: usize = 200;

impl Report {
    /// An empty report for the bench called `bench` (the JSON file's stem).
    pub fn new(bench: impl Into<String>) -> Self {
        Self {
            bench: bench.into(),
            figures: Vec::new(),
            distributions: Vec::new(),
        }
    }

    /// Records a latency distribution called `name` (e.g.
    /// `first_call_ns`, `glibc_plt_first_call_ns`) from its samples in ns:
    /// [`Report::write_json`] writes its quantiles (0 to 1 in 200 steps) to
    /// `<bench>.distributions.json` as `{"name": [q0, ..., q1], ...}`, for
    /// plotting CDFs side by side.
    pub fn distribution(&mut self, name: impl Into<String>, samples_ns: &[f64]) {
        let mut sorted: Vec<f64> = samples_ns
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        if sorted.is_empty() {
            return;
        }
        super::sort(&mut sorted);
        let quantiles = (0..DISTRIBUTION_POINTS)
            .map(|i| {
                super::percentile(&sorted, i as f64 / (DISTRIBUTION_POINTS - 1) as f64 * 100.0)
            })
            .collect();
        self.distributions.push((name.into(), quantiles));
    }

    /// The distributions recorded so far: (name, quantiles in ns).
    pub fn distributions(&self) -> &[(String, Vec<f64>)] {
        &self.distributions
    }

    /// Adds a figure; chain [`Figure::at_most`], [`Figure::at_least`],
    /// [`Figure::anchor`] on the result.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        value: f64,
        unit: impl Into<String>,
    ) -> &mut Figure {
        self.figures.push(Figure {
            name: name.into(),
            value,
            unit: unit.into(),
            target: None,
            anchor: None,
        });
        self.figures.last_mut().expect("just pushed")
    }

    /// The figures so far.
    pub fn figures(&self) -> &[Figure] {
        &self.figures
    }

    /// The table: one row per figure with its target, anchor and
    /// PASS / MISS (never fails the process).
    pub fn table(&self) -> String {
        let rows: Vec<[String; 6]> = self
            .figures
            .iter()
            .map(|f| {
                let (target, verdict) = match f.target {
                    Some(t @ Target::AtMost(limit)) => (
                        format!("<= {}", format_value(limit)),
                        if t.met_by(f.value) { "PASS" } else { "MISS" },
                    ),
                    Some(t @ Target::AtLeast(limit)) => (
                        format!(">= {}", format_value(limit)),
                        if t.met_by(f.value) { "PASS" } else { "MISS" },
                    ),
                    None => (String::new(), ""),
                };
                [
                    f.name.clone(),
                    format_value(f.value),
                    f.unit.clone(),
                    target,
                    f.anchor.clone().unwrap_or_default(),
                    verdict.to_string(),
                ]
            })
            .collect();
        let header = ["figure", "value", "unit", "target", "anchor", ""].map(String::from);
        let mut widths = [0usize; 6];
        for row in std::iter::once(&header).chain(&rows) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for (i, row) in std::iter::once(&header).chain(&rows).enumerate() {
            let line = format!(
                "{:<w0$}  {:>w1$}  {:<w2$}  {:<w3$}  {:<w4$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
                w4 = widths[4],
            );
            let _ = writeln!(out, "{}", line.trim_end());
            if i == 0 {
                let _ = writeln!(out, "{}", "-".repeat(widths.iter().sum::<usize>() + 14));
            }
        }
        out
    }

    /// Prints [`Report::table`] to stdout under a title line.
    pub fn print_table(&self) {
        println!("\n== lazyrt bench: {} ==", self.bench);
        print!("{}", self.table());
    }

    /// The JSON text: `[{"name": ..., "value": ..., "unit": ...}, ...]`
    /// (non-finite values become `null`), with `"at_most": limit` or
    /// `"at_least": limit` on figures that have a target (for
    /// `report.html`'s PASS / MISS).
    pub fn json(&self) -> String {
        let mut out = String::from("[\n");
        for (i, f) in self.figures.iter().enumerate() {
            let value = if f.value.is_finite() {
                format!("{}", f.value)
            } else {
                "null".to_string()
            };
            let _ = write!(
                out,
                "  {{\"name\": {}, \"value\": {}, \"unit\": {}",
                json_string(&f.name),
                value,
                json_string(&f.unit)
            );
            match f.target {
                Some(Target::AtMost(limit)) => {
                    let _ = write!(out, ", \"at_most\": {limit}");
                }
                Some(Target::AtLeast(limit)) => {
                    let _ = write!(out, ", \"at_least\": {limit}");
                }
                None => {}
            }
            out.push('}');
            out.push_str(if i + 1 < self.figures.len() {
                ",\n"
            } else {
                "\n"
            });
        }
        out.push_str("]\n");
        out
    }

    /// Writes [`Report::json`] to `<output_dir()>/<bench>.json`, creating the
    /// directory, and the distributions to `<bench>.distributions.json` (or
    /// removes that file if this report has none, so no earlier run's curves
    /// are drawn beside this run's figures); returns the JSON's path.
    pub fn write_json(&self) -> std::io::Result<PathBuf> {
        let dir = output_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.json", self.bench));
        std::fs::write(&path, self.json())?;
        let distributions = dir.join(format!("{}.distributions.json", self.bench));
        if self.distributions.is_empty() {
            // No stale curves from an earlier run next to this run's figures.
            match std::fs::remove_file(&distributions) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        } else {
            let mut out = String::from("{\n");
            for (i, (name, quantiles)) in self.distributions.iter().enumerate() {
                let values: Vec<String> = quantiles.iter().map(|q| format!("{q}")).collect();
                let _ = write!(out, "  {}: [{}]", json_string(name), values.join(", "));
                out.push_str(if i + 1 < self.distributions.len() {
                    ",\n"
                } else {
                    "\n"
                });
            }
            out.push_str("}\n");
            std::fs::write(distributions, out)?;
        }
        Ok(path)
    }
}

/// Four significant digits, without exponent for everyday magnitudes.
fn format_value(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let magnitude = v.abs();
    if magnitude >= 1e4 {
        format!("{v:.0}")
    } else if magnitude >= 100.0 {
        format!("{v:.1}")
    } else if magnitude >= 1.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Where bench JSON goes: `$CARGO_TARGET_DIR/lazyrt-bench` if that variable
/// is set (a relative value is taken relative to the workspace root), else
/// `<workspace root>/target/lazyrt-bench`. The workspace root is the nearest
/// ancestor of the current directory (then of this crate's source
/// directory) whose `Cargo.toml` has a `[workspace]` table.
pub fn output_dir() -> PathBuf {
    let root = workspace_root();
    let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            match (&root, dir.is_absolute()) {
                (Some(root), false) => root.join(dir),
                _ => dir,
            }
        }
        None => root
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
            .join("target"),
    };
    target.join("lazyrt-bench")
}

fn workspace_root() -> Option<PathBuf> {
    let is_root = |dir: &Path| {
        std::fs::read_to_string(dir.join("Cargo.toml"))
            .is_ok_and(|toml| toml.lines().any(|l| l.trim() == "[workspace]"))
    };
    let from_cwd = std::env::current_dir().ok();
    let from_crate = Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    [from_cwd, from_crate]
        .into_iter()
        .flatten()
        .find_map(|start| {
            start
                .ancestors()
                .find(|d| is_root(d))
                .map(Path::to_path_buf)
        })
}
