//! Building real C programs from the sources crates.io crates bundle:
//! finding a dependency's package directory (`cargo metadata`, or the
//! dep-info files next to the running executable), compiling C sources to
//! objects in parallel, linking them natively, and the Lua 5.4 and bzip2
//! builds themselves. Shared by `tests/run_real_programs.rs` and
//! `benches/object_linker.rs` (each includes this file as `mod build`).
//!
//! Environment knobs:
//! * `LAZYRT_REAL_PROGRAMS_CFLAGS="-fPIC ..."`: extra `cc` flags.
//! * `LAZYRT_REAL_PROGRAMS_KEEP=1`: keep the temporary directories.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

/// Flags every object is compiled with (before the program's own).
pub const CFLAGS: &[&str] = &["-c", "-O2", "-ffunction-sections", "-fdata-sections"];

/// Parallel `cc` jobs (the CI machine has 2 cores).
const COMPILE_JOBS: usize = 2;

fn keep_temp() -> bool {
    std::env::var_os("LAZYRT_REAL_PROGRAMS_KEEP").is_some_and(|v| !v.is_empty() && v != "0")
}

fn extra_cflags() -> Vec<String> {
    std::env::var("LAZYRT_REAL_PROGRAMS_CFLAGS")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Whether `cc` works; if not, says so loudly (the caller skips).
pub fn have_cc(test: &str) -> bool {
    let ok = Command::new("cc")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "\n**********************************************************************\n\
             * SKIPPED {test}: no working `cc` on PATH, so no C program to run. *\n\
             **********************************************************************\n"
        );
    }
    ok
}

// --- Finding the bundled sources -----------------------------------------

/// The package directory of dependency `name` (e.g. `lua-src`) of this
/// crate: from `cargo metadata`, or, where that cannot work offline, from
/// the dep-info files cargo left next to the running executable. A missing
/// crate fails the caller.
pub fn crate_dir(name: &str) -> PathBuf {
    let from_metadata = match cargo_metadata() {
        Ok(metadata) => match package_dir_in_metadata(&metadata, name) {
            Some(dir) => return dir,
            None => format!("`cargo metadata` does not list {name}"),
        },
        Err(e) => e,
    };
    match package_dir_from_dep_info(name) {
        Ok(dir) => {
            eprintln!(
                "{name}: {from_metadata}; found {} from dep-info",
                dir.display()
            );
            dir
        }
        Err(e) => panic!(
            "the sources of {name} (a dev-dependency of demo) were not found:\n  \
             {from_metadata}\n  {e}"
        ),
    }
}

/// `cargo metadata` of this workspace, run once: offline (the build fetched
/// the packages) and filtered to the host platform (cargo only fetches the
/// packages the build needs; unfiltered it wants Windows crates too). It
/// still fails offline after building only this package on a machine that
/// never built the whole workspace, hence the dep-info fallback.
fn cargo_metadata() -> Result<serde_json::Value, String> {
    static METADATA: Mutex<Option<Result<serde_json::Value, String>>> = Mutex::new(None);
    let mut guard = METADATA.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .get_or_insert_with(|| {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
            let out = Command::new(&cargo)
                .args(["metadata", "--format-version", "1", "--offline"])
                .args(["--filter-platform", "x86_64-unknown-linux-gnu"])
                .arg("--manifest-path")
                .arg(&manifest)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("running {cargo:?} metadata: {e}"))?;
            if !out.status.success() {
                let stderr = String::from_utf8_lossy(&out.stderr);
                return Err(format!(
                    "`cargo metadata --offline` failed ({}): {}",
                    out.status,
                    stderr.trim()
                ));
            }
            serde_json::from_slice(&out.stdout)
                .map_err(|e| format!("`cargo metadata` printed invalid JSON: {e}"))
        })
        .clone()
}

