//! Runs last (`cargo bench` runs a package's bench targets in name order:
//! manager, runtime, session, summary): draws
//! `<target>/lazyrt-bench/report.html` and `first_calls.svg` from every
//! bench's output, so the page is complete after a full `cargo bench`.
//! The manager bench also redraws the page when it ends, so
//! `--bench manager` alone updates it too.
//!
//! ```text
//! cargo bench -p lazyrt-tests --bench summary   # redraw from what is there
//! ```

use lazyrt_tests::bench;

fn main() {
    match bench::html::write_report() {
        Ok(path) => println!(
            "lazyrt bench summary: wrote {} and {}",
            path.display(),
            bench::output_dir().join("first_calls.svg").display()
        ),
        Err(e) => {
            eprintln!("lazyrt bench summary: could not write the HTML report: {e}");
            std::process::exit(1);
        }
    }
}
