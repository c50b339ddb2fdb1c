//! Helpers for `run_c_programs.rs`: compiling the C programs of
//! `tests/c_programs/<name>/` with `cc`, running processes with a timeout,
//! and comparing a `lazyrt run` with the native run.
//!
//! A program directory holds one or more `.c` files and optionally:
//! `cflags` (extra `cc -c` flags for every file), `FILE.c.cflags` (extra
//! flags for that file only), `ldflags` (`-lX` flags: `cc` gets them as they
//! are, `lazyrt run` as `-l X`), `args` (one argument per line; an empty
//! line is an empty argument) and `non_pic_refused` (words the load error
//! must name when the program, built without `-fPIC`, is refused).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The `lazyrt` binary under test.
pub const LAZYRT: &str = env!("CARGO_BIN_EXE_lazyrt");

/// How long one native or `lazyrt run` process may take before it is killed.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The environment variable set for every run (`stdio_environ` prints it).
pub const TEST_VAR: (&str, &str) = ("LAZYRT_TEST_VAR", "hello");

/// A way of compiling every `.c` file of a program.
pub struct Mode {
    pub name: &'static str,
    pub flags: &'static [&'static str],
    /// Code without `-fPIC`/`-fPIE` (absolute 32-bit addresses): linked
    /// natively with `-no-pie`; a program with a `non_pic_refused` file
    /// must then be refused at load (see [`check_program`]).
    pub non_pic: bool,
}

/// Every program is checked in each of these modes: a section per function
/// and per data object with debug information, a section per kind (the
/// whole `.text` is then one unit), unoptimised code with a section per
/// function, and non-PIC code (`-fno-pic`, as a non-PIE build makes).
pub const MODES: &[Mode] = &[
    Mode {
        name: "sections",
        flags: &["-O2", "-g", "-ffunction-sections", "-fdata-sections"],
        non_pic: false,
    },
    Mode {
        name: "no-sections",
        flags: &["-O2"],
        non_pic: false,
    },
    Mode {
        name: "O0-sections",
        flags: &["-O0", "-ffunction-sections"],
        non_pic: false,
    },
    Mode {
        name: "non-pic",
        flags: &["-O2", "-fno-pic"],
        non_pic: true,
    },
];

/// Whether the C tests can run here; if not, says why on stderr, so that a
/// skipped test is visible in `cargo test -- --nocapture` output.
pub fn can_run(test: &str) -> bool {
    if !cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        eprintln!(
            "skipping {test}: `lazyrt run` links x86-64 Linux objects, and this host is not one"
        );
        return false;
    }
    match Command::new(compiler()).arg("--version").output() {
        Ok(out) if out.status.success() => true,
        // A compiler asked for by name must be there: no silent pass.
        _ if std::env::var_os("LAZYRT_TEST_CC").is_some() => {
            panic!("{test}: LAZYRT_TEST_CC={:?} does not run", compiler())
        }
        _ => {
            eprintln!(
                "skipping {test}: no C compiler (`cc` was not found), so there are no objects to link"
            );
            false
        }
    }
}

/// `tests/c_programs`.
pub fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("c_programs")
}

/// A fresh directory under the system temp dir, removed on drop unless
/// [`Workdir::keep`] was called (then its path is printed for debugging).
pub struct Workdir {
    path: PathBuf,
    keep: bool,
}

