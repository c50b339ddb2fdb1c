//! The linker as a library: a JIT that produces object files loads them
//! into its session with `Program::load`, takes functions' addresses
//! (their lazy entries), and unloads them by dropping the program.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use std::path::{Path, PathBuf};
use std::process::Command;

use lazyrt::Session;
use lazyrt_linker::{LinkMode, LinkOptions, Program};

const MATH: &str = r#"
__thread int calls = 100;
int counter = 7;
__attribute__((noinline)) static int square(int x) { return x * x; }
int sum_of_squares(int n) {
    calls++;
    int total = 0;
    for (int i = 1; i <= n; i++) total += square(i);
    return total;
}
int calls_so_far(void) { return calls; }
int never_called(int x) { return x + counter; }
"#;

const USER: &str = r#"
int sum_of_squares(int n);
extern int counter;
int twice_sum(int n) { counter++; return 2 * sum_of_squares(n); }
"#;

fn compile(dir: &Path, name: &str, source: &str) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).expect("temp dir");
    let src = dir.join(format!("{name}.c"));
    let obj = dir.join(format!("{name}.o"));
    std::fs::write(&src, source).expect("write source");
    let status = match Command::new("cc")
        .args(["-c", "-O2", "-ffunction-sections", "-fdata-sections"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
    {
        Ok(status) => status,
        Err(e) => {
            eprintln!("SKIPPED: no C compiler ({e})");
            return None;
        }
    };
    assert!(status.success(), "cc failed on {name}.c");
    Some(obj)
}

fn objects(tag: &str) -> Option<Vec<PathBuf>> {
    let dir = std::env::temp_dir().join(format!(
        "lazyrt-linker-library-{}-{tag}",
        std::process::id()
    ));
    Some(vec![
        compile(&dir, "math", MATH)?,
        compile(&dir, "user", USER)?,
    ])
}

fn function(program: &Program, name: &str) -> extern "C" fn(i32) -> i32 {
    let address = program
        .symbol_address(name)
        .unwrap_or_else(|| panic!("{name} is defined"));
    // SAFETY: every function these tests call is `int f(int)`.
    unsafe { address.to_fn::<extern "C" fn(i32) -> i32>() }
}

#[test]
fn functions_are_linked_on_first_call_and_variables_are_shared() {
    let Some(objects) = objects("lazy") else {
        return;
    };
    let session = Session::new();
    let program = Program::load_files(&session, &objects, &LinkOptions::default()).expect("loads");
    assert!(!program.is_linked("twice_sum") && !program.is_linked("sum_of_squares"));
    let before = program.stats();
    assert_eq!(before.functions_linked, 0, "nothing runs at load");
    assert_eq!(function(&program, "twice_sum")(3), 28);
    assert!(program.is_linked("twice_sum") && program.is_linked("sum_of_squares"));
    assert!(
        !program.is_linked("never_called"),
        "a function never called is never linked"
    );
    // SAFETY: `counter` is an int of the program.
    let counter = unsafe { *program.symbol_address("counter").unwrap().to_ptr::<i32>() };
    assert_eq!(counter, 8, "twice_sum incremented the program's counter");
    assert_eq!(function(&program, "sum_of_squares")(4), 30);
    // calls_so_far takes an unused int argument in this signature; the TLS
    // copy of this thread started at 100 and saw two calls.
    assert_eq!(function(&program, "calls_so_far")(0), 102);
    let names: Vec<String> = program
        .functions()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("square@")),
        "locals get entries: {names:?}"
    );
}

#[test]
fn two_programs_in_one_session_have_their_own_data_and_thread_locals() {
    let Some(objects) = objects("two") else {
        return;
    };
    let session = Session::new();
    let a = Program::load_files(&session, &objects, &LinkOptions::default()).expect("loads a");
    let b = Program::load_files(&session, &objects, &LinkOptions::default()).expect("loads b");
    assert_ne!(a.symbol_address("counter"), b.symbol_address("counter"));
    function(&a, "twice_sum")(1);
    function(&a, "twice_sum")(1);
    assert_eq!(function(&a, "calls_so_far")(0), 102);
    assert_eq!(
        function(&b, "calls_so_far")(0),
        100,
        "b's thread-local is its own"
    );
    let thread_b = std::thread::spawn(move || function(&b, "calls_so_far")(0))
        .join()
        .expect("thread");
    assert_eq!(
        thread_b, 100,
        "a thread created after the load starts with the initial value"
    );
}

#[test]
fn eager_programs_are_linked_before_anything_runs() {
    let Some(objects) = objects("eager") else {
        return;
    };
    let session = Session::new();
    let options = LinkOptions {
        mode: LinkMode::Eager,
        ..LinkOptions::default()
    };
    let program = Program::load_files(&session, &objects, &options).expect("loads");
    let stats = program.stats();
    assert_eq!(stats.functions_linked, stats.functions);
    assert!(
        program.jit_dylib().is_none(),
        "eager programs need no entries"
    );
    assert_eq!(function(&program, "twice_sum")(2), 10);
}

#[test]
fn programs_load_and_unload_repeatedly() {
    let Some(objects) = objects("reload") else {
        return;
    };
    let session = Session::new();
    for round in 0..50 {
        let program =
            Program::load_files(&session, &objects, &LinkOptions::default()).expect("loads");
        assert_eq!(
            function(&program, "twice_sum")(round % 5),
            2 * (1..=round % 5).map(|i| i * i).sum::<i32>()
        );
        let name = program
            .jit_dylib()
            .expect("lazy programs have entries")
            .name()
            .to_string();
        drop(program);
        assert!(
            session.jit_dylib(&name).is_none(),
            "dropping a program removes its JITDylibs"
        );
    }
}
