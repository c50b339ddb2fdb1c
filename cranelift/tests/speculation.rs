//! Speculation through the Cranelift layer: callees compiled on an idle
//! dispatcher thread before their first call, and a speculative compile
//! that fails retried by the call that needs the function.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{body, collect_failures, sig};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{Function, InstBuilder, UserFuncName};
use lazyrt::{Session, SpeculationPolicy, ThreadPoolDispatcher};
use lazyrt_cranelift::{FuncId, LazyJit};

fn speculating_jit(depth: u32) -> (LazyJit, Arc<Mutex<Vec<String>>>) {
    let session = Session::builder()
        .dispatcher(Arc::new(ThreadPoolDispatcher::new(1)))
        .speculation(SpeculationPolicy::callees(depth))
        .build();
    let reports: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = reports.clone();
    session.set_error_reporter(move |e| seen.lock().unwrap().push(e.to_string()));
    (
        LazyJit::builder().session(session).build().unwrap(),
        reports,
    )
}

fn call(jit: &LazyJit, id: FuncId, x: i64) -> i64 {
    // SAFETY: every function here is i64 -> i64.
    let f: extern "C" fn(i64) -> i64 =
        unsafe { std::mem::transmute(jit.get_finalized_function(id).unwrap()) };
    f(x)
}

/// `main(x) = x > 0 ? callee(x) + 1 : 0`: `callee` runs only when asked.
fn define_main(jit: &LazyJit, main: FuncId, callee: FuncId) {
    jit.define_function(
        main,
        body(jit, main, |jit, b, p| {
            let r = jit.declare_func_in_func(callee, b.func).unwrap();
            let (then, done) = (b.create_block(), b.create_block());
            b.append_block_param(done, I64);
            let positive = b.ins().icmp_imm_s(IntCC::SignedGreaterThan, p[0], 0);
            let zero = b.ins().iconst(I64, 0);
            b.ins().brif(positive, then, &[], done, &[zero.into()]);
            b.switch_to_block(then);
            b.seal_block(then);
            let c = b.ins().call(r, &[p[0]]);
            let v = b.inst_results(c)[0];
            let v = b.ins().iadd_imm_s(v, 1);
            b.ins().jump(done, &[v.into()]);
            b.switch_to_block(done);
            b.seal_block(done);
            vec![b.block_params(done)[0]]
        }),
    )
    .unwrap();
}

