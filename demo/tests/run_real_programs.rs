//! Real C programs through `lazyrt run`: built from the sources that
//! crates.io crates bundle, run lazily and `--eager`, and compared byte for
//! byte (stdout, stderr, exit status, files written) with the same objects
//! linked natively by `cc`.
//!
//! * bzip2 1.0.8 (the `bzip2-sys` crate's `bzip2-1.0.8/`): `bzip2.c`'s own
//!   `main` on the bundled test vectors, exactly its Makefile's `test`
//!   target (compress `sample{1,2,3}.ref` at -1/-2/-3 and get
//!   `sample{1,2,3}.bz2`; decompress those, -s for the third, and get the
//!   `.ref` files back), plus verbose output, `-t`, file mode (stat, open,
//!   fchmod, utime) and its error paths (corrupt input, not a bzip2 file).
//! * Lua 5.4 (the `lua-src` crate's `lua-5.4.*/`, which has no `lua.c`)
//!   with the small driver `benches/c_programs/lua_main.c`: the
//!   `lua_suite.lua` workout (setjmp/longjmp errors, coroutines, the parser,
//!   the GC, libm, stdio), the `fib.lua` and `calls.lua` benchmarks at a
//!   small size, an uncaught error, `os.exit`, stdin and the driver's usage
//!   message (which prints argv[0]).
//!
//! Objects: `cc -c -O2 -ffunction-sections -fdata-sections` (plus each
//! program's defines) into a temporary directory; the program's `main`
//! object is first on the `lazyrt run` command line, so argv[0] is its path,
//! and the native binary is run with that same argv[0]. The crates'
//! directories come from `cargo metadata --offline` (or the dep-info files
//! next to this test's executable): see `real_programs/build.rs`, shared with
//! `benches/object_linker.rs`. `cc` missing skips the tests (loudly);
//! a crate's sources missing fails them.
//!
//! Environment knobs:
//! * `LAZYRT_REAL_PROGRAMS_FULL=1`: bigger workloads (several seconds each).
//! * `LAZYRT_REAL_PROGRAMS_CFLAGS="-fPIC ..."`: extra `cc` flags.
//! * `LAZYRT_REAL_PROGRAMS_KEEP=1`: keep the temporary directories.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

#[path = "real_programs/build.rs"]
mod build;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use build::{Program, TempDir, build_bzip2, build_lua, bzip2_src, have_cc, this_dir};

const LAZYRT: &str = env!("CARGO_BIN_EXE_lazyrt");

/// A run that takes longer than this is killed and fails the test.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

fn full() -> bool {
    std::env::var_os("LAZYRT_REAL_PROGRAMS_FULL").is_some_and(|v| !v.is_empty() && v != "0")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

// --- Running -------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Native,
    Lazy,
    Eager,
}

const MODES: [Mode; 3] = [Mode::Native, Mode::Lazy, Mode::Eager];

struct Outcome {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    elapsed: Duration,
}

