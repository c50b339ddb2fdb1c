//! `lazyrt`: `lazyrt demo` (the default) runs a generated Cranelift program
//! lazily compiled through lazyrt, and compares it with eager compilation.

use std::process::ExitCode;

use lazyrt_demo::Options;

const USAGE: &str = "usage: lazyrt [demo] [--functions N] [--threads T] [--seed S] [--eager] [--trace FILE] [--repeats R] [--json]

  demo            (default) generate N functions from seed S, call main on T threads,
                  compiling each function on its first call; then compile the same
                  program eagerly and compare times and every result
  --functions N   functions to generate (default 10000; 1000 with LAZYRT_QEMU set)
  --threads T     threads calling main with different inputs (default 2)
  --seed S        program seed (default 1)
  --eager         run the eager build first and trace it instead of the lazy one
  --trace FILE    write a Chrome/Perfetto trace (JSON trace events, one track per thread)
  --repeats R     steady-state calls of main per thread after the first (default 20)
  --json          also print the bench line (demo_first_result_lazy_ms, ...)";

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options::defaults();
    let mut i = 0;
    if args.first().map(String::as_str) == Some("demo") {
        i = 1;
    }
    while i < args.len() {
        let arg = args[i].as_str();
        let mut value = |name: &str| -> Result<String, String> {
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let number = |v: String, name: &str| -> Result<u64, String> {
            v.replace('_', "")
                .parse::<u64>()
                .map_err(|_| format!("{name}: not a number: {v}"))
        };
        match arg {
            "--functions" | "-n" => options.functions = number(value(arg)?, arg)?.max(4) as usize,
            "--threads" | "-t" => options.threads = number(value(arg)?, arg)?.max(1) as usize,
            "--seed" | "-s" => options.seed = number(value(arg)?, arg)?,
            "--repeats" => options.repeats = number(value(arg)?, arg)? as usize,
            "--trace" => options.trace = Some(value(arg)?.into()),
            "--eager" => options.eager = true,
            "--json" => options.json = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
        i += 1;
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("lazyrt: {e}");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    match lazyrt_demo::demo(&options) {
        Ok(report) => {
            print!("{}", report.render());
            if options.json {
                println!("{}", report.json());
            }
            if report.correct() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("lazyrt demo: {e}");
            ExitCode::FAILURE
        }
    }
}
