//! The committed header (`include/lazyrt.h`) is what cbindgen generates
//! from the crate now: the C side cannot drift from the Rust side. With
//! `LAZYRT_BLESS=1` the test rewrites the header instead.
//!
//! Also: every exported function runs its body inside the panic boundary.

use std::path::Path;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn committed_header_matches_the_rust_side() {
    let config =
        cbindgen::Config::from_file(crate_dir().join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir())
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("UTF-8 header");
    let path = crate_dir().join("include/lazyrt.h");
    if std::env::var_os("LAZYRT_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write include/lazyrt.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || committed.lines().count().min(generated.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "capi/include/lazyrt.h is out of date with capi/src (first difference at line {line}); \
             regenerate it with `LAZYRT_BLESS=1 cargo test -p lazyrt-capi --test header` and commit it"
        );
    }
}

/// Every `extern "C"` function says which threads may call it, and its
/// body starts inside the boundary
/// (`run`, `run_value` or `run_reporting`): no export can let a panic out
/// by forgetting it (rustls-ffi #286).
#[test]
fn every_export_states_its_threads_and_runs_inside_the_panic_boundary() {
    let mut exports = 0;
    for file in std::fs::read_dir(crate_dir().join("src")).expect("src") {
        let path = file.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.trim_start().starts_with("#[unsafe(no_mangle)]") {
                continue;
            }
            exports += 1;
            // Its doc comment (the lines above the attribute) says which
            // threads may call it.
            let mut doc_lines: Vec<&str> = lines[..i]
                .iter()
                .rev()
                .take_while(|l| l.trim_start().starts_with("///"))
                .copied()
                .collect();
            doc_lines.reverse();
            // The description, not the `# Safety` section.
            let doc: String = doc_lines
                .iter()
                .take_while(|l| !l.contains("# Safety"))
                .map(|l| l.to_lowercase())
                .collect();
            assert!(
                doc.contains("thread"),
                "{}:{}: the export's documentation does not say which threads may call it",
                path.display(),
                i + 1
            );
            // The first statement after the signature's `{`.
            let open = (i..lines.len())
                .find(|&j| lines[j].trim_end().ends_with('{'))
                .expect("body");
            let body = lines[open + 1..]
                .iter()
                .map(|l| l.trim())
                .find(|l| !l.is_empty() && !l.starts_with("const F:"))
                .expect("statement");
            assert!(
                body.starts_with("run(")
                    || body.starts_with("boundary::run_value(")
                    || body.starts_with("run_value(")
                    || body.starts_with("boundary::run_reporting("),
                "{}:{}: the export's body does not start with the panic boundary: {body}",
                path.display(),
                i + 1
            );
        }
    }
    assert!(exports >= 60, "found only {exports} exports");
}
