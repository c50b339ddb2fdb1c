//! The generated program: `n` functions from a seed.
//!
//! Every function takes a depth budget `d: i64` first; when `d <= 0` it
//! returns without calling anything, otherwise its calls pass `d - 1`. So
//! calls may go anywhere (backwards, to itself, to its partner `i ^ 1`:
//! recursion and mutual recursion) and every run terminates. Which call sites
//! run depends on the arguments, so only part of the program is reachable
//! from `main` for given inputs. Signatures: `(d, a: i64, b: i64) -> i64`
//! (most), `(d, x: f64, y: f64, a: i64) -> f64`, and a few with 10 to 15
//! parameters mixing i64 and f64. Bodies are built from a per-function seed,
//! so one function's IR can be built alone (lazily).

use std::sync::Arc;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F64, I64};
use cranelift_codegen::ir::{
    AbiParam, Function, InstBuilder, Signature, Type, UserFuncName, Value,
};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use lazyrt_cranelift::{FuncId, LazyJit};

/// splitmix64.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    /// Next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    /// True with probability `percent`%.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

/// One function's declaration.
#[derive(Debug, Clone)]
pub struct Decl {
    /// Its symbol.
    pub name: String,
    /// Parameters after `d`.
    pub params: Vec<Type>,
    /// Return type.
    pub ret: Type,
}

/// A generated program. Function 0 is `main(d, a, b) -> i64`.
#[derive(Debug)]
pub struct Program {
    /// The seed.
    pub seed: u64,
    /// The functions.
    pub decls: Vec<Decl>,
    /// Functions of signature `(d, i64, i64) -> i64` (targets of pointers).
    pub int_fns: Vec<usize>,
    /// Functions with more than 8 parameters.
    pub many_fns: Vec<usize>,
    /// The depth budget `main` is called with.
    pub depth: i64,
}

impl Program {
    /// Generates `n` (at least 4) function declarations from `seed`.
    pub fn generate(seed: u64, n: usize) -> Arc<Self> {
        let n = n.max(4);
        let mut rng = Rng::new(seed);
        let mut decls = Vec::with_capacity(n);
        let (mut int_fns, mut many_fns) = (Vec::new(), Vec::new());
        for i in 0..n {
            let roll = rng.below(100);
            let (params, ret) = if i == 0 || roll < 70 {
                int_fns.push(i);
                (vec![I64, I64], I64)
            } else if roll < 96 || i < 3 {
                (vec![F64, F64, I64], F64)
            } else {
                many_fns.push(i);
                let count = 10 + rng.below(6);
                let params = (0..count)
                    .map(|k| match k % 3 {
                        0 => I64,
                        1 => F64,
                        _ if rng.chance(50) => I64,
                        _ => F64,
                    })
                    .collect();
                (params, if rng.chance(50) { I64 } else { F64 })
            };
            let name = if i == 0 {
                "main".to_string()
            } else {
                format!("f{i}")
            };
            decls.push(Decl { name, params, ret });
        }
        if many_fns.is_empty() {
            // Always have some: make the last function a many-argument one.
            let last = n - 1;
            int_fns.retain(|&f| f != last);
            decls[last].params = vec![I64, F64, I64, F64, I64, F64, I64, F64, I64, F64, I64];
            decls[last].ret = I64;
            many_fns.push(last);
        }
        // Depth: the reachable part grows about 1.7x per level.
        let depth = ((n as f64 * 0.35).ln() / 1.7f64.ln())
            .ceil()
            .clamp(3.0, 40.0) as i64;
        Arc::new(Self {
            seed,
            decls,
            int_fns,
            many_fns,
            depth,
        })
    }

    /// Number of functions.
    pub fn len(&self) -> usize {
        self.decls.len()
    }

    /// Never true (at least 4 functions).
    pub fn is_empty(&self) -> bool {
        self.decls.is_empty()
    }

    /// The arguments `main` gets on thread `thread` (after `d`).
    pub fn inputs(&self, thread: usize) -> (i64, i64) {
        let mut rng = Rng::new(self.seed.wrapping_mul(31).wrapping_add(thread as u64 + 1));
        (rng.next_u64() as i64, rng.next_u64() as i64)
    }

    /// The Cranelift signature of function `i`.
    pub fn signature(&self, i: usize, base: &Signature) -> Signature {
        let mut s = base.clone();
        s.params.push(AbiParam::new(I64));
        s.params
            .extend(self.decls[i].params.iter().map(|t| AbiParam::new(*t)));
        s.returns.push(AbiParam::new(self.decls[i].ret));
        s
    }

    /// Declares every function in `jit` and defines each with a closure that
    /// builds its IR on first use. Returns the ids (index = function).
    pub fn load(
        self: &Arc<Self>,
        jit: &LazyJit,
    ) -> Result<Arc<Vec<FuncId>>, lazyrt_cranelift::JitError> {
        let base = jit.make_signature();
        let ids: Vec<FuncId> = (0..self.len())
            .map(|i| jit.declare_function(&self.decls[i].name, self.signature(i, &base)))
            .collect::<Result<_, _>>()?;
        let ids = Arc::new(ids);
        for (i, &id) in ids.iter().enumerate() {
            let (program, all) = (self.clone(), ids.clone());
            jit.define_function_with(id, move |jit, id| Ok(program.build(i, jit, id, &all)))?;
        }
        Ok(ids)
    }

