//! The object linker's bench: Lua 5.4 (the `lua-src` crate's sources and
//! `c_programs/lua_main.c`, `cc -c -O2 -ffunction-sections -fdata-sections`
//! as `tests/run_real_programs.rs` builds it, with the same code:
//! `tests/real_programs/build.rs`) running `c_programs/fib_timed.lua N`
//! natively linked by `cc`, lazily (`lazyrt run --stats -l m lua_main.o
//! lua/*.o -- fib_timed.lua N`) and `--eager`, the three runs interleaved
//! in each round to cancel drift.
//!
//! * `link_steady_ratio_vs_native`: lazy compute seconds / native compute
//!   seconds, each the best of the rounds (the script's own `os.clock()`
//!   around fib(N), so process start, loading and linking are excluded;
//!   best-of because Lua's time is bimodal with the address layout, natively
//!   too), and the same `--eager`.
//! * `link_{lazy,eager}_time_to_main_ms`, `link_load_ms`,
//!   `link_link_time_ms`, `link_fraction_linked` (functions linked /
//!   defined): from `--stats`.
//!
//! N = 32, 9 rounds, medians for the other figures (N = 27 and 1 round with
//! `LAZYRT_BENCH_QUICK=1`). Every run's result must match the native run's
//! (a broken run panics instead of producing figures). Needs `cc`; skips
//! without it, and on anything but x86-64 Linux (the linker's only target).
//! Writes `target/lazyrt-bench/object_linker.json`.

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn main() {
    println!("object_linker bench: skipped (lazyrt-linker links x86-64 Linux ELF objects only)");
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn main() {
    linux::main();
}

// `build_bzip2` and its sources are the test's alone.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[path = "../tests/real_programs/build.rs"]
#[allow(dead_code)]
mod build;

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod linux {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use lazyrt_tests::bench::{self, Report};

    use crate::build::{self, Program, TempDir};

    const LAZYRT: &str = env!("CARGO_BIN_EXE_lazyrt");

    /// A run that takes longer than this is killed and fails the bench.
    const RUN_TIMEOUT: Duration = Duration::from_secs(120);

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Mode {
        Native,
        Lazy,
        Eager,
    }

    /// What one `lazyrt run --stats` printed at exit.
    struct Stats {
        defined: f64,
        linked: f64,
        link_ms: f64,
        load_ms: f64,
        time_to_main_ms: f64,
    }

    /// One run of `fib_timed.lua`.
    struct Outcome {
        /// The result line before ` cpu ` (`fib(N) = F x REPEAT`).
        result: String,
        /// The script's CPU seconds for the computation.
        compute_s: f64,
        /// `--stats`' figures (lazyrt runs only).
        stats: Option<Stats>,
    }

    fn fib(n: u32) -> u64 {
        let (mut a, mut b) = (0u64, 1u64);
        for _ in 0..n {
            (a, b) = (b, a + b);
        }
        a
    }

    /// The number after `key` in `line` (up to the next space or `;`).
    fn number_after(line: &str, key: &str) -> Option<f64> {
        let rest = &line[line.find(key)? + key.len()..];
        let end = rest.find([' ', ';']).unwrap_or(rest.len());
        rest[..end].parse().ok()
    }

    fn parse_stats(stderr: &str) -> Result<Stats, String> {
        let functions = stderr
            .lines()
            .find_map(|l| l.strip_prefix("lazyrt run: functions: "))
            .ok_or("no `lazyrt run: functions:` line")?;
        let units = stderr
            .lines()
            .find(|l| l.starts_with("lazyrt run: units: "))
            .ok_or("no `lazyrt run: units:` line")?;
        let count = |i: usize| -> Result<f64, String> {
            functions
                .split(", ")
                .nth(i)
                .and_then(|field| field.split(' ').next())
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("unreadable functions line: {functions:?}"))
        };
        let field = |key: &str| {
            number_after(units, key).ok_or_else(|| format!("no `{key}` number in {units:?}"))
        };
        Ok(Stats {
            defined: count(0)?,
            linked: count(1)?,
            link_ms: field("link time ")?,
            load_ms: field("load ")?,
            // "-" if main was never called.
            time_to_main_ms: field("time to main ")?,
        })
    }

    /// Runs `fib_timed.lua n` in `mode` with its output in files under
    /// `dir`; panics unless it exits 0 with one line of the expected
    /// result (and, for lazyrt, `--stats`' lines).
    fn run(program: &Program, mode: Mode, script: &Path, n: u32, dir: &Path) -> Outcome {
        let mut command = match mode {
            Mode::Native => Command::new(&program.native),
            Mode::Lazy | Mode::Eager => {
                let mut c = Command::new(LAZYRT);
                c.args(["run", "--stats"]);
                if mode == Mode::Eager {
                    c.arg("--eager");
                }
                for lib in &program.libs {
                    c.args(["-l", lib]);
                }
                c.args(&program.objects).arg("--");
                c
            }
        };
        let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
        let file = |path: &PathBuf| std::fs::File::create(path).expect("output file");
        let started = Instant::now();
        let mut child = command
            .arg(script)
            .arg(n.to_string())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(file(&out_path))
            .stderr(file(&err_path))
            .spawn()
            .unwrap_or_else(|e| panic!("starting the {mode:?} run: {e}"));
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for the run") {
                break status;
            }
            if started.elapsed() > RUN_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the {mode:?} run took over {} s and was killed",
                    RUN_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let stdout = std::fs::read_to_string(&out_path).expect("reading stdout");
        let stderr = std::fs::read_to_string(&err_path).expect("reading stderr");
        let broken = |why: String| -> ! {
            let tail: String = {
                let chars: Vec<char> = stderr.chars().collect();
                chars[chars.len().saturating_sub(3000)..].iter().collect()
            };
            panic!(
                "the {mode:?} run of fib_timed.lua {n} is broken ({status}): {why}\n  \
                 stdout: {stdout:?}\n  stderr (tail):\n{tail}"
            )
        };
        if !status.success() {
            broken("it failed".into());
        }
        // REPEAT is the script's default, 1.
        let expected = format!("fib({n}) = {} x 1", fib(n));
        let (result, compute_s) = match stdout.strip_suffix('\n').map(|l| l.split_once(" cpu ")) {
            Some(Some((result, seconds))) if !result.contains('\n') => {
                (result.to_owned(), seconds.parse::<f64>())
            }
            _ => broken("stdout is not one result line".into()),
        };
        if result != expected {
            broken(format!("result {result:?}, expected {expected:?}"));
        }
        let compute_s = match compute_s {
            Ok(s) if s > 0.0 => s,
            _ => broken("unreadable CPU seconds".into()),
        };
        let stats = match mode {
            Mode::Native => None,
            Mode::Lazy | Mode::Eager => match parse_stats(&stderr) {
                Ok(stats) => Some(stats),
                Err(e) => broken(format!("--stats: {e}")),
            },
        };
        Outcome {
            result,
            compute_s,
            stats,
        }
    }

    pub fn main() {
        if !build::have_cc("the object_linker bench") {
            return;
        }
        let started = Instant::now();
        let (n, runs) = if bench::quick() { (27, 1) } else { (32, 9) };
        let tmp = TempDir::new("bench-lua");
        let program = build::build_lua(&tmp.0);
        let built = started.elapsed();
        let script = build::this_dir("benches/c_programs/fib_timed.lua");
        let dir = tmp.0.join("run");
        std::fs::create_dir_all(&dir).unwrap();

        let (mut lazy_s, mut eager_s, mut native_s) = (Vec::new(), Vec::new(), Vec::new());
        let (mut lazy_main, mut eager_main, mut fraction) = (Vec::new(), Vec::new(), Vec::new());
        let (mut load, mut link) = (Vec::new(), Vec::new());
        for round in 0..runs {
            let native = run(&program, Mode::Native, &script, n, &dir);
            let lazy = run(&program, Mode::Lazy, &script, n, &dir);
            let eager = run(&program, Mode::Eager, &script, n, &dir);
            for other in [&lazy, &eager] {
                assert_eq!(other.result, native.result, "a run differs from native");
            }
            let (l, e) = (lazy.stats.unwrap(), eager.stats.unwrap());
            eprintln!(
                "round {round}: compute native {:.4} s, lazy {:.4} s, eager {:.4} s; \
                 time to main lazy {:.3} ms, eager {:.3} ms; {} of {} functions linked lazily",
                native.compute_s,
                lazy.compute_s,
                eager.compute_s,
                l.time_to_main_ms,
                e.time_to_main_ms,
                l.linked,
                l.defined
            );
            native_s.push(native.compute_s);
            lazy_s.push(lazy.compute_s);
            eager_s.push(eager.compute_s);
            lazy_main.push(l.time_to_main_ms);
            eager_main.push(e.time_to_main_ms);
            fraction.push(l.linked / l.defined);
            load.push(l.load_ms);
            link.push(l.link_ms);
        }

        let mut report = Report::new("object_linker");
        report.add("link_fib_n", f64::from(n), "n");
        // Best of the rounds for each mode: Lua's compute time is bimodal
        // with the process's address layout (ASLR), natively too, so a
        // median of per-round ratios flips; the fastest run of each mode
        // is its steady state.
        let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        let native_best = best(&native_s);
        report.add("link_native_compute_s", native_best, "s");
        report
            .add(
                "link_steady_ratio_vs_native",
                best(&lazy_s) / native_best,
                "x",
            )
            .at_most(1.05)
            .anchor(
                "Lua fib: lazily linked / natively linked, compute only \
                 (llvm-jitlink-22 -lazy: 1.53x)",
            );
        report.add(
            "link_eager_steady_ratio_vs_native",
            best(&eager_s) / native_best,
            "x",
        );
        let (lazy_main, eager_main) = (
            bench::median(&mut lazy_main),
            bench::median(&mut eager_main),
        );
        report.add("link_lazy_time_to_main_ms", lazy_main, "ms");
        report.add("link_eager_time_to_main_ms", eager_main, "ms");
        report
            .add(
                "link_lazy_vs_eager_time_to_main",
                lazy_main / eager_main,
                "x",
            )
            .at_most(1.0)
            .anchor("lazy reaches main sooner than eager");
        report
            .add(
                "link_fraction_linked",
                bench::median(&mut fraction),
                "fraction",
            )
            .at_most(0.5)
            .anchor(
                "Lua fib links a fraction of Lua's functions \
                 (llvm-jitlink-22 -lazy links whole objects)",
            );
        report.add("link_load_ms", bench::median(&mut load), "ms");
        report.add("link_link_time_ms", bench::median(&mut link), "ms");
        report.print_table();
        match report.write_json() {
            Ok(path) => println!("wrote {}", path.display()),
            Err(e) => eprintln!("cannot write the bench JSON: {e}"),
        }
        eprintln!(
            "object_linker bench: {:.1} s in all (Lua built in {:.1} s; fib({n}), {runs} round(s))",
            started.elapsed().as_secs_f64(),
            built.as_secs_f64()
        );
    }
}
