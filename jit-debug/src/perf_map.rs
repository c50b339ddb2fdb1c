//! `/tmp/perf-PID.map`: the text file `perf report` reads to name
//! addresses in anonymous executable memory.
//!
//! ```text
//! 7f3a12c01000 10 compute$stub
//! 7f3a12c01010 20 compute$reentry
//! <start, hex> <size, hex> <name up to the end of the line>
//! ```
//!
//! Opened `O_APPEND | O_CREAT | O_NOFOLLOW` (other JITs in the process may
//! append too; a symlink planted in `/tmp` is refused); each unit's lines
//! go out in one `write`, so lines from different writers never
//! interleave. A file left by an earlier process with the same pid (last
//! written before this process started) is emptied first. There is no
//! removal record: when code memory is reused, an address has several
//! lines (perf picks one).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::{CodeUnit, DebugError};

/// The perf map of this process.
pub(crate) struct PerfMap {
    file: File,
    path: PathBuf,
}

/// `/tmp/perf-PID.map`, where perf looks.
pub(crate) fn default_path() -> PathBuf {
    PathBuf::from(format!("/tmp/perf-{}.map", std::process::id()))
}

/// When this process started (`/proc/self/stat` field 22, in clock ticks
/// after boot, plus `/proc/stat`'s boot time), to the second.
fn process_start() -> Option<SystemTime> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) in parens.
    let after = &stat[stat.rfind(')')? + 2..];
    let ticks: u64 = after.split(' ').nth(19)?.parse().ok()?;
    let boot: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(boot + ticks / hz.max(1)))
}

/// Empties `file` if an earlier process with this pid left it: last
/// written more than a second before this process started (perf files are
/// named by pid, and pids are reused). A file another JIT of this process
/// wrote is kept.
pub(crate) fn empty_if_stale(file: &File) -> std::io::Result<()> {
    let meta = file.metadata()?;
    let (Ok(modified), Some(started)) = (meta.modified(), process_start()) else {
        return Ok(());
    };
    if meta.len() > 0 && modified + Duration::from_secs(1) < started {
        file.set_len(0)?;
    }
    Ok(())
}

/// `name` with line breaks replaced, so one symbol stays one line.
fn sanitize(name: &str) -> std::borrow::Cow<'_, str> {
    if name.contains(['\n', '\r']) {
        name.replace(['\n', '\r'], "_").into()
    } else {
        name.into()
    }
}

/// The lines for `unit`, in symbol order.
pub(crate) fn format_unit(unit: &CodeUnit) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(unit.symbols.len() * 48);
    for s in &unit.symbols {
        // Writing into a String cannot fail.
        let _ = writeln!(
            text,
            "{:x} {:x} {}",
            s.address.value(),
            s.size,
            sanitize(&s.name)
        );
    }
    text
}

impl PerfMap {
    /// Opens (creating if needed) the map at `path` for appending.
    pub(crate) fn open(path: &Path) -> Result<Self, DebugError> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|source| DebugError::Io {
                what: "opening the perf map",
                path: path.to_path_buf(),
                source,
            })?;
        empty_if_stale(&file).map_err(|source| DebugError::Io {
            what: "emptying the stale perf map",
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Where the map is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line per symbol of `unit`, in one write; returns the
    /// number of lines.
    pub(crate) fn write_unit(&mut self, unit: &CodeUnit) -> Result<u64, DebugError> {
        if unit.symbols.is_empty() {
            return Ok(0);
        }
        let text = format_unit(unit);
        // One `write` call for the whole unit (a regular file in append
        // mode takes it whole; `write_all` only loops on a short write).
        self.file
            .write_all(text.as_bytes())
            .map_err(|source| DebugError::Io {
                what: "writing the perf map",
                path: self.path.clone(),
                source,
            })?;
        Ok(unit.symbols.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_file_an_earlier_process_left_is_emptied_and_a_fresh_one_kept() {
        let dir = crate::test_support::TempDir::new("stale");
        let path = dir.path().join("perf-1.map");
        std::fs::write(&path, "1000 10 old\n").unwrap();
        let file = OpenOptions::new().append(true).open(&path).unwrap();
        empty_if_stale(&file).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1000 10 old\n");
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000))
            .unwrap();
        empty_if_stale(&file).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    use super::*;
    use crate::{CodeKind, CodeSymbol};
    use lazyrt_runtime::ExecutorAddr;

    #[test]
    fn lines_are_hex_and_sanitized() {
        let unit = CodeUnit {
            symbols: vec![
                CodeSymbol {
                    name: "f$stub".into(),
                    kind: CodeKind::Stub,
                    address: ExecutorAddr::new(0x7f00_0000_1000),
                    size: 0x10,
                },
                CodeSymbol {
                    name: "evil\nname\r".into(),
                    kind: CodeKind::Function,
                    address: ExecutorAddr::new(0x7f00_0000_1010),
                    size: 0x123,
                },
            ],
            eh_frame: None,
            lines: Vec::new(),
        };
        let dir = crate::test_support::TempDir::new("perfmap");
        let path = dir.path().join("perf-test.map");
        let mut map = PerfMap::open(&path).expect("open");
        assert_eq!(map.write_unit(&unit).expect("write"), 2);
        assert_eq!(map.write_unit(&CodeUnit::default()).expect("write"), 0);
        drop(map);
        // Appends, never truncates.
        let mut map = PerfMap::open(&path).expect("reopen");
        map.write_unit(&unit).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        let once = "7f0000001000 10 f$stub\n7f0000001010 123 evil_name_\n";
        assert_eq!(text, format!("{once}{once}"));
    }
}
