//! LLVM ORC as a yardstick (issue #16): builds `tests/orc/orc_bench.cpp`
//! against each installed LLVM (`llvm-config-19`, `llvm-config-22`) at run
//! time, cached under `<output_dir()>/orc/`, and runs it.
//!
//! The program is compiled with `$CXX` (default `c++`), `llvm-config-XX
//! --cxxflags`, `--ldflags --link-shared --libs orcjit native` and an rpath
//! to LLVM's library directory; the binary's name carries a hash of the
//! source, the compiler command and the LLVM version, so an edit or an
//! upgrade rebuilds it. Versions whose build fails are reported and skipped.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::process::Command;

const SOURCE: &str = include_str!("../../orc/orc_bench.cpp");

/// The `llvm-config` programs looked for, newest API last.
pub const LLVM_CONFIGS: [(u32, &str); 2] = [(19, "llvm-config-19"), (22, "llvm-config-22")];

/// One built ORC reference program.
#[derive(Debug, Clone)]
pub struct OrcBench {
    /// LLVM's major version (19, 22).
    pub major: u32,
    /// `llvm-config --version`, e.g. `19.1.7`.
    pub version: String,
    /// Whether this LLVM has `LazyReexportsManager` (20+).
    pub has_lrm: bool,
    binary: PathBuf,
}

fn capture(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Builds (or finds cached) the ORC program for every installed LLVM of
/// [`LLVM_CONFIGS`], compiling in parallel. Returns those that built; prints
/// why others did not.
pub fn build_all() -> Vec<OrcBench> {
    let handles: Vec<_> = LLVM_CONFIGS
        .iter()
        .filter_map(|&(major, config)| {
            let version = capture(Command::new(config).arg("--version"))?;
            Some(std::thread::spawn(move || build(major, config, version)))
        })
        .collect();
    handles
        .into_iter()
        .filter_map(|h| match h.join().expect("ORC build thread") {
            Ok(b) => Some(b),
            Err(e) => {
                println!("!!! ORC reference: {e}");
                None
            }
        })
        .collect()
}

fn build(major: u32, config: &str, version: String) -> Result<OrcBench, String> {
    let flags = |args: &[&str]| {
        capture(Command::new(config).args(args)).ok_or_else(|| format!("{config} {args:?} failed"))
    };
    let cxxflags = flags(&["--cxxflags"])?;
    let ldflags = flags(&["--ldflags"])?;
    let libs = flags(&["--link-shared", "--libs", "orcjit", "native"])?;
    let libdir = flags(&["--libdir"])?;
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".to_string());
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (SOURCE, &cxx, &cxxflags, &ldflags, &libs, &version).hash(&mut hasher);
    let dir = super::output_dir().join("orc");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let binary = dir.join(format!("orc_bench-{major}-{:016x}", hasher.finish()));
    if !binary.exists() {
        let source = dir.join("orc_bench.cpp");
        std::fs::write(&source, SOURCE).map_err(|e| format!("{}: {e}", source.display()))?;
        let start = std::time::Instant::now();
        let partial = binary.with_extension("tmp");
        let out = Command::new(&cxx)
            .arg("-O2")
            .args(cxxflags.split_whitespace())
            .arg(&source)
            .arg("-o")
            .arg(&partial)
            .args(ldflags.split_whitespace())
            .args(libs.split_whitespace())
            .arg(format!("-Wl,-rpath,{libdir}"))
            .output()
            .map_err(|e| format!("running {cxx}: {e}"))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let head: Vec<&str> = stderr.lines().take(20).collect();
            return Err(format!(
                "building against LLVM {version} failed:\n{}",
                head.join("\n")
            ));
        }
        std::fs::rename(&partial, &binary).map_err(|e| format!("{e}"))?;
        eprintln!(
            "built the ORC reference against LLVM {version} in {:.1?}",
            start.elapsed()
        );
    }
    let mut b = OrcBench {
        major,
        version,
        has_lrm: false,
        binary,
    };
    let v = b.run(&["version"])?;
    let fields = super::parse_fields(&v, "orc_version").ok_or("no version line")?;
    b.has_lrm = fields.get("lrm") == Some(&1.0);
    Ok(b)
}

/// What one `first_call` run of the ORC program printed.
#[derive(Debug, Clone)]
pub struct OrcFirstCall {
    /// p50 / p99 / mean in ns.
    pub fields: HashMap<String, f64>,
    /// Every first call, in ns, in call order.
    pub samples: Vec<f64>,
}

impl OrcBench {
    /// Runs the program with `args`; its stdout.
    pub fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.binary)
            .args(args)
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| format!("{}: {e}", self.binary.display()))?;
        if !out.status.success() {
            return Err(format!("ORC {} {args:?}: {}", self.version, out.status));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// One process: `n` first calls through `api` (`lctm` or `lrm`) with
    /// implementations `impls` (`absolute` or `units`).
    pub fn first_call(&self, api: &str, impls: &str, n: usize) -> Result<OrcFirstCall, String> {
        let out = self.run(&["first_call", api, impls, &n.to_string()])?;
        let fields = super::parse_fields(&out, "orc_first_call").ok_or("no orc_first_call")?;
        let samples = parse_samples(&out, "orc_first_call_samples").ok_or("no samples")?;
        Ok(OrcFirstCall { fields, samples })
    }

    /// One process: define + lookup of `n` reexports through `api`
    /// (`n`, `define_ns`, `lookup_ns`, `heap_bytes`, `page_faults`); with
    /// `warm_heap`, after [`super::pretouch_heap`]'s C++ twin.
    pub fn define_lookup(
        &self,
        api: &str,
        n: usize,
        warm_heap: bool,
    ) -> Result<HashMap<String, f64>, String> {
        let n = n.to_string();
        let mut args = vec!["define_lookup", api, &n];
        if warm_heap {
            args.push("warm");
        }
        let out = self.run(&args)?;
        super::parse_fields(&out, "orc_define_lookup").ok_or_else(|| "no orc_define_lookup".into())
    }
}

/// The numbers of the first line `tag v1 v2 ...` of `output`.
pub fn parse_samples(output: &str, tag: &str) -> Option<Vec<f64>> {
    let line = output
        .lines()
        .find(|l| l.split_whitespace().next() == Some(tag))?;
    line.split_whitespace()
        .skip(1)
        .map(|v| v.parse().ok())
        .collect()
}
