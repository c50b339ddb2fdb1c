//! `lazyrt-executor`: runs JIT'd code for a lazyrt controller. See
//! `lazyrt_executor::executor_main` for the options.

fn main() -> std::process::ExitCode {
    lazyrt_executor::executor_main(std::env::args().skip(1).collect())
}