fn package_dir_in_metadata(metadata: &serde_json::Value, name: &str) -> Option<PathBuf> {
    let package = metadata["packages"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)?;
    let manifest = Path::new(package["manifest_path"].as_str()?);
    manifest
        .is_file()
        .then(|| manifest.parent().unwrap().to_path_buf())
}

/// The directory of package `name` from the newest `LIB-HASH.d` dep-info
/// file in the running executable's directory (`target/PROFILE/deps`): its
/// source paths are absolute, and the package directory is the nearest
/// ancestor of the crate root with a Cargo.toml.
fn package_dir_from_dep_info(name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let deps = exe.parent().ok_or("the executable has no directory")?;
    let prefix = format!("{}-", name.replace('-', "_"));
    let newest = std::fs::read_dir(deps)
        .map_err(|e| format!("reading {}: {e}", deps.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| {
            let file = e.file_name();
            let file = file.to_string_lossy();
            file.starts_with(&prefix) && file.ends_with(".d")
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, path)| path)
        .ok_or_else(|| format!("no {prefix}*.d dep-info file in {}", deps.display()))?;
    let text = std::fs::read_to_string(&newest)
        .map_err(|e| format!("reading {}: {e}", newest.display()))?;
    // Lines "SOURCE:" (a target with no dependencies) name the sources.
    let root = text
        .lines()
        .filter_map(|line| line.strip_suffix(':'))
        .map(|path| PathBuf::from(path.replace("\\ ", " ")))
        .find(|path| path.is_absolute() && path.extension().is_some_and(|e| e == "rs"))
        .ok_or_else(|| format!("no source file in {}", newest.display()))?;
    root.ancestors()
        .skip(1)
        .find(|dir| dir.join("Cargo.toml").is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("no Cargo.toml above {}", root.display()))
}

/// The one subdirectory of `dir` whose name starts with `prefix` (e.g. the
/// `lua-5.4.9` of lua-src), so a patch release of the crate still works.
pub fn subdir(dir: &Path, prefix: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix) && e.path().is_dir())
        .map(|e| e.path())
        .collect();
    found.sort();
    assert!(
        found.len() == 1,
        "expected one {prefix}* directory in {}, found {found:?}",
        dir.display()
    );
    found.pop().unwrap()
}