/// One run of a program: its arguments (after argv[0]), its stdin, the
/// files it starts with in its (fresh, per-mode) working directory, and
/// what it must produce.
struct Case {
    name: String,
    args: Vec<OsString>,
    stdin: Option<PathBuf>,
    /// Files copied into the working directory first: (name there, source).
    inputs: Vec<(&'static str, PathBuf)>,
    /// Exit status every mode must have.
    code: i32,
    /// If known (a test vector), the exact stdout.
    stdout: Option<Vec<u8>>,
    /// Files the program must leave in its working directory, and their
    /// contents (test vectors).
    outputs: Vec<(&'static str, Vec<u8>)>,
}

impl Case {
    fn new(name: &str, args: &[&str]) -> Case {
        Case {
            name: name.to_owned(),
            args: args.iter().map(OsString::from).collect(),
            stdin: None,
            inputs: Vec::new(),
            code: 0,
            stdout: None,
            outputs: Vec::new(),
        }
    }

    fn stdin(mut self, path: PathBuf) -> Case {
        self.stdin = Some(path);
        self
    }

    fn code(mut self, code: i32) -> Case {
        self.code = code;
        self
    }

    fn stdout(mut self, expected: Vec<u8>) -> Case {
        self.stdout = Some(expected);
        self
    }

    fn input(mut self, name: &'static str, from: PathBuf) -> Case {
        self.inputs.push((name, from));
        self
    }

    fn output(mut self, name: &'static str, expected: Vec<u8>) -> Case {
        self.outputs.push((name, expected));
        self
    }
}

/// Runs `program` in `mode` for `case` in the fresh directory `cwd`.
fn run(program: &Program, mode: Mode, case: &Case, cwd: &Path) -> Outcome {
    let argv0 = &program.objects[0];
    let mut command = match mode {
        Mode::Native => {
            let mut c = Command::new(&program.native);
            c.arg0(argv0);
            c
        }
        Mode::Lazy | Mode::Eager => {
            let mut c = Command::new(LAZYRT);
            c.arg("run");
            if mode == Mode::Eager {
                c.arg("--eager");
            }
            for lib in &program.libs {
                c.args(["-l", lib]);
            }
            c.args(&program.objects);
            if !case.args.is_empty() {
                c.arg("--");
            }
            c
        }
    };
    command
        .args(&case.args)
        .current_dir(cwd)
        // bzip2 takes options from these.
        .env_remove("BZIP2")
        .env_remove("BZIP")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(match &case.stdin {
            Some(path) => Stdio::from(
                std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            ),
            None => Stdio::null(),
        });
    let started = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{}: starting {mode:?} run: {e}", case.name));
    let mut stdout_pipe = child.stdout.take().unwrap();
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stdout_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout_pipe.read_to_end(&mut v);
        v
    });
    let stderr_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr_pipe.read_to_end(&mut v);
        v
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{}: the {mode:?} run took over {} s and was killed",
                case.name,
                RUN_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = started.elapsed();
    Outcome {
        status,
        stdout: stdout_reader.join().unwrap(),
        stderr: stderr_reader.join().unwrap(),
        elapsed,
    }
}

fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => format!("{status:?}"),
    }
}

/// A short text for a mismatch of `what` between `expected` and `actual`.
fn diff_bytes(what: &str, expected: &[u8], actual: &[u8]) -> Option<String> {
    if expected == actual {
        return None;
    }
    let at = expected
        .iter()
        .zip(actual)
        .take_while(|(a, b)| a == b)
        .count();
    let context = |v: &[u8]| {
        let from = at.saturating_sub(40);
        let to = (at + 80).min(v.len());
        String::from_utf8_lossy(&v[from.min(to)..to]).into_owned()
    };
    Some(format!(
        "{what} differs at byte {at} (lengths {} expected, {} got)\n  expected: {:?}\n  got:      {:?}",
        expected.len(),
        actual.len(),
        context(expected),
        context(actual),
    ))
}

/// Runs every case natively, lazily and eagerly; panics listing every
/// mismatch (with the lazyrt run's stderr) after running them all.
fn check_cases(program: &Program, work: &Path, cases: &[Case]) {
    let mut failures = String::new();
    let mut report = String::new();
    for (index, case) in cases.iter().enumerate() {
        let mut native: Option<Outcome> = None;
        let _ = write!(report, "  {:<28}", case.name);
        for mode in MODES {
            let cwd = work.join(format!("case{index:02}-{mode:?}"));
            std::fs::create_dir_all(&cwd).unwrap();
            for (name, from) in &case.inputs {
                std::fs::copy(from, cwd.join(name))
                    .unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
            }
            let outcome = run(program, mode, case, &cwd);
            let _ = write!(report, " {mode:?} {:>7.3} s", outcome.elapsed.as_secs_f64());
            let mut problems = Vec::new();
            if outcome.status.code() != Some(case.code) {
                problems.push(format!(
                    "status: expected exit {}, got {}",
                    case.code,
                    describe_status(outcome.status)
                ));
            }
            // Against the test vectors.
            if let Some(expected) = &case.stdout {
                problems.extend(diff_bytes(
                    "stdout vs the test vector",
                    expected,
                    &outcome.stdout,
                ));
            }
            for (name, expected) in &case.outputs {
                match std::fs::read(cwd.join(name)) {
                    Ok(got) => problems.extend(diff_bytes(
                        &format!("output file {name} vs the test vector"),
                        expected,
                        &got,
                    )),
                    Err(e) => problems.push(format!("output file {name}: {e}")),
                }
            }
            // Against the native run.
            if let Some(native) = &native {
                if native.status != outcome.status {
                    problems.push(format!(
                        "status: native {}, this {}",
                        describe_status(native.status),
                        describe_status(outcome.status)
                    ));
                }
                problems.extend(diff_bytes(
                    "stdout vs native",
                    &native.stdout,
                    &outcome.stdout,
                ));
                problems.extend(diff_bytes(
                    "stderr vs native",
                    &native.stderr,
                    &outcome.stderr,
                ));
            }
            if !problems.is_empty() {
                let stderr = String::from_utf8_lossy(&outcome.stderr);
                let tail: String = {
                    let chars: Vec<char> = stderr.chars().collect();
                    chars[chars.len().saturating_sub(3000)..].iter().collect()
                };
                let _ = writeln!(
                    failures,
                    "\n--- {} ({mode:?}; args {:?}; stdin {:?}; in {}):\n{}\n  stderr (tail):\n{tail}",
                    case.name,
                    case.args,
                    case.stdin,
                    cwd.display(),
                    problems.join("\n"),
                );
            }
            if mode == Mode::Native {
                native = Some(outcome);
            }
        }
        report.push('\n');
    }
    eprintln!("{report}");
    assert!(failures.is_empty(), "mismatches:{failures}");
}

