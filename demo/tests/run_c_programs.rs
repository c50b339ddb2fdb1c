//! End-to-end tests of `lazyrt run`, the lazy ELF object linker.
//!
//! Each program of `tests/c_programs/<name>/` is compiled with `cc -c` in
//! four modes (`-O2 -g` with a section per function and data object, `-O2`
//! with one `.text`, `-O0` with a section per function, `-O2 -fno-pic`),
//! linked natively and run; then its objects run under `lazyrt run` and `lazyrt run
//! --eager`, whose exit status, stdout and stderr must be identical to the
//! native run's. The native run must exit with the program's own non-zero
//! status, so a suite that runs nothing cannot pass. The programs cover jump
//! tables, hot/cold splitting, computed goto, thread-local storage in every
//! access model with threads, constructor and destructor order, weak and
//! COMMON symbols, function-pointer identity, setjmp/longjmp, stdio, environ
//! and libm, deep and mutual recursion across objects, many functions of
//! which few are called, varargs and structs by value.
//!
//! A program built without `-fPIC` that uses a library variable only a
//! static link's copy relocation serves (`environ`) must be refused at load
//! with the same exit status, naming it.
//!
//! Bad input must fail with exit status 125 and a `lazyrt run: error:`
//! naming the problem: a truncated object, a text file, an AArch64 object,
//! an undefined symbol, duplicate definitions, an unsupported relocation.
//! `--stats` must show that lazy linking leaves most functions unlinked.
//!
//! The tests skip (saying so on stderr) when there is no `cc`. Built on
//! x86-64 Linux only, the linker's target.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

#[path = "c_programs/harness.rs"]
mod harness;

use std::fs;

use harness::{Workdir, assert_link_error, can_run, compile_source, lazyrt_run, parse_stats};

/// One test per program (`name => the exit status of its main`), and the
/// list of them all.
macro_rules! c_programs {
    ($($name:ident => $exit:expr,)*) => {
        $(
            #[test]
            fn $name() {
                harness::check_program(stringify!($name), $exit);
            }
        )*
        const PROGRAMS: &[&str] = &[$(stringify!($name)),*];
    };
}

c_programs! {
    switch_tables => 42,
    cold_split => 3,
    computed_goto => 21,
    tls => 8,
    ctors_dtors => 7,
    weak_common => 33,
    fn_pointers => 12,
    setjmp_longjmp => 5,
    stdio_environ => 17,
    recursion => 9,
    many_functions => 77,
    varargs_structs => 55,
    intra_object_r11 => 11,
    unwind_backtrace => 13,
    section_sets => 19,
}