    /// Builds the IR of function `i`.
    pub fn build(&self, i: usize, jit: &LazyJit, id: FuncId, ids: &[FuncId]) -> Function {
        let decl = &self.decls[i];
        let base = jit.make_signature();
        let sig = self.signature(i, &base);
        let mut func = Function::with_name_signature(UserFuncName::user(0, id.as_u32()), sig);
        let mut fctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let mut rng = Rng::new(self.seed ^ (i as u64).wrapping_mul(0xd1b5_4a32_d192_ed03));
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        b.seal_block(entry);
        let params = b.block_params(entry).to_vec();
        let d = params[0];
        let mut ints: Vec<Value> = Vec::new();
        let mut floats: Vec<Value> = Vec::new();
        for (v, t) in params[1..].iter().zip(&decl.params) {
            if *t == I64 {
                ints.push(*v)
            } else {
                floats.push(*v)
            }
        }
        let inputs: Vec<Value> = ints.clone();
        while ints.len() < 2 {
            let c = rng.next_u64() as i64 >> 20;
            ints.push(b.ins().iconst(I64, c));
        }
        if floats.is_empty() {
            let c = (rng.below(1000) as f64) / 7.0;
            floats.push(b.ins().f64const(c));
        }
        // Straight-line arithmetic.
        for _ in 0..3 + rng.below(8) {
            arith(&mut b, &mut rng, &mut ints, &mut floats);
        }
        let leaf = b.create_block();
        let calls = b.create_block();
        let small = b.ins().icmp_imm_s(IntCC::SignedLessThanOrEqual, d, 0);
        b.ins().brif(small, leaf, &[], calls, &[]);
        b.switch_to_block(leaf);
        b.seal_block(leaf);
        let r = combine(&mut b, &ints, &floats, decl.ret);
        b.ins().return_(&[r]);

        b.switch_to_block(calls);
        b.seal_block(calls);
        let d1 = b.ins().iadd_imm_s(d, -1);
        let sites = match rng.below(10) {
            0..=4 => 1,
            5..=8 => 2,
            _ => 3,
        };
        for site in 0..sites {
            // main always calls a many-argument function and a pointer.
            let kind = if i == 0 && site == 0 {
                3
            } else if i == 0 && site == 1 {
                2
            } else {
                rng.below(10)
            };
            // Data-dependent condition on an input (or a computed value).
            let v = if inputs.is_empty() {
                ints[rng.below(ints.len())]
            } else {
                inputs[rng.below(inputs.len())]
            };
            let shift = b.ins().iconst(I64, rng.below(48) as i64);
            let v = b.ins().ushr(v, shift);
            let bit = b.ins().band_imm_s(v, 1 << rng.below(3));
            let cond = b.ins().icmp_imm_s(IntCC::Equal, bit, 0);
            match kind {
                // Direct call: self, partner, or anyone.
                0..=4 => {
                    let target = self.pick_target(&mut rng, i);
                    let r = self.emit_call(&mut b, jit, ids, target, d1, &mut rng, &ints, &floats);
                    push(&mut ints, &mut floats, self.decls[target].ret, r);
                }
                // Conditional: one of two calls.
                5..=7 => {
                    let (t1, t2) = (self.pick_target(&mut rng, i), self.pick_target(&mut rng, i));
                    let (yes, no, join) = (b.create_block(), b.create_block(), b.create_block());
                    b.append_block_param(join, I64);
                    b.ins().brif(cond, yes, &[], no, &[]);
                    for (block, target) in [(yes, t1), (no, t2)] {
                        b.switch_to_block(block);
                        b.seal_block(block);
                        let r =
                            self.emit_call(&mut b, jit, ids, target, d1, &mut rng, &ints, &floats);
                        let r = to_int(&mut b, r, self.decls[target].ret);
                        b.ins().jump(join, &[r.into()]);
                    }
                    b.switch_to_block(join);
                    b.seal_block(join);
                    ints.push(b.block_params(join)[0]);
                }
                // Through a function pointer chosen at run time.
                _ => {
                    let t1 = self.int_fns[rng.below(self.int_fns.len())];
                    let t2 = self.int_fns[rng.below(self.int_fns.len())];
                    let r1 = jit.declare_func_in_func(ids[t1], b.func).expect("declared");
                    let r2 = jit.declare_func_in_func(ids[t2], b.func).expect("declared");
                    let p1 = b.ins().func_addr(I64, r1);
                    let p2 = b.ins().func_addr(I64, r2);
                    let p = b.ins().select(cond, p1, p2);
                    let sig = b.import_signature(self.signature(t1, &base));
                    let a = ints[rng.below(ints.len())];
                    let c = ints[rng.below(ints.len())];
                    let call = b.ins().call_indirect(sig, p, &[d1, a, c]);
                    ints.push(b.inst_results(call)[0]);
                    // Pointer identity is part of the result.
                    let same = b.ins().icmp(IntCC::Equal, p, p1);
                    ints.push(b.ins().uextend(I64, same));
                }
            }
            if kind == 3 && !self.many_fns.is_empty() {
                let target = self.many_fns[rng.below(self.many_fns.len())];
                let r = self.emit_call(&mut b, jit, ids, target, d1, &mut rng, &ints, &floats);
                push(&mut ints, &mut floats, self.decls[target].ret, r);
            }
            arith(&mut b, &mut rng, &mut ints, &mut floats);
        }
        let r = combine(&mut b, &ints, &floats, decl.ret);
        b.ins().return_(&[r]);
        b.finalize(jit.isa().frontend_config());
        func
    }

