//! The drop-in promise: a toy-language frontend written once against
//! `cranelift_module::Module` runs on `cranelift_jit::JITModule` and on
//! lazyrt's `JITModule` with equal results: recursion, loops, host calls
//! (given symbols and `dlsym`), data objects with relocations to functions
//! and data, libcalls, function pointers. On lazyrt only the functions
//! called are compiled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I8, I64};
use cranelift_codegen::ir::{AbiParam, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_module::{DataDescription, DataId, FuncId, Linkage, Module, default_libcall_names};

/// The toy language: every value is an i64.
#[derive(Clone, Debug)]
enum Expr {
    Arg(usize),
    Num(i64),
    Add(Box<Expr>, Box<Expr>),
    Sub(Box<Expr>, Box<Expr>),
    Mul(Box<Expr>, Box<Expr>),
    /// 1 if a < b else 0.
    Lt(Box<Expr>, Box<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// A JIT'd function or a host function (by name).
    Call(&'static str, Vec<Expr>),
    /// `data[index]` of a data object (i64 elements).
    Load(&'static str, Box<Expr>),
    /// `data[index] = value`, yields value.
    Store(&'static str, Box<Expr>, Box<Expr>),
    /// `let acc = init; i = 0; while i < n { acc = body(acc, i); i += 1 }`:
    /// in `body`, `Arg(100)` is acc and `Arg(101)` is i.
    Loop {
        n: Box<Expr>,
        init: Box<Expr>,
        body: Box<Expr>,
    },
    /// The address of a function, called indirectly with one argument.
    CallPtr(Box<Expr>, Box<Expr>),
    /// Fills `len` bytes of data object `buffer` with `byte` (memset), then
    /// sums the first `len` bytes (memcpy'd to the second half, compared
    /// with memcmp): exercises the libcalls.
    Fill(&'static str, Box<Expr>, Box<Expr>),
}

use Expr::*;

fn b(e: Expr) -> Box<Expr> {
    Box::new(e)
}

/// A data object: name, writable, contents as i64s, relocations (element
/// index, function or data name).
type DataObject = (&'static str, bool, Vec<i64>, Vec<(usize, &'static str)>);

struct Program {
    functions: Vec<(&'static str, usize, Expr)>,
    /// Host functions: name, arity.
    imports: Vec<(&'static str, usize)>,
    data: Vec<DataObject>,
}

/// Everything the frontend needs beyond `Module`: finalization and
/// addresses are inherent methods of each JITModule.
trait Jit: Module {
    fn finalize(&mut self);
    fn function(&self, id: FuncId) -> *const u8;
    fn data(&self, id: DataId) -> (*const u8, usize);
}

impl Jit for cranelift_jit::JITModule {
    fn finalize(&mut self) {
        self.finalize_definitions().unwrap();
    }
    fn function(&self, id: FuncId) -> *const u8 {
        self.get_finalized_function(id)
    }
    fn data(&self, id: DataId) -> (*const u8, usize) {
        self.get_finalized_data(id)
    }
}

impl Jit for lazyrt_cranelift::JITModule {
    fn finalize(&mut self) {
        self.finalize_definitions().unwrap();
    }
    fn function(&self, id: FuncId) -> *const u8 {
        self.get_finalized_function(id)
    }
    fn data(&self, id: DataId) -> (*const u8, usize) {
        self.get_finalized_data(id)
    }
}

struct Names {
    funcs: HashMap<&'static str, FuncId>,
    data: HashMap<&'static str, DataId>,
}

fn signature(module: &impl Module, arity: usize) -> cranelift_codegen::ir::Signature {
    let mut sig = module.make_signature();
    sig.params.extend((0..arity).map(|_| AbiParam::new(I64)));
    sig.returns.push(AbiParam::new(I64));
    sig
}

/// The frontend: declares, defines and finalizes `program` in `module`.
fn load<M: Jit>(module: &mut M, program: &Program) -> Names {
    let mut names = Names {
        funcs: HashMap::new(),
        data: HashMap::new(),
    };
    for (name, arity) in &program.imports {
        let sig = signature(module, *arity);
        let id = module
            .declare_function(name, Linkage::Import, &sig)
            .unwrap();
        names.funcs.insert(name, id);
    }
    for (name, arity, _) in &program.functions {
        let sig = signature(module, *arity);
        let id = module
            .declare_function(name, Linkage::Export, &sig)
            .unwrap();
        // A second, compatible declaration is the same function.
        assert_eq!(
            module.declare_function(name, Linkage::Local, &sig).unwrap(),
            id
        );
        names.funcs.insert(name, id);
    }
    for (name, writable, _, _) in &program.data {
        let id = module
            .declare_data(name, Linkage::Export, *writable, false)
            .unwrap();
        names.data.insert(name, id);
    }
    for (name, _, contents, relocs) in &program.data {
        let mut description = DataDescription::new();
        let bytes: Vec<u8> = contents.iter().flat_map(|v| v.to_le_bytes()).collect();
        description.define(bytes.into_boxed_slice());
        for (index, target) in relocs {
            let offset = (*index * 8) as u32;
            if let Some(func) = names.funcs.get(target) {
                let r = module.declare_func_in_data(*func, &mut description);
                description.write_function_addr(offset, r);
            } else {
                let gv = module.declare_data_in_data(names.data[target], &mut description);
                description.write_data_addr(offset, gv, 0);
            }
        }
        module.define_data(names.data[name], &description).unwrap();
    }
    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    for (name, arity, body) in &program.functions {
        ctx.func.signature = signature(module, *arity);
        let mut builder = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let entry = builder.create_block();
        builder.append_block_params_for_function_params(entry);
        builder.switch_to_block(entry);
        builder.seal_block(entry);
        let args = builder.block_params(entry).to_vec();
        let mut emit = Emit {
            module: &mut *module,
            names: &names,
            args,
            locals: HashMap::new(),
        };
        let result = emit.expr(&mut builder, body);
        builder.ins().return_(&[result]);
        builder.finalize(module.target_config());
        module.define_function(names.funcs[name], &mut ctx).unwrap();
        module.clear_context(&mut ctx);
    }
    module.finalize();
    names
}

struct Emit<'a, M: Module> {
    module: &'a mut M,
    names: &'a Names,
    args: Vec<Value>,
    locals: HashMap<usize, Variable>,
}

impl<M: Module> Emit<'_, M> {
    fn data_base(&mut self, b: &mut FunctionBuilder<'_>, name: &str) -> Value {
        let gv = self
            .module
            .declare_data_in_func(self.names.data[name], b.func);
        b.ins().symbol_value(I64, gv)
    }

    fn element(&mut self, b: &mut FunctionBuilder<'_>, name: &str, index: &Expr) -> Value {
        let base = self.data_base(b, name);
        let index = self.expr(b, index);
        let offset = b.ins().imul_imm_s(index, 8);
        b.ins().iadd(base, offset)
    }

    fn expr(&mut self, b: &mut FunctionBuilder<'_>, e: &Expr) -> Value {
        match e {
            Arg(i) if *i >= 100 => b.use_var(self.locals[i]),
            Arg(i) => self.args[*i],
            Num(n) => b.ins().iconst(I64, *n),
            Add(x, y) | Sub(x, y) | Mul(x, y) | Lt(x, y) => {
                let (x, y) = (self.expr(b, x), self.expr(b, y));
                match e {
                    Add(..) => b.ins().iadd(x, y),
                    Sub(..) => b.ins().isub(x, y),
                    Mul(..) => b.ins().imul(x, y),
                    _ => {
                        let c = b.ins().icmp(IntCC::SignedLessThan, x, y);
                        b.ins().uextend(I64, c)
                    }
                }
            }
            If(c, t, f) => {
                let c = self.expr(b, c);
                let (tb, fb, join) = (b.create_block(), b.create_block(), b.create_block());
                b.append_block_param(join, I64);
                b.ins().brif(c, tb, &[], fb, &[]);
                for (block, arm) in [(tb, t), (fb, f)] {
                    b.switch_to_block(block);
                    b.seal_block(block);
                    let v = self.expr(b, arm);
                    b.ins().jump(join, &[v.into()]);
                }
                b.switch_to_block(join);
                b.seal_block(join);
                b.block_params(join)[0]
            }
            Call(name, args) => {
                let callee = self
                    .module
                    .declare_func_in_func(self.names.funcs[name], b.func);
                let args: Vec<Value> = args.iter().map(|a| self.expr(b, a)).collect();
                let call = b.ins().call(callee, &args);
                b.inst_results(call)[0]
            }
            Load(name, index) => {
                let at = self.element(b, name, index);
                b.ins().load(I64, MemFlagsData::trusted(), at, 0)
            }
            Store(name, index, value) => {
                let at = self.element(b, name, index);
                let v = self.expr(b, value);
                b.ins().store(MemFlagsData::trusted(), v, at, 0);
                v
            }
            Loop { n, init, body } => {
                let (acc, i) = (b.declare_var(I64), b.declare_var(I64));
                self.locals.insert(100, acc);
                self.locals.insert(101, i);
                let (n, init) = (self.expr(b, n), self.expr(b, init));
                b.def_var(acc, init);
                let zero = b.ins().iconst(I64, 0);
                b.def_var(i, zero);
                let (head, body_block, exit) =
                    (b.create_block(), b.create_block(), b.create_block());
                b.ins().jump(head, &[]);
                b.switch_to_block(head);
                let iv = b.use_var(i);
                let go = b.ins().icmp(IntCC::SignedLessThan, iv, n);
                b.ins().brif(go, body_block, &[], exit, &[]);
                b.switch_to_block(body_block);
                b.seal_block(body_block);
                let next = self.expr(b, body);
                b.def_var(acc, next);
                let iv = b.use_var(i);
                let iv = b.ins().iadd_imm_s(iv, 1);
                b.def_var(i, iv);
                b.ins().jump(head, &[]);
                b.seal_block(head);
                b.switch_to_block(exit);
                b.seal_block(exit);
                b.use_var(acc)
            }
            CallPtr(f, x) => {
                let f = self.expr(b, f);
                let x = self.expr(b, x);
                let sig = b.import_signature(signature(self.module, 1));
                let call = b.ins().call_indirect(sig, f, &[x]);
                b.inst_results(call)[0]
            }
            Fill(buffer, len, byte) => {
                let base = self.data_base(b, buffer);
                let len = self.expr(b, len);
                let byte = self.expr(b, byte);
                let byte = b.ins().ireduce(I8, byte);
                let config = self.module.target_config();
                b.call_memset(config, base, byte, len);
                let half = b.ins().iadd_imm_s(base, 64);
                b.call_memcpy(config, half, base, len);
                let same = b.call_memcmp(config, base, half, len);
                let same = b.ins().sextend(I64, same);
                let first = b.ins().uload8(I64, MemFlagsData::trusted(), half, 0);
                let sum = b.ins().imul(first, len);
                b.ins().iadd(sum, same)
            }
        }
    }
}

extern "C" fn host_add(a: i64, b: i64) -> i64 {
    a + b + 1000
}

fn program() -> Program {
    let fib = If(
        b(Lt(b(Arg(0)), b(Num(2)))),
        b(Arg(0)),
        b(Add(
            b(Call("fib", vec![Sub(b(Arg(0)), b(Num(1)))])),
            b(Call("fib", vec![Sub(b(Arg(0)), b(Num(2)))])),
        )),
    );
    let mut functions = vec![
        ("fib", 1, fib),
        // sum of i*i for i < n, through a helper
        (
            "sum_squares",
            1,
            Loop {
                n: b(Arg(0)),
                init: b(Num(0)),
                body: b(Add(b(Arg(100)), b(Call("square", vec![Arg(101)])))),
            },
        ),
        ("square", 1, Mul(b(Arg(0)), b(Arg(0)))),
        ("host", 2, Call("host_add", vec![Arg(0), Arg(1)])),
        ("labs_of", 1, Call("labs", vec![Arg(0)])),
        ("prime", 1, Load("primes", b(Arg(0)))),
        (
            "bump",
            1,
            Store(
                "counter",
                b(Num(0)),
                b(Add(b(Load("counter", b(Num(0)))), b(Arg(0)))),
            ),
        ),
        // table[0] is &fib: call it through the pointer in data
        (
            "via_table",
            1,
            CallPtr(b(Load("table", b(Num(0)))), b(Arg(0))),
        ),
        // table[1] is &primes: the data pointer equals primes' address
        ("table_primes", 0, Load("table", b(Num(1)))),
        ("fill", 2, Fill("buffer", b(Arg(0)), b(Arg(1)))),
    ];
    // Functions nobody calls: a lazy JIT never compiles them.
    for (i, name) in ["unused0", "unused1", "unused2", "unused3"]
        .iter()
        .enumerate()
    {
        functions.push((name, 1, Mul(b(Arg(0)), b(Num(i as i64 + 7)))));
    }
    Program {
        functions,
        imports: vec![("host_add", 2), ("labs", 1)],
        data: vec![
            ("primes", false, vec![2, 3, 5, 7, 11, 13], vec![]),
            ("counter", true, vec![40], vec![]),
            ("table", false, vec![0, 0], vec![(0, "fib"), (1, "primes")]),
            ("buffer", true, vec![0; 16], vec![]),
        ],
    }
}

/// Runs the program's functions; every result in order.
fn run<M: Jit>(module: &M, names: &Names) -> Vec<i64> {
    let f1 = |name: &str| -> extern "C" fn(i64) -> i64 {
        // SAFETY: declared with one i64 parameter and an i64 result.
        unsafe { std::mem::transmute(module.function(names.funcs[name])) }
    };
    let f2 = |name: &str| -> extern "C" fn(i64, i64) -> i64 {
        // SAFETY: two i64 parameters, an i64 result.
        unsafe { std::mem::transmute(module.function(names.funcs[name])) }
    };
    // SAFETY: no parameters, an i64 result.
    let table_primes: extern "C" fn() -> i64 =
        unsafe { std::mem::transmute(module.function(names.funcs["table_primes"])) };
    let (primes, primes_len) = module.data(names.data["primes"]);
    let (counter, _) = module.data(names.data["counter"]);
    let mut results = vec![
        f1("fib")(20),
        f1("sum_squares")(100),
        f2("host")(1, 2),
        f1("labs_of")(-42),
        f1("prime")(4),
        f1("bump")(2),
        f1("bump")(3),
        f1("via_table")(15),
        (table_primes() == primes as i64) as i64,
        primes_len as i64,
        f2("fill")(10, 7),
    ];
    // SAFETY: `counter` is a writable i64 data object.
    results.push(unsafe { *(counter as *const i64) });
    results
}

#[test]
fn a_module_generic_frontend_gives_the_same_results_on_cranelift_jit_and_lazyrt() {
    let program = program();

    let mut builder = cranelift_jit::JITBuilder::new(default_libcall_names()).unwrap();
    builder.symbol("host_add", host_add as *const u8);
    let mut eager = cranelift_jit::JITModule::new(builder);
    let eager_names = load(&mut eager, &program);
    let expected = run(&eager, &eager_names);

    let mut builder = lazyrt_cranelift::JITBuilder::new(default_libcall_names()).unwrap();
    builder.symbol("host_add", host_add as *const u8);
    let mut lazy = lazyrt_cranelift::JITModule::new(builder);
    let names = load(&mut lazy, &program);
    assert_eq!(
        lazy.lazy_jit().stats().compiled,
        0,
        "nothing compiles before a call"
    );
    let got = run(&lazy, &names);

    assert_eq!(got, expected);
    assert_eq!(
        expected,
        [6765, 328_350, 1003, 42, 11, 42, 45, 610, 1, 48, 70, 45]
    );
    // Only what was called compiled: not the four unused functions.
    let jit = lazy.lazy_jit();
    for name in ["unused0", "unused1", "unused2", "unused3"] {
        assert!(!jit.is_compiled(names.funcs[name]), "{name} compiled");
    }
    let called = program.functions.len() - 4;
    assert_eq!(jit.stats().compiled, called);
    // Function pointers are the stubs: stable before and after compiling.
    assert_eq!(
        lazy.get_finalized_function(names.funcs["fib"]),
        jit.get_finalized_function(names.funcs["fib"]).unwrap()
    );
}

#[test]
fn through_the_module_api_a_caller_of_a_missing_function_fails_then_works_once_it_is_defined() {
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = failures.clone();
    let _scope = lazyrt::FailureHandlerScope::new(move |f: &lazyrt::ResolveFailure<'_>| {
        seen.lock()
            .unwrap()
            .push(format!("{}: {}", f.name, f.reason));
        lazyrt::Recovery::Jump(
            std::ptr::NonNull::new(minus_one as extern "C" fn(i64) -> i64 as *mut _).unwrap(),
        )
    });
    let program = Program {
        functions: vec![("uses_later", 1, Call("later", vec![Arg(0)]))],
        // Declared here as an import too: the linkages merge to Export.
        imports: vec![("later", 1)],
        data: vec![],
    };
    let mut module = lazyrt_cranelift::JITModule::new(
        lazyrt_cranelift::JITBuilder::new(default_libcall_names()).unwrap(),
    );
    // `later` is declared (Export) but not defined, and no host symbol.
    let later_sig = signature(&module, 1);
    let later = module
        .declare_function("later", Linkage::Export, &later_sig)
        .unwrap();
    let names = load(&mut module, &program);
    // SAFETY: i64 -> i64.
    let uses_later: extern "C" fn(i64) -> i64 =
        unsafe { std::mem::transmute(module.get_finalized_function(names.funcs["uses_later"])) };
    assert_eq!(uses_later(4), -1);
    {
        let failures = failures.lock().unwrap();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(
            failures[0].starts_with("uses_later: ")
                && failures[0].contains(
                    "compiling uses_later: it calls later, which is declared but neither defined"
                ),
            "{}",
            failures[0]
        );
    }
    // Define `later` now: the caller needs no new definition.
    let mut ctx = module.make_context();
    ctx.func.signature = later_sig;
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let x = b.block_params(entry)[0];
    let y = b.ins().imul_imm_s(x, 10);
    b.ins().return_(&[y]);
    b.finalize(module.target_config());
    module.define_function(later, &mut ctx).unwrap();
    module.finalize_definitions().unwrap();
    assert_eq!(uses_later(4), 40);
    assert_eq!(failures.lock().unwrap().len(), 1);
}

extern "C" fn minus_one(_: i64) -> i64 {
    -1
}