// --- bzip2 ---------------------------------------------------------------

#[test]
fn bzip2_runs_its_own_test_vectors_lazily_and_eagerly() {
    if !have_cc("bzip2_runs_its_own_test_vectors_lazily_and_eagerly") {
        return;
    }
    let src = bzip2_src();
    let tmp = TempDir::new("bzip2");
    let program = build_bzip2(&src, &tmp.0);

    let sample = |n: u32, ext: &str| src.join(format!("sample{n}.{ext}"));
    let mut cases = Vec::new();
    // The Makefile's `test` target.
    for n in 1..=3 {
        cases.push(
            Case::new(&format!("make test: -{n} sample{n}"), &[&format!("-{n}")])
                .stdin(sample(n, "ref"))
                .stdout(read(&sample(n, "bz2"))),
        );
    }
    for n in 1..=3 {
        let flag = if n == 3 { "-ds" } else { "-d" };
        cases.push(
            Case::new(&format!("make test: {flag} sample{n}"), &[flag])
                .stdin(sample(n, "bz2"))
                .stdout(read(&sample(n, "ref"))),
        );
    }
    // Verbose output on stderr (-vvvv: thousands of fprintf calls, and the
    // fallback sort for the repetitive sample3), integrity test, stdout mode
    // on a named file.
    cases.push(Case::new("-9 -vvvv sample2", &["-9", "-vvvv"]).stdin(sample(2, "ref")));
    cases.push(
        Case::new("-3 -vvvv sample3", &["-3", "-vvvv"])
            .stdin(sample(3, "ref"))
            .stdout(read(&sample(3, "bz2"))),
    );
    cases.push(Case::new("-dvvvv sample2", &["-dvvvv"]).stdin(sample(2, "bz2")));
    cases.push(Case::new("-tvv sample1 (test)", &["-tvv"]).stdin(sample(1, "bz2")));
    cases.push(
        Case::new("-c -2 FILE", &["-c", "-2", "s2.ref"])
            .input("s2.ref", sample(2, "ref"))
            .stdout(read(&sample(2, "bz2"))),
    );
    // File mode: writes s3.ref.bz2 next to its input (stat, fchmod, utime).
    cases.push(
        Case::new("-3 -k -v FILE (file mode)", &["-3", "-k", "-v", "s3.ref"])
            .input("s3.ref", sample(3, "ref"))
            .output("s3.ref.bz2", read(&sample(3, "bz2")))
            .output("s3.ref", read(&sample(3, "ref"))),
    );
    cases.push(
        Case::new("-d FILE.bz2 (file mode)", &["-d", "s1.bz2"])
            .input("s1.bz2", sample(1, "bz2"))
            .output("s1", read(&sample(1, "ref"))),
    );
    // Error paths: exit status 2 and messages naming argv[0]'s basename.
    let corrupt = tmp.0.join("corrupt.bz2");
    let mut bytes = read(&sample(1, "bz2"));
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&corrupt, &bytes).unwrap();
    cases.push(
        Case::new("-d corrupt input", &["-d"])
            .stdin(corrupt)
            .code(2),
    );
    cases.push(
        Case::new("-d not a bzip2 file", &["-d"])
            .stdin(sample(1, "ref"))
            .code(2),
    );
    cases.push(Case::new("-d missing FILE", &["-d", "no-such-file.bz2"]).code(1));
    cases.push(Case::new("--help", &["--help"]));
    if full() {
        // Several megabytes of mixed input, at every block size.
        let big = tmp.0.join("big.in");
        let mut data = Vec::new();
        for round in 0..6 {
            for n in 1..=3 {
                data.extend_from_slice(&read(&sample(n, "ref")));
                data.extend_from_slice(&read(&sample(n, "bz2")));
            }
            data.extend(std::iter::repeat_n(b'a' + round, 100_000));
        }
        std::fs::write(&big, &data).unwrap();
        for level in ["-1", "-5", "-9"] {
            cases.push(
                Case::new(&format!("full: {level} -v big"), &[level, "-v"]).stdin(big.clone()),
            );
        }
        let big_bz2 = tmp.0.join("big.bz2");
        let out = Command::new(&program.native)
            .arg("-9")
            .stdin(std::fs::File::open(&big).unwrap())
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::write(&big_bz2, &out.stdout).unwrap();
        cases.push(
            Case::new("full: -d big", &["-d"])
                .stdin(big_bz2.clone())
                .stdout(data.clone()),
        );
        cases.push(
            Case::new("full: -ds big", &["-ds"])
                .stdin(big_bz2)
                .stdout(data),
        );
    }
    let work = tmp.0.join("runs");
    check_cases(&program, &work, &cases);
}

