//! What the C-side tests share: the C compiler, when they cannot run, and
//! the library installed (with `install.sh`) into a scratch prefix that
//! `pkg-config` finds, as a C project would.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// How every C program of the tests is compiled: C11, every warning an
/// error.
pub const C_FLAGS: &[&str] = &[
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
    "-pthread",
    "-O1",
    "-g",
];

/// `$CC`, else `cc`.
pub fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

/// Why C programs cannot be built and run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    if std::env::var_os("LAZYRT_QEMU").is_some() {
        return Some("LAZYRT_QEMU: the C programs are built and run natively only".into());
    }
    if !cfg!(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )) {
        return Some("lazyrt runs on x86-64 and AArch64 Linux only".into());
    }
    if Command::new(cc()).arg("--version").output().is_err() {
        return Some(format!("no C compiler ({})", cc()));
    }
    None
}

/// The library installed once per test binary into
/// `<target tmp>/<prefix_name>` (test binaries may run at the same time:
/// each has its own prefix).
pub fn installed(prefix_name: &str) -> &'static Path {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let prefix = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(prefix_name);
        let _ = std::fs::remove_dir_all(&prefix);
        // The library was built next to this test binary.
        let built = std::env::current_exe()
            .expect("test binary")
            .parent()
            .expect("deps")
            .to_path_buf();
        let status = Command::new("bash")
            .arg(crate_dir().join("install.sh"))
            .arg("--prefix")
            .arg(&prefix)
            .arg("--from")
            .arg(built)
            .status()
            .expect("run install.sh");
        assert!(status.success(), "install.sh failed");
        prefix
    })
}

/// `pkg-config ARGS lazyrt` against the installed prefix, split into
/// arguments.
pub fn pkg_config(prefix: &Path, args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("lazyrt")
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .output()
        .expect("pkg-config (install the pkg-config package)");
    assert!(
        out.status.success(),
        "pkg-config {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Link arguments for the installed shared library, found at run time
/// through an rpath.
pub fn shared_link(prefix: &Path) -> Vec<String> {
    let mut link = pkg_config(prefix, &["--libs"]);
    link.push(format!("-Wl,-rpath,{}", prefix.join("lib").display()));
    link
}