fn wait_for(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `main -> a -> b -> c`, each call behind a branch on the argument.
fn chain(jit: &LazyJit) -> [FuncId; 4] {
    let ids: Vec<FuncId> = ["main", "a", "b", "c"]
        .iter()
        .map(|n| jit.declare_function(n, sig(jit, &[I64], I64)).unwrap())
        .collect();
    let [main, a, b, c] = [ids[0], ids[1], ids[2], ids[3]];
    define_main(jit, main, a);
    define_main(jit, a, b);
    define_main(jit, b, c);
    jit.define_function(
        c,
        body(jit, c, |_, b, p| vec![b.ins().imul_imm_s(p[0], 10)]),
    )
    .unwrap();
    jit.finalize_definitions().unwrap();
    [main, a, b, c]
}

#[test]
fn uncertain_callees_are_compiled_ahead_one_step_further() {
    for (depth, ahead) in [(1, 0), (2, 1), (4, 2)] {
        let (jit, reports) = speculating_jit(depth);
        let [main, a, b, c] = chain(&jit);
        assert_eq!(call(&jit, main, 0), 0); // compiles main only; calls nothing
        let expected = &[a, b][..ahead];
        wait_for("the callees to be compiled ahead", || {
            expected.iter().all(|f| jit.is_compiled(*f))
        });
        for f in expected {
            assert!(jit.was_compiled_speculatively(*f), "depth {depth}");
        }
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(jit.stats().speculative_compiles, ahead, "depth {depth}");
        assert!(!jit.is_compiled(c), "c is 6 steps away");
        assert_eq!(call(&jit, main, 4), 43);
        let stats = jit.stats();
        assert_eq!(stats.compiled, 4, "nothing compiled twice: {stats:?}");
        assert!(reports.lock().unwrap().is_empty());
    }
}

/// `main(x) = a(x) + b(x)`: both calls run whenever main does.
fn straight_line(jit: &LazyJit) -> [FuncId; 3] {
    let ids: Vec<FuncId> = ["main", "a", "b"]
        .iter()
        .map(|n| jit.declare_function(n, sig(jit, &[I64], I64)).unwrap())
        .collect();
    let [main, a, b] = [ids[0], ids[1], ids[2]];
    jit.define_function(
        main,
        body(jit, main, |jit, bd, p| {
            let (ra, rb) = (
                jit.declare_func_in_func(a, bd.func).unwrap(),
                jit.declare_func_in_func(b, bd.func).unwrap(),
            );
            let ca = bd.ins().call(ra, &[p[0]]);
            let va = bd.inst_results(ca)[0];
            let cb = bd.ins().call(rb, &[p[0]]);
            let vb = bd.inst_results(cb)[0];
            vec![bd.ins().iadd(va, vb)]
        }),
    )
    .unwrap();
    for (f, k) in [(a, 2), (b, 3)] {
        jit.define_function(
            f,
            body(jit, f, |_, bd, p| vec![bd.ins().imul_imm_s(p[0], k)]),
        )
        .unwrap();
    }
    jit.finalize_definitions().unwrap();
    [main, a, b]
}

#[test]
fn certain_entry_calls_are_compiled_ahead_at_depth_1() {
    let (jit, _reports) = speculating_jit(1);
    let [main, a, b] = straight_line(&jit);
    jit.compile(main).unwrap(); // demanded: its calls of a and b are certain
    wait_for("a and b compiled ahead", || {
        jit.is_compiled(a) && jit.is_compiled(b)
    });
    assert!(jit.was_compiled_speculatively(a));
    assert!(jit.was_compiled_speculatively(b));
    assert_eq!(call(&jit, main, 5), 25);
}

#[test]
fn a_called_function_speculates_what_its_caller_calls_next() {
    let (jit, _reports) = speculating_jit(1);
    let [main, a, b] = straight_line(&jit);
    // main compiled with no room for guesses: nothing ahead of its call.
    jit.session()
        .set_speculation(SpeculationPolicy::callees(1).queue_capacity(0));
    jit.compile(main).unwrap();
    assert!(!jit.is_compiled(a));
    jit.session().set_speculation(SpeculationPolicy::callees(1));
    // a compiled by a call: main goes on to b once a returns.
    jit.compile(a).unwrap();
    wait_for("b compiled ahead", || jit.is_compiled(b));
    assert!(jit.was_compiled_speculatively(b));
    assert!(!jit.was_compiled_speculatively(a));
    assert_eq!(call(&jit, main, 5), 25);
}

/// Defines `bad` so that every compile fails: its IR does not match its
/// declaration, or (with `builder`) its builder fails.
fn define_bad(jit: &LazyJit, bad: FuncId, builder: bool) {
    if builder {
        jit.define_function_with(bad, |_, _| Err("bad does not type-check".into()))
            .unwrap();
        return;
    }
    let mut wrong = Function::with_name_signature(UserFuncName::default(), sig(jit, &[], I64));
    let mut fctx = cranelift_frontend::FunctionBuilderContext::new();
    let mut b = cranelift_frontend::FunctionBuilder::new(&mut wrong, &mut fctx);
    let entry = b.create_block();
    b.switch_to_block(entry);
    b.seal_block(entry);
    let v = b.ins().iconst(I64, 7);
    b.ins().return_(&[v]);
    b.finalize(jit.isa().frontend_config());
    jit.define_function(bad, wrong).unwrap();
}

fn failed_speculation_is_retried_by_the_call(builder: bool, expected: &str) {
    // bad is behind a branch: an uncertain guess, 2 steps away.
    let (jit, reports) = speculating_jit(2);
    let main = jit
        .declare_function("main", sig(&jit, &[I64], I64))
        .unwrap();
    let bad = jit.declare_function("bad", sig(&jit, &[I64], I64)).unwrap();
    define_main(&jit, main, bad);
    define_bad(&jit, bad, builder);
    jit.finalize_definitions().unwrap();

    assert_eq!(call(&jit, main, 0), 0);
    wait_for("the speculative compile of bad to fail", || {
        jit.stats().speculative_failures == 1
    });
    assert!(!jit.has_failed(bad), "a speculative failure does not stick");
    assert_eq!(jit.stats().failed, 0);
    assert!(
        reports.lock().unwrap().is_empty(),
        "nobody called bad yet: {:?}",
        reports.lock().unwrap()
    );

    let (failures, _scope) = collect_failures();
    assert_eq!(call(&jit, main, 3), 0, "bad's fallback returns -1, plus 1");
    let failures = failures.lock().unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, "bad");
    assert!(failures[0].1.contains(expected), "{}", failures[0].1);
    assert_eq!(jit.stats().failed, 1, "compiled again by the call");
    assert!(jit.has_failed(bad), "the call's failure sticks as usual");
    assert!(reports.lock().unwrap().is_empty());
}

#[test]
fn a_failed_speculative_compile_is_retried_and_told_once_to_the_caller_that_needs_it() {
    failed_speculation_is_retried_by_the_call(false, "compiling bad: its IR has signature");
}

#[test]
fn a_builder_failing_in_speculation_is_told_once_to_the_caller_that_needs_it() {
    failed_speculation_is_retried_by_the_call(
        true,
        "compiling bad: building IR: bad does not type-check",
    );
}