#[test]
fn every_program_directory_has_a_test() {
    let dir = harness::programs_dir();
    let mut found: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("cannot read a directory entry").path())
        .filter(|path| path.is_dir())
        .map(|path| {
            path.file_name()
                .expect("a directory has a name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    found.sort();
    let mut listed: Vec<String> = PROGRAMS.iter().map(|&p| String::from(p)).collect();
    listed.sort();
    assert_eq!(
        found,
        listed,
        "the directories of {} and the c_programs! list differ",
        dir.display()
    );
}

/// Runs `lazyrt run` and `lazyrt run --eager` on `objects`, asserting both
/// are link errors mentioning `mentions` (see [`assert_link_error`]).
fn both_fail(objects: &[&std::path::Path], what: &str, mentions: &[&[&str]]) {
    for eager in [false, true] {
        let mut args: Vec<&std::ffi::OsStr> = if eager {
            vec!["--eager".as_ref()]
        } else {
            Vec::new()
        };
        args.extend(objects.iter().map(|o| o.as_os_str()));
        let what = format!("{what}{}", if eager { " (--eager)" } else { "" });
        assert_link_error(&lazyrt_run(&args, &what), &what, mentions);
    }
}

const SMALL_MAIN: &str = "int main(void) { return 3; }\n";

#[test]
fn truncated_object_is_malformed() {
    if !can_run("truncated_object_is_malformed") {
        return;
    }
    let work = Workdir::new("truncated");
    let real =
        fs::read(compile_source(work.path(), "whole.c", SMALL_MAIN)).expect("cannot read whole.o");
    assert!(real.len() > 100, "whole.o is only {} bytes", real.len());
    let truncated = work.path().join("truncated.o");
    fs::write(&truncated, &real[..100]).expect("cannot write truncated.o");
    both_fail(
        &[&truncated],
        "a truncated object",
        &[&["malformed", "not an ELF"]],
    );
}

#[test]
fn text_file_is_not_an_elf() {
    if !can_run("text_file_is_not_an_elf") {
        return;
    }
    let work = Workdir::new("text");
    let text = work.path().join("x.o");
    fs::write(&text, "this is not an object file\n").expect("cannot write x.o");
    both_fail(&[&text], "a text file", &[&["malformed", "not an ELF"]]);
}

#[test]
fn aarch64_object_is_rejected() {
    if !can_run("aarch64_object_is_rejected") {
        return;
    }
    let work = Workdir::new("aarch64");
    let mut bytes =
        fs::read(compile_source(work.path(), "arm.c", SMALL_MAIN)).expect("cannot read arm.o");
    // e_machine, a little-endian u16 at offset 18: EM_X86_64 (62) becomes
    // EM_AARCH64 (183).
    assert_eq!(
        bytes[18..20],
        [62, 0],
        "arm.o is not an x86-64 object to begin with"
    );
    bytes[18..20].copy_from_slice(&183u16.to_le_bytes());
    let arm = work.path().join("arm64.o");
    fs::write(&arm, bytes).expect("cannot write arm64.o");
    both_fail(&[&arm], "an AArch64 object", &[&["not an x86-64"]]);
}

#[test]
fn undefined_symbol_names_symbol_and_object() {
    if !can_run("undefined_symbol_names_symbol_and_object") {
        return;
    }
    let work = Workdir::new("undefined");
    let main = compile_source(
        work.path(),
        "undef_main.c",
        "int nowhere_defined(int);\nint main(void) { return nowhere_defined(4) + 1; }\n",
    );
    both_fail(
        &[&main],
        "an undefined symbol",
        &[&["undefined symbol `nowhere_defined`"], &["undef_main.o"]],
    );
}

#[test]
fn duplicate_definitions_name_both_objects() {
    if !can_run("duplicate_definitions_name_both_objects") {
        return;
    }
    let work = Workdir::new("duplicate");
    let main = compile_source(
        work.path(),
        "dup_main.c",
        "int dup_fn(void);\nint main(void) { return dup_fn(); }\n",
    );
    let one = compile_source(work.path(), "dup_one.c", "int dup_fn(void) { return 1; }\n");
    let two = compile_source(work.path(), "dup_two.c", "int dup_fn(void) { return 2; }\n");
    both_fail(
        &[&main, &one, &two],
        "duplicate definitions",
        &[
            &["duplicate definition of `dup_fn`"],
            &["dup_one.o"],
            &["dup_two.o"],
        ],
    );
}

#[test]
fn unsupported_relocation_names_section() {
    if !can_run("unsupported_relocation_names_section") {
        return;
    }
    let work = Workdir::new("reloc");
    // main's own section holds an R_X86_64_GOTPLT64 (a large-model GOT
    // relocation), so even lazily it is met before main runs.
    let asm = "\t.section .text.main,\"ax\",@progbits\n\t.globl main\n\t.type main, @function\n\
               main:\n\txorl %eax, %eax\n\tret\n1:\t.quad 0\n\t.reloc 1b, R_X86_64_GOTPLT64, main\n\
               \t.size main, .-main\n\t.section .note.GNU-stack,\"\",@progbits\n";
    let obj = compile_source(work.path(), "bad_reloc.s", asm);
    both_fail(
        &[&obj],
        "an unsupported relocation",
        &[&["unsupported relocation"], &[".text.main"]],
    );
}

#[test]
fn stats_count_functions_never_linked() {
    if !can_run("stats_count_functions_never_linked") {
        return;
    }
    let program = harness::Program::load("many_functions");
    let work = Workdir::new("stats");
    let objects = program.compile(&harness::MODES[0], work.path());
    let stats = |options: &[&str]| {
        let what = format!("lazyrt run {} (many_functions)", options.join(" "));
        let out = program.run_lazyrt(options, &objects, &what);
        assert_eq!(
            out.status.code(),
            Some(77),
            "{what}: {}; stderr:\n{}",
            out.status_text(),
            out.stderr
        );
        parse_stats(&out.stderr).unwrap_or_else(|| {
            panic!("{what}: no `lazyrt run: functions: D defined, L linked, N never linked` line in stderr:\n{}", out.stderr)
        })
    };

    let (defined, linked, never) = stats(&["--stats"]);
    // 300 generated functions and main, of which main reaches about 16.
    assert!(
        defined >= 301,
        "lazy: {defined} functions defined, expected at least 301"
    );
    assert_eq!(
        linked + never,
        defined,
        "lazy: linked + never linked != defined"
    );
    assert!(linked >= 1, "lazy: no function linked, not even main");
    assert!(
        linked * 4 < defined,
        "lazy: {linked} of {defined} functions linked; main reaches about 16"
    );

    let (eager_defined, eager_linked, eager_never) = stats(&["--eager", "--stats"]);
    assert_eq!(
        eager_defined, defined,
        "--eager counts other functions than the lazy run"
    );
    assert_eq!(
        (eager_linked, eager_never),
        (defined, 0),
        "--eager: not every function was linked"
    );
}

#[test]
fn trace_has_one_event_per_link() {
    if !can_run("trace_has_one_event_per_link") {
        return;
    }
    let program = harness::Program::load("recursion");
    let work = Workdir::new("trace");
    let objects = program.compile(&harness::MODES[0], work.path());
    let trace = work.path().join("links.json");
    let trace_arg = trace.display().to_string();
    let out = program.run_lazyrt(
        &["--stats", "--trace", &trace_arg],
        &objects,
        "lazyrt run --trace (recursion)",
    );
    assert_eq!(
        out.status.code(),
        Some(9),
        "{}; stderr:\n{}",
        out.status_text(),
        out.stderr
    );
    let text = fs::read_to_string(&trace)
        .unwrap_or_else(|e| panic!("no trace at {}: {e}", trace.display()));
    let json: serde_json::Value = serde_json::from_str(&text).expect("the trace is JSON");
    let events = json["traceEvents"]
        .as_array()
        .expect("traceEvents is an array");
    let linked_units = out
        .stderr
        .lines()
        .find_map(|line| line.strip_prefix("lazyrt run: units: "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok())
        .expect("a `lazyrt run: units: N of M linked` line");
    assert_eq!(events.len(), linked_units, "one event per linked unit");
    assert!(
        events.iter().any(|e| e["name"] == "link main"),
        "main's link is in the trace"
    );
    for event in events {
        assert_eq!(event["ph"], "X");
        assert!(event["dur"].as_f64().is_some_and(|d| d >= 0.0));
    }
}

#[test]
fn hidden_references_are_not_bound_to_libraries() {
    if !can_run("hidden_references_are_not_bound_to_libraries") {
        return;
    }
    let work = Workdir::new("hidden");
    let object = compile_source(
        work.path(),
        "hidden_puts.c",
        "extern int puts(const char *) __attribute__((visibility(\"hidden\")));\n\
         int main(void) { puts(\"x\"); return 0; }\n",
    );
    let out = lazyrt_run(&[object.as_os_str()], "lazyrt run hidden_puts.o");
    assert_link_error(
        &out,
        "a hidden reference to puts",
        &[
            &["undefined symbol `puts`"],
            &["hidden_puts.o"],
            &["hidden"],
        ],
    );
}

const CXX_MAIN: &str = r#"
#include <cstdio>
#include <stdexcept>
int thrower(int depth);
int middle(int depth) { return thrower(depth) + 1; }
struct Noisy { ~Noisy() { std::printf("destroyed\n"); } };
static Noisy noisy;
int main() {
    int caught = 0;
    for (int i = 0; i < 3; i++) {
        try { middle(i); } catch (const std::runtime_error &e) { std::printf("caught %s\n", e.what()); caught++; }
    }
    return caught == 2 ? 4 : 1;
}
"#;

const CXX_THROWER: &str = r#"
#include <stdexcept>
#include <string>
inline int shared_inline(int x) { return x * 3; }
int thrower(int depth) {
    if (depth > 0) throw std::runtime_error("depth " + std::to_string(shared_inline(depth)));
    return 0;
}
"#;

/// C++ exceptions thrown and caught across lazily linked functions of two
/// objects (unwinding needs each object's `.eh_frame` registered and its
/// `.gcc_except_table`), COMDAT groups for inline functions and
/// `std::string`, and a static destructor through `__cxa_atexit`.
#[test]
fn cxx_exceptions_unwind_through_lazily_linked_code() {
    let work = Workdir::new("cxx");
    let mut objects = Vec::new();
    for (name, source) in [("cxx_main.cc", CXX_MAIN), ("cxx_thrower.cc", CXX_THROWER)] {
        let src = work.path().join(name);
        fs::write(&src, source).expect("write a C++ source");
        let obj = src.with_extension("o");
        match std::process::Command::new("c++")
            .args(["-c", "-O2", "-ffunction-sections", "-fdata-sections"])
            .arg(&src)
            .arg("-o")
            .arg(&obj)
            .status()
        {
            Ok(status) => assert!(status.success(), "c++ -c {name} failed"),
            Err(e) => {
                eprintln!(
                    "SKIPPED cxx_exceptions_unwind_through_lazily_linked_code: no C++ compiler ({e})"
                );
                return;
            }
        }
        objects.push(obj);
    }
    let native = work.path().join("cxx-native");
    let status = std::process::Command::new("c++")
        .args(&objects)
        .arg("-o")
        .arg(&native)
        .status()
        .expect("c++ links");
    assert!(status.success(), "native link failed");
    let expected = harness::run(
        &mut std::process::Command::new(&native),
        "native C++ program",
    );
    assert_eq!(
        expected.status.code(),
        Some(4),
        "native: {}",
        expected.stderr
    );
    for mode in [&[][..], &["--eager"][..]] {
        let mut args: Vec<std::ffi::OsString> = mode.iter().map(Into::into).collect();
        args.extend(["-l", "stdc++"].map(Into::into));
        args.extend(objects.iter().map(|o| o.clone().into_os_string()));
        let out = lazyrt_run(&args, "lazyrt run (C++)");
        assert_eq!(
            out.status.code(),
            Some(4),
            "{mode:?}: {}; stderr:\n{}",
            out.status_text(),
            out.stderr
        );
        assert_eq!(
            out.stdout, expected.stdout,
            "{mode:?}: stdout differs from the native run"
        );
    }
    // Without the library, the error says which one provides the names.
    let objects: Vec<&std::path::Path> = objects.iter().map(|o| o.as_path()).collect();
    both_fail(&objects, "C++ without -l stdc++", &[&["-l stdc++"]]);
}

#[test]
fn section_sets_mixing_const_and_writable_data_are_refused() {
    if !can_run("section_sets_mixing_const_and_writable_data_are_refused") {
        return;
    }
    // gcc refuses the mix within one file; across two files each object
    // has its own kind of `mixed` section, which ld would merge into one
    // writable run. The linker places a set as one run of one kind, so it
    // refuses, naming the set, instead of bounding unrelated data.
    let work = Workdir::new("mixed_set");
    let constant = compile_source(
        work.path(),
        "mixed_const.c",
        "const int a __attribute__((section(\"mixed\"), used)) = 1;\n\
         extern const int __start_mixed[], __stop_mixed[];\n\
         int main(void) { return (int)(__stop_mixed - __start_mixed); }\n",
    );
    let writable = compile_source(
        work.path(),
        "mixed_writable.c",
        "int b __attribute__((section(\"mixed\"), used)) = 2;\n",
    );
    let out = lazyrt_run(
        &[constant.as_os_str(), writable.as_os_str()],
        "lazyrt run mixed_const.o mixed_writable.o",
    );
    assert_link_error(
        &out,
        "a section set of two kinds",
        &[&["`__st"], &["mixed"], &["mixes"]],
    );
}

/// `ar ARGS...` in `dir`; false (saying so) if there is no `ar`.
fn ar(dir: &std::path::Path, args: &[&std::ffi::OsStr]) -> bool {
    match std::process::Command::new("ar")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "ar failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            true
        }
        Err(e) => {
            eprintln!("skipping: no `ar` ({e})");
            false
        }
    }
}

#[test]
fn archives_supply_the_members_the_program_needs() {
    if !can_run("archives_supply_the_members_the_program_needs") {
        return;
    }
    let program = harness::Program::load("many_functions");
    let work = Workdir::new("archive");
    let objects = program.compile(&harness::MODES[0], work.path());
    let (main, functions) = objects.split_last().expect("mf_main.o comes last");
    // Members nothing needs: a function nobody calls, and a file that is
    // not an object at all (never parsed, so no error).
    let unused = compile_source(
        work.path(),
        "unused.c",
        "int unused_fn(int x) { return x; }\n",
    );
    let not_object = work.path().join("notes.o");
    fs::write(&not_object, "not an object").expect("write notes.o");
    let mut members: Vec<&std::ffi::OsStr> = functions.iter().map(|o| o.as_os_str()).collect();
    members.extend([unused.as_os_str(), not_object.as_os_str()]);
    let with_index = work.path().join("libmf.a");
    let without_index = work.path().join("libmf_noindex.a");
    let thin = work.path().join("libmf_thin.a");
    for (archive, flags) in [
        (&with_index, &["rcs"][..]),
        (&without_index, &["qcS"][..]),
        (&thin, &["--thin", "rcs"][..]),
    ] {
        let mut args: Vec<&std::ffi::OsStr> = flags.iter().map(std::ffi::OsStr::new).collect();
        args.push(archive.as_os_str());
        args.extend(&members);
        if !ar(work.path(), &args) {
            return;
        }
    }
    let native = program.run_native(
        &program.link_native(&harness::MODES[0], &objects, work.path()),
        "many_functions native",
    );
    for archive in [&with_index, &without_index] {
        // The archive before the object that needs it: no order rule.
        let what = format!("lazyrt run {} mf_main.o", archive.display());
        let out = lazyrt_run(
            &[
                std::ffi::OsStr::new("--stats"),
                archive.as_os_str(),
                main.as_os_str(),
            ],
            &what,
        );
        assert_eq!(
            out.status.code(),
            native.status.code(),
            "{what}: {}",
            out.stderr
        );
        assert_eq!(out.stdout, native.stdout, "{what}");
        let (defined, _, _) = parse_stats(&out.stderr).expect("--stats line");
        assert_eq!(
            defined, 301,
            "{what}: the 300 functions and main, not the unused member's"
        );
    }
    let out = lazyrt_run(&[thin.as_os_str(), main.as_os_str()], "a thin archive");
    assert_link_error(
        &out,
        "a thin archive",
        &[&["thin archive"], &["libmf_thin.a"]],
    );
}

#[test]
fn archive_members_defining_tls_common_and_assembly_symbols_are_found() {
    if !can_run("archive_members_defining_tls_common_and_assembly_symbols_are_found") {
        return;
    }
    let work = Workdir::new("archive-kinds");
    // What an archive index may leave out, and what the members' own
    // symbol tables show: a thread-local variable, an initialised variable
    // the program declares COMMON-style, an untyped assembly function.
    let main = compile_source(
        work.path(),
        "main.c",
        "#include <stdio.h>\n\
         extern __thread int tls_value;\n\
         extern int table[4];\n\
         int untyped_add(int, int);\n\
         int main(void) {\n\
           tls_value += 2;\n\
           printf(\"%d %d %d\\n\", tls_value, table[3], untyped_add(40, 2));\n\
           return table[0] + untyped_add(tls_value, 1);\n\
         }\n",
    );
    let tls = compile_source(work.path(), "tls.c", "__thread int tls_value = 5;\n");
    let table = compile_source(work.path(), "table.c", "int table[4] = {1, 2, 3, 4};\n");
    let untyped = compile_source(
        work.path(),
        "untyped.s",
        ".text\n.globl untyped_add\nuntyped_add:\n  lea (%rdi,%rsi), %eax\n  ret\n",
    );
    let members = [tls.as_os_str(), table.as_os_str(), untyped.as_os_str()];
    // ld needs the index; lazyrt reads the members' own symbols either way.
    let indexed = work.path().join("libkinds.a");
    let unindexed = work.path().join("libkinds_noindex.a");
    for (archive, flags) in [(&indexed, "rcs"), (&unindexed, "qcS")] {
        let mut args = vec![std::ffi::OsStr::new(flags), archive.as_os_str()];
        args.extend(members);
        if !ar(work.path(), &args) {
            return;
        }
    }
    let exe = work.path().join("native");
    harness::cc(&[
        main.as_os_str(),
        indexed.as_os_str(),
        std::ffi::OsStr::new("-o"),
        exe.as_os_str(),
    ]);
    let native = harness::run(&mut std::process::Command::new(&exe), "native");
    assert_eq!(native.status.code(), Some(9), "native: {}", native.stderr);
    for (archive, eager) in [(&indexed, false), (&unindexed, false), (&unindexed, true)] {
        let mut options = vec![];
        if eager {
            options.push(std::ffi::OsStr::new("--eager"));
        }
        options.extend([main.as_os_str(), archive.as_os_str()]);
        let what = format!("{} (eager: {eager})", archive.display());
        let out = lazyrt_run(&options, &what);
        assert_eq!(out.status.code(), Some(9), "{what}: {}", out.stderr);
        assert_eq!(out.stdout, native.stdout, "{what}");
    }
}

#[test]
fn lto_objects_are_refused_naming_the_flag() {
    if !can_run("lto_objects_are_refused_naming_the_flag") {
        return;
    }
    let work = Workdir::new("lto");
    let source = work.path().join("lto.c");
    fs::write(&source, "int main(void) { return 3; }\n").expect("write lto.c");
    let object = work.path().join("lto.o");
    harness::cc(&[
        std::ffi::OsStr::new("-c"),
        std::ffi::OsStr::new("-O2"),
        std::ffi::OsStr::new("-flto"),
        source.as_os_str(),
        std::ffi::OsStr::new("-o"),
        object.as_os_str(),
    ]);
    both_fail(&[&object], "a gcc -flto object", &[&["-flto"], &["lto.o"]]);
}
