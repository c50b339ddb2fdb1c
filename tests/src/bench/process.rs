//! Fresh processes: re-running the bench binary for a measurement, and
//! carrying a child's figures back.

use std::fmt::Write as _;

const CHILD_ENV: &str = "LAZYRT_BENCH_CHILD";

/// In a process started by [`in_fresh_process`]: its task string.
/// A bench's `main` checks this first and, if set, does only that task.
pub fn child_task() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Re-runs the current executable with [`child_task`] = `task` and returns
/// its stdout. For figures that need an untouched process (e.g. memory
/// growth of a runtime that reuses what earlier measurements freed).
pub fn in_fresh_process(task: &str) -> std::io::Result<String> {
    let output = std::process::Command::new(std::env::current_exe()?)
        .env(CHILD_ENV, task)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !output.status.success() {
        return Err(std::io::Error::other(format!(
            "bench child `{task}` failed: {}",
            output.status
        )));
    }
    String::from_utf8(output.stdout).map_err(std::io::Error::other)
}

/// A line `tag k1=v1 k2=v2 ...` for a child process to print and its
/// parent to read back with [`parse_fields`] (values are `f64`; keys must not
/// contain spaces or `=`).
pub fn fields_line(tag: &str, fields: &[(&str, f64)]) -> String {
    let mut line = String::from(tag);
    for (key, value) in fields {
        let _ = write!(line, " {key}={value}");
    }
    line
}

/// The fields of the first line of `output` that [`fields_line`] made with
/// `tag`; `None` if there is none or a field does not parse.
pub fn parse_fields(output: &str, tag: &str) -> Option<std::collections::HashMap<String, f64>> {
    let line = output
        .lines()
        .find(|l| l.split_whitespace().next() == Some(tag))?;
    line.split_whitespace()
        .skip(1)
        .map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The 1-, 5- and 15-minute load averages from `/proc/loadavg` (`None` where
/// that file does not exist). Worth printing next to figures that need idle
/// CPUs, such as multi-threaded speedups.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}