impl Workdir {
    pub fn new(tag: &str) -> Workdir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("lazyrt-c-{tag}-{}-{n}", std::process::id()));
            match fs::create_dir(&path) {
                Ok(()) => return Workdir { path, keep: false },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => panic!("cannot create {}: {e}", path.display()),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the directory (with its objects) after the test.
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if self.keep || thread::panicking() {
            eprintln!("kept {} for debugging", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// The C compiler: `LAZYRT_TEST_CC` (CI runs the suite again with
/// `clang-14`: the linker takes gcc's and clang's objects), else `cc`.
pub fn compiler() -> OsString {
    std::env::var_os("LAZYRT_TEST_CC").unwrap_or_else(|| "cc".into())
}

/// Runs the C compiler with `args`, panicking with its diagnostics if it
/// fails.
pub fn cc<S: AsRef<OsStr>>(args: &[S]) {
    let out = Command::new(compiler())
        .args(args)
        .output()
        .expect("cannot run cc");
    let shown: Vec<_> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    assert!(
        out.status.success(),
        "{} {} failed:\n{}",
        compiler().to_string_lossy(),
        shown.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Compiles `source` (C, or assembly when `file_name` ends in `.s`) written
/// to `file_name` in `work`; returns the object's path.
pub fn compile_source(work: &Path, file_name: &str, source: &str) -> PathBuf {
    let src = work.join(file_name);
    fs::write(&src, source).expect("cannot write a test source");
    let obj = src.with_extension("o");
    cc(&[
        OsStr::new("-c"),
        OsStr::new("-O2"),
        src.as_os_str(),
        OsStr::new("-o"),
        obj.as_os_str(),
    ]);
    obj
}

/// What a process did.
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// "exit 42" or "killed by signal 11".
    pub fn status_text(&self) -> String {
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            _ => format!("{:?}", self.status),
        }
    }
}

fn read_all<R: Read + Send + 'static>(mut pipe: R) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Runs `command` (stdin empty, stdout and stderr captured), killing it
/// after [`TIMEOUT`]: a hang (say, a deadlock in lazy linking) fails the
/// test instead of blocking the suite.
pub fn run(command: &mut Command, what: &str) -> Outcome {
    let mut child: Child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start {command:?}: {e}"));
    let stdout = read_all(child.stdout.take().expect("stdout is piped"));
    let stderr = read_all(child.stderr.take().expect("stderr is piped"));
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("cannot wait for a child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {TIMEOUT:?}; killed ({command:?})");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let text = |h: JoinHandle<Vec<u8>>| {
        String::from_utf8_lossy(&h.join().expect("pipe reader")).into_owned()
    };
    Outcome {
        status,
        stdout: text(stdout),
        stderr: text(stderr),
    }
}

/// `lazyrt run ARGS...`, with the test environment.
pub fn lazyrt_run<S: AsRef<OsStr>>(args: &[S], what: &str) -> Outcome {
    run(
        Command::new(LAZYRT)
            .arg("run")
            .args(args)
            .env(TEST_VAR.0, TEST_VAR.1),
        what,
    )
}

/// A C program of `tests/c_programs/<name>/`.
pub struct Program {
    sources: Vec<PathBuf>,
    cflags: Vec<String>,
    ldflags: Vec<String>,
    args: Vec<String>,
    /// From `non_pic_refused`: built without `-fPIC`, the program uses a
    /// library variable only a static link's copy relocation can serve;
    /// `lazyrt run` must refuse it at load, naming these words.
    non_pic_refused: Option<Vec<String>>,
}

/// The whitespace-separated words of `path`, or none if it does not exist.
fn words(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

impl Program {
    pub fn load(name: &str) -> Program {
        let dir = programs_dir().join(name);
        let mut sources: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .map(|entry| entry.expect("cannot read a directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "c"))
            .collect();
        // Sorted: the link order decides which of two weak definitions wins
        // and the order of same-priority constructors.
        sources.sort();
        assert!(!sources.is_empty(), "{}: no .c files", dir.display());
        let ldflags = words(&dir.join("ldflags"));
        for flag in &ldflags {
            assert!(
                flag.starts_with("-l") && flag.len() > 2,
                "{name}/ldflags: only -lNAME is supported, not {flag:?}"
            );
        }
        let args = match fs::read_to_string(dir.join("args")) {
            Ok(text) => text.lines().map(String::from).collect(),
            Err(_) => Vec::new(),
        };
        let refused = dir.join("non_pic_refused");
        Program {
            sources,
            cflags: words(&dir.join("cflags")),
            ldflags,
            args,
            non_pic_refused: refused.exists().then(|| words(&refused)),
        }
    }

    /// Compiles every source with `cc -c` in `mode` into `work`; returns the
    /// objects in link order.
    pub fn compile(&self, mode: &Mode, work: &Path) -> Vec<PathBuf> {
        self.sources
            .iter()
            .map(|src| {
                let stem = src.file_stem().expect("a .c file has a stem");
                let obj = work.join(stem).with_extension("o");
                let mut file_flags = src.clone().into_os_string();
                file_flags.push(".cflags");
                let mut args: Vec<OsString> = vec!["-c".into()];
                args.extend(mode.flags.iter().map(Into::into));
                args.extend(
                    self.cflags
                        .iter()
                        .chain(&words(Path::new(&file_flags)))
                        .map(Into::into),
                );
                args.extend([
                    src.clone().into_os_string(),
                    "-o".into(),
                    obj.clone().into_os_string(),
                ]);
                cc(&args);
                obj
            })
            .collect()
    }

    /// Links `objects` (compiled in `mode`) natively into `work/native`.
    pub fn link_native(&self, mode: &Mode, objects: &[PathBuf], work: &Path) -> PathBuf {
        let exe = work.join("native");
        let mut args: Vec<&OsStr> = objects.iter().map(|o| o.as_os_str()).collect();
        if mode.non_pic {
            args.push(OsStr::new("-no-pie"));
        }
        args.extend([OsStr::new("-o"), exe.as_os_str()]);
        args.extend(self.ldflags.iter().map(OsStr::new));
        cc(&args);
        exe
    }

    /// Runs the natively linked `exe` with the program's arguments.
    pub fn run_native(&self, exe: &Path, what: &str) -> Outcome {
        run(
            Command::new(exe)
                .args(&self.args)
                .env(TEST_VAR.0, TEST_VAR.1),
            what,
        )
    }

    /// `lazyrt run OPTIONS... -l X... OBJECTS... [-- ARGS...]`.
    pub fn run_lazyrt(&self, options: &[&str], objects: &[PathBuf], what: &str) -> Outcome {
        let mut args: Vec<OsString> = options.iter().map(Into::into).collect();
        for flag in &self.ldflags {
            args.extend(["-l".into(), flag[2..].into()]);
        }
        args.extend(objects.iter().map(|o| o.clone().into_os_string()));
        if !self.args.is_empty() {
            args.push("--".into());
            args.extend(self.args.iter().map(Into::into));
        }
        lazyrt_run(&args, what)
    }
}

/// Where `got` differs from `expected`: the first differing line of a stream.
fn first_difference(expected: &str, got: &str) -> String {
    let (e, g): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), got.lines().collect());
    let Some(i) = (0..e.len().max(g.len())).find(|&i| e.get(i) != g.get(i)) else {
        return "the lines are the same; the line endings differ".into();
    };
    let line = |l: Option<&&str>| l.map_or("<end of output>".to_string(), |l| format!("{l:?}"));
    format!(
        "first difference at line {}:\n    native: {}\n    lazyrt: {}\n  (native {} lines, lazyrt {} lines)",
        i + 1,
        line(e.get(i)),
        line(g.get(i)),
        e.len(),
        g.len()
    )
}

/// The differences between a `lazyrt run` and the native run, one message
/// per stream (status, stdout, stderr); empty if they are identical.
pub fn differences(label: &str, native: &Outcome, got: &Outcome) -> Vec<String> {
    let mut found = Vec::new();
    if native.status != got.status {
        found.push(format!(
            "{label}: status: native {}, lazyrt {}",
            native.status_text(),
            got.status_text()
        ));
    }
    for (stream, expected, actual) in [
        ("stdout", &native.stdout, &got.stdout),
        ("stderr", &native.stderr, &got.stderr),
    ] {
        if expected != actual {
            found.push(format!(
                "{label}: {stream} differs; {}",
                first_difference(expected, actual)
            ));
        }
    }
    if !found.is_empty() {
        let chars: Vec<char> = got.stderr.chars().collect();
        let tail: String = chars[chars.len().saturating_sub(1500)..].iter().collect();
        let tail = if tail.is_empty() {
            "(empty)".into()
        } else {
            tail
        };
        found.push(format!(
            "{label}: lazyrt's stderr (at most its last 1500 chars):\n{tail}"
        ));
    }
    found
}

/// Compiles program `name` in every mode, runs it natively (which must
/// exit with `expected_exit`), then with `lazyrt run` and
/// `lazyrt run --eager`, which must match the native run exactly.
pub fn check_program(name: &str, expected_exit: i32) {
    if !can_run(name) {
        return;
    }
    let program = Program::load(name);
    let mut failures = Vec::new();
    for mode in MODES {
        let mut work = Workdir::new(&format!("{name}-{}", mode.name));
        let label = format!("{name} [{}]", mode.flags.join(" "));
        let objects = program.compile(mode, work.path());
        let exe = program.link_native(mode, &objects, work.path());
        let native = program.run_native(&exe, &format!("{label} native"));
        assert_eq!(
            native.status.code(),
            Some(expected_exit),
            "{label}: the native run ended with {}, not exit {expected_exit}; stderr:\n{}",
            native.status_text(),
            native.stderr
        );
        assert!(
            !native.stdout.is_empty(),
            "{label}: the native run printed nothing"
        );
        let before = failures.len();
        if let Some(words) = program.non_pic_refused.as_ref().filter(|_| mode.non_pic) {
            // The whole program is refused before anything runs.
            for (options, how) in [(&[][..], "lazyrt run"), (&["--eager"][..], "--eager")] {
                let got = program.run_lazyrt(options, &objects, &format!("{label} {how}"));
                let mut mentions: Vec<&[&str]> = vec![&["-fPIE"]];
                let named: Vec<[&str; 1]> = words.iter().map(|w| [w.as_str()]).collect();
                mentions.extend(named.iter().map(|w| &w[..]));
                assert_link_error(&got, &format!("{label} {how}"), &mentions);
            }
            continue;
        }
        for (options, how) in [
            (&[][..], "lazyrt run"),
            (&["--eager"][..], "lazyrt run --eager"),
        ] {
            let got = program.run_lazyrt(options, &objects, &format!("{label} {how}"));
            failures.extend(differences(&format!("{label} {how}"), &native, &got));
        }
        if failures.len() > before {
            work.keep();
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: `lazyrt run` differs from the native run:\n\n{}",
        failures.join("\n\n")
    );
}

/// Asserts `out` is a link error: exit 125, `lazyrt run: error:` on stderr,
/// nothing on stdout, and for each group in `mentions` one of its strings
/// on stderr.
pub fn assert_link_error(out: &Outcome, what: &str, mentions: &[&[&str]]) {
    assert_eq!(
        out.status.code(),
        Some(125),
        "{what}: expected exit 125, got {}; stderr:\n{}",
        out.status_text(),
        out.stderr
    );
    assert!(
        out.stderr.contains("lazyrt run: error: "),
        "{what}: no `lazyrt run: error: ` in stderr:\n{}",
        out.stderr
    );
    assert!(
        out.stdout.is_empty(),
        "{what}: printed on stdout:\n{}",
        out.stdout
    );
    for group in mentions {
        assert!(
            group.iter().any(|m| out.stderr.contains(m)),
            "{what}: stderr mentions none of {group:?}:\n{}",
            out.stderr
        );
    }
}

/// Parses `lazyrt run: functions: D defined, L linked, N never linked` from
/// `stderr` into (D, L, N).
pub fn parse_stats(stderr: &str) -> Option<(u64, u64, u64)> {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("lazyrt run: functions: "))?;
    let mut numbers = line
        .split(", ")
        .zip([" defined", " linked", " never linked"])
        .map(|(part, suffix)| part.strip_suffix(suffix)?.parse::<u64>().ok());
    let parsed = (numbers.next()??, numbers.next()??, numbers.next()??);
    Some(parsed)
}
