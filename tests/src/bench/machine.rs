//! What machine a bench ran on, for its header and report.html.

/// The CPU model (`model name` in /proc/cpuinfo, or the implementer and
/// part on AArch64) and the number of online CPUs.
pub fn machine() -> (String, usize) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        info.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let model = field("model name").unwrap_or_else(|| {
        match (field("CPU implementer"), field("CPU part")) {
            (Some(i), Some(p)) => format!("CPU implementer {i} part {p}"),
            _ => "unknown CPU".to_string(),
        }
    });
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    (model, usize::try_from(online).unwrap_or(0))
}