// --- Lua -----------------------------------------------------------------

#[test]
fn lua_runs_scripts_lazily_and_eagerly() {
    if !have_cc("lua_runs_scripts_lazily_and_eagerly") {
        return;
    }
    let tmp = TempDir::new("lua");
    let program = build_lua(&tmp.0);
    let scripts = this_dir("benches/c_programs");
    let script = |name: &str| scripts.join(name).into_os_string().into_string().unwrap();

    let error_script = tmp.0.join("error.lua");
    std::fs::write(
        &error_script,
        "local function inner(x)\n  error(\"boom: \" .. x)\nend\n\
         local function outer() inner(42) end\nouter()\n",
    )
    .unwrap();
    let wc_script = tmp.0.join("wc.lua");
    std::fs::write(
        &wc_script,
        "local s = io.read(\"a\")\nlocal _, lines = s:gsub(\"\\n\", \"\")\n\
         local words = 0\nfor _ in s:gmatch(\"%S+\") do words = words + 1 end\n\
         print(#s, lines, words)\nreturn #s % 256\n",
    )
    .unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let bzip2_sample = bzip2_src().join("sample1.ref");
    let wc_size = std::fs::metadata(&bzip2_sample).unwrap().len();

    let (scale, fib_n, fib_value, calls_n) = if full() {
        ("10", "30", 832_040, "1000000")
    } else {
        ("1", "22", 17_711, "20000")
    };
    let cases = vec![
        Case::new("lua_suite.lua", &[&script("lua_suite.lua"), scale]).code(7),
        Case::new(
            "lua_suite.lua (os.exit 3)",
            &[&script("lua_suite.lua"), "1", "3"],
        )
        .code(3),
        Case::new("fib.lua", &[&script("fib.lua"), fib_n, "2"]).stdout(
            format!("fib({fib_n}) = {fib_value}\nfib({fib_n}) = {fib_value}\n").into_bytes(),
        ),
        Case::new("calls.lua", &[&script("calls.lua"), calls_n]),
        Case::new("uncaught error", &[&path(&error_script)]).code(1),
        Case::new("wc.lua < sample1.ref", &[&path(&wc_script)])
            .stdin(bzip2_sample)
            .code((wc_size % 256) as i32),
        Case::new("missing script", &["no-such-script.lua"]).code(1),
        Case::new("usage (prints argv[0])", &[]).code(2),
    ];
    check_cases(&program, &tmp.0.join("runs"), &cases);

    // As Lua's Makefile links it: lua.o and liblua.a (every library
    // object); `lazyrt run` takes the members it needs.
    let archive = tmp.0.join("obj").join("liblua.a");
    let made = Command::new("ar")
        .arg("rcs")
        .arg(&archive)
        .args(&program.objects[1..])
        .status();
    match made {
        Ok(status) => {
            assert!(status.success(), "ar rcs liblua.a failed");
            let archived = Program {
                objects: vec![program.objects[0].clone(), archive],
                native: program.native.clone(),
                libs: program.libs.clone(),
            };
            check_cases(&archived, &tmp.0.join("runs-archive"), &cases[..3]);
        }
        Err(e) => eprintln!("skipping liblua.a: no `ar` ({e})"),
    }
}