/// `rel` in the demo crate's directory (e.g. `benches/c_programs`).
pub fn this_dir(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

// --- Building ------------------------------------------------------------

/// A fresh temporary directory, removed on drop unless the caller panicked
/// (or `LAZYRT_REAL_PROGRAMS_KEEP` is set), to look at the objects.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("lazyrt-real-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() || keep_temp() {
            eprintln!("kept {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A program compiled to objects and linked natively.
pub struct Program {
    /// Objects, the one with `main` first.
    pub objects: Vec<PathBuf>,
    /// The natively linked executable.
    pub native: PathBuf,
    /// `-l` libraries (`m` for libm).
    pub libs: Vec<&'static str>,
}

/// Compiles `sources` (the one with `main` first) into `dir` with `flags`,
/// `COMPILE_JOBS` at a time, and links them natively with `libs`.
pub fn build(
    dir: &Path,
    name: &str,
    sources: &[PathBuf],
    flags: &[String],
    libs: &[&'static str],
) -> Program {
    let started = Instant::now();
    let objects: Vec<PathBuf> = sources
        .iter()
        .map(|s| dir.join(s.file_stem().unwrap()).with_extension("o"))
        .collect();
    let mut unique = objects.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        objects.len(),
        "two sources with one stem: {sources:?}"
    );

    let next = Mutex::new(0usize);
    let failures = Mutex::new(String::new());
    let extra = extra_cflags();
    std::thread::scope(|scope| {
        for _ in 0..COMPILE_JOBS {
            scope.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap();
                        *n += 1;
                        *n - 1
                    };
                    let Some(source) = sources.get(i) else { break };
                    let out = Command::new("cc")
                        .args(CFLAGS)
                        .args(flags)
                        .args(&extra)
                        .arg(source)
                        .arg("-o")
                        .arg(&objects[i])
                        .stdin(Stdio::null())
                        .output()
                        .unwrap_or_else(|e| panic!("running cc: {e}"));
                    if !out.status.success() {
                        let mut f = failures.lock().unwrap();
                        let _ = writeln!(
                            f,
                            "cc {} failed ({}):\n{}",
                            source.display(),
                            out.status,
                            String::from_utf8_lossy(&out.stderr)
                        );
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{failures}");

    let native = dir.join(format!("{name}-native"));
    // Objects built without -fPIC/-fPIE link into a non-PIE executable.
    let non_pic = flags
        .iter()
        .chain(&extra)
        .any(|f| f == "-fno-pic" || f == "-fno-pie");
    let out = Command::new("cc")
        .args(non_pic.then_some("-no-pie"))
        .arg("-o")
        .arg(&native)
        .args(&objects)
        .args(libs.iter().map(|l| format!("-l{l}")))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "native link of {name} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{name}: {} objects compiled and linked in {:.1} s (cc {} {} {})",
        objects.len(),
        started.elapsed().as_secs_f64(),
        CFLAGS.join(" "),
        flags.join(" "),
        extra.join(" "),
    );
    Program {
        objects,
        native,
        libs: libs.to_vec(),
    }
}

// --- bzip2 ---------------------------------------------------------------

/// bzip2 1.0.8's sources and test vectors (the `bzip2-sys` crate's
/// `bzip2-1.0.8/`).
pub fn bzip2_src() -> PathBuf {
    subdir(&crate_dir("bzip2-sys"), "bzip2-1.0.")
}

/// bzip2 (`bzip2.c`'s main and libbz2) from `src` ([`bzip2_src`]), its
/// objects in `tmp/obj`, compiled and linked natively.
pub fn build_bzip2(src: &Path, tmp: &Path) -> Program {
    let objects_dir = tmp.join("obj");
    std::fs::create_dir_all(&objects_dir).unwrap();
    // bzip2.c (main) first, then libbz2's objects as in the Makefile.
    let sources: Vec<PathBuf> = [
        "bzip2",
        "blocksort",
        "huffman",
        "crctable",
        "randtable",
        "compress",
        "decompress",
        "bzlib",
    ]
    .iter()
    .map(|f| src.join(format!("{f}.c")))
    .collect();
    // The Makefile's CFLAGS less -Wall -Winline -g.
    let flags = vec!["-D_FILE_OFFSET_BITS=64".to_owned(), "-w".to_owned()];
    build(&objects_dir, "bzip2", &sources, &flags, &[])
}

// --- Lua -----------------------------------------------------------------

/// Lua 5.4's sources (from lua-src) plus the driver
/// `benches/c_programs/lua_main.c` (first), their objects in `tmp/obj`,
/// compiled and linked natively with libm.
pub fn build_lua(tmp: &Path) -> Program {
    let src = subdir(&crate_dir("lua-src"), "lua-5.4");
    let objects_dir = tmp.join("obj");
    std::fs::create_dir_all(&objects_dir).unwrap();
    let mut sources = vec![this_dir("benches/c_programs/lua_main.c")];
    let mut library: Vec<PathBuf> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        // The stand-alone interpreter and compiler, if a release has them.
        .filter(|p| {
            !matches!(
                p.file_stem().and_then(|s| s.to_str()),
                Some("lua" | "luac" | "onelua")
            )
        })
        .collect();
    library.sort();
    assert!(
        library.len() >= 30,
        "Lua sources missing from {}: {library:?}",
        src.display()
    );
    sources.extend(library);
    // As Lua's own `make linux` (less readline, which only lua.c uses).
    let flags = vec![
        "-DLUA_COMPAT_5_3".to_owned(),
        "-DLUA_USE_LINUX".to_owned(),
        "-w".to_owned(),
        format!("-I{}", src.display()),
    ];
    build(&objects_dir, "lua", &sources, &flags, &["m"])
}