    fn pick_target(&self, rng: &mut Rng, i: usize) -> usize {
        match rng.below(10) {
            0 => i,
            1 if (i ^ 1) < self.len() => i ^ 1,
            _ => 1 + rng.below(self.len() - 1),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_call(
        &self,
        b: &mut FunctionBuilder<'_>,
        jit: &LazyJit,
        ids: &[FuncId],
        target: usize,
        d1: Value,
        rng: &mut Rng,
        ints: &[Value],
        floats: &[Value],
    ) -> Value {
        let callee = jit
            .declare_func_in_func(ids[target], b.func)
            .expect("declared");
        let mut args = vec![d1];
        for t in &self.decls[target].params {
            args.push(if *t == I64 {
                ints[rng.below(ints.len())]
            } else {
                floats[rng.below(floats.len())]
            });
        }
        let call = b.ins().call(callee, &args);
        b.inst_results(call)[0]
    }
}

fn push(ints: &mut Vec<Value>, floats: &mut Vec<Value>, ty: Type, v: Value) {
    if ty == I64 {
        ints.push(v)
    } else {
        floats.push(v)
    }
}

fn to_int(b: &mut FunctionBuilder<'_>, v: Value, ty: Type) -> Value {
    if ty == I64 {
        v
    } else {
        b.ins().fcvt_to_sint_sat(I64, v)
    }
}

fn arith(
    b: &mut FunctionBuilder<'_>,
    rng: &mut Rng,
    ints: &mut Vec<Value>,
    floats: &mut Vec<Value>,
) {
    let x = ints[rng.below(ints.len())];
    let y = ints[rng.below(ints.len())];
    let f = floats[rng.below(floats.len())];
    let g = floats[rng.below(floats.len())];
    let v = match rng.below(12) {
        0 => b.ins().iadd(x, y),
        1 => b.ins().isub(x, y),
        2 => b.ins().imul(x, y),
        3 => b.ins().bxor(x, y),
        4 => {
            let k = b.ins().iconst(I64, 1 + rng.below(62) as i64);
            b.ins().rotl(x, k)
        }
        5 => {
            let m = b.ins().iconst(I64, 0xff_ffff);
            let m = b.ins().band(y, m);
            b.ins().iadd(x, m)
        }
        6 => b.ins().fcvt_to_sint_sat(I64, f),
        7 => {
            let s = b.ins().fadd(f, g);
            return floats.push(s);
        }
        8 => {
            let s = b.ins().fmul(f, g);
            return floats.push(s);
        }
        9 => {
            // f / (|g| + 1)
            let one = b.ins().f64const(1.0);
            let a = b.ins().fabs(g);
            let a = b.ins().fadd(a, one);
            let s = b.ins().fdiv(f, a);
            return floats.push(s);
        }
        10 => {
            let s = b.ins().fcvt_from_sint(F64, x);
            let half = b.ins().f64const(0.5);
            let s = b.ins().fmul(s, half);
            return floats.push(s);
        }
        _ => {
            let a = b.ins().fabs(f);
            let s = b.ins().sqrt(a);
            let big = b.ins().fcmp(FloatCC::GreaterThan, s, g);
            let bi = b.ins().uextend(I64, big);
            ints.push(bi);
            return floats.push(s);
        }
    };
    ints.push(v);
}

fn combine(b: &mut FunctionBuilder<'_>, ints: &[Value], floats: &[Value], ret: Type) -> Value {
    let mut acc = ints[0];
    let five = b.ins().iconst(I64, 5);
    for &v in &ints[1..] {
        let r = b.ins().rotl(acc, five);
        acc = b.ins().bxor(r, v);
    }
    let mut f = floats[0];
    for &g in &floats[1..] {
        // Keep the magnitude bounded: f = f * 0.5 + g * 0.25
        let h = b.ins().f64const(0.5);
        let q = b.ins().f64const(0.25);
        let a = b.ins().fmul(f, h);
        let c = b.ins().fmul(g, q);
        f = b.ins().fadd(a, c);
    }
    if ret == I64 {
        let fi = b.ins().fcvt_to_sint_sat(I64, f);
        b.ins().iadd(acc, fi)
    } else {
        let masked = b.ins().band_imm_s(acc, 0xffff);
        let af = b.ins().fcvt_from_sint(F64, masked);
        b.ins().fadd(f, af)
    }
}
