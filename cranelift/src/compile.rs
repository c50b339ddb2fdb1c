//! Compiling a function on its first call: the materializer of `name$impl`
//! builds the IR (if it was given a closure), compiles it with Cranelift,
//! publishes it with its relocations resolved, and reports it ready (or
//! fails it).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use cranelift_codegen::Context;
use cranelift_codegen::control::ControlPlane;
use lazyrt::{
    CodeKind, CodeSymbol, CodeUnit, ExecutorAddr, MaterializationResponsibility, SourceLine,
};

use crate::module::{Body, COMPILED, FAILED, FuncSlot, Inner};
use crate::relocations::{self, Fixups};
use crate::{FuncId, LazyJit};

/// Hooks for tools (tracers, profilers). They run on the compiling thread.
pub trait CompileListener: Send + Sync {
    /// `name` starts compiling.
    fn compile_started(&self, name: &str) {
        let _ = name;
    }
    /// `name` was compiled to `code_size` bytes at `address` in `elapsed`
    /// (IR building, Cranelift, relocation and publication).
    fn compiled(&self, name: &str, address: ExecutorAddr, code_size: usize, elapsed: Duration) {
        let _ = (name, address, code_size, elapsed);
    }
    /// `name` failed to compile.
    fn compile_failed(&self, name: &str, reason: &str) {
        let _ = (name, reason);
    }
}

impl LazyJit {
    /// Compiles `func` (the body of `id`) and publishes it. Returns its
    /// address, its size and where its unwind table lies (made only when a
    /// code listener is installed).
    fn compile_body(&self, id: FuncId, slot: &FuncSlot, body: Body) -> Result<Published, String> {
        let mut func = match body {
            Body::Ir(func) => *func,
            Body::Builder(build) => build(self, id).map_err(|e| format!("building IR: {e}"))?,
        };
        if func.signature != slot.signature {
            return Err(format!(
                "its IR has signature {} but it was declared with {}",
                func.signature, slot.signature
            ));
        }
        relocations::separate_address_refs(&mut func);
        let mut ctx = Context::for_function(func);
        if let Err(e) = ctx.compile(&*self.inner.isa, &mut ControlPlane::default()) {
            return Err(cranelift_codegen::print_errors::pretty_error(
                e.func, e.inner,
            ));
        }
        let code = ctx.compiled_code().ok_or("no compiled code")?;
        let fixups = Fixups::resolve(self, id, code.buffer.relocs(), &ctx.func)?;
        let bytes = code.code_buffer();
        let isa = &*self.inner.isa;
        let debugged = self.inner.session.has_code_listeners();
        let unwind = debugged
            .then(|| code.create_unwind_info(isa).ok().flatten())
            .flatten();
        let source_map = self
            .inner
            .source_map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let lines = match (debugged, source_map) {
            (true, Some(map)) => crate::debug_info::source_lines(code, slot.entry.as_str(), &*map),
            _ => Vec::new(),
        };
        let trailer = unwind
            .as_ref()
            .map(|info| move |address| crate::debug_info::eh_frame(isa, info, address));
        let (address, eh_frame) = self.inner.memory.publish(
            bytes,
            |code, base| fixups.apply(code, base),
            trailer
                .as_ref()
                .map(|t| t as &dyn Fn(u64) -> Option<Vec<u8>>),
        )?;
        let c = &self.inner.counters;
        c.direct.fetch_add(fixups.direct, Ordering::Relaxed);
        c.stub.fetch_add(fixups.stub, Ordering::Relaxed);
        c.code_bytes.fetch_add(bytes.len(), Ordering::Relaxed);
        Ok(Published {
            address,
            size: bytes.len(),
            eh_frame,
            lines,
        })
    }

    /// Announces a published function to the session's code listeners
    /// (debuggers, profilers) under its declared name; the registration
    /// lives as long as this `LazyJit`'s code.
    fn announce(&self, name: &str, published: &Published) {
        if !self.inner.session.has_code_listeners() {
            return;
        }
        let unit = CodeUnit {
            symbols: vec![CodeSymbol {
                name: name.to_string(),
                kind: CodeKind::Function,
                address: ExecutorAddr::new(published.address),
                size: published.size.max(1) as u64,
            }],
            eh_frame: published
                .eh_frame
                .map(|(address, len)| (ExecutorAddr::new(address), len)),
            lines: published
                .lines
                .iter()
                .map(|(offset, file, line)| SourceLine {
                    address: ExecutorAddr::new(published.address + u64::from(*offset)),
                    file: file.to_string(),
                    line: *line,
                })
                .collect(),
        };
        let registration = self.inner.session.announce_code(unit);
        self.inner
            .code
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(registration);
    }
}

/// Where a compiled function was placed.
struct Published {
    address: u64,
    size: usize,
    /// Its `.eh_frame`: `(address, length)`.
    eh_frame: Option<(u64, u64)>,
    /// Its line table: `(code offset, file, line)`.
    lines: Vec<(u32, std::sync::Arc<str>, u32)>,
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".to_string())
}

/// The materializer of `name$impl`: compile, publish, resolve, emit.
pub(crate) fn materialize(
    weak: Weak<Inner>,
    id: FuncId,
    slot: Arc<FuncSlot>,
    body: Body,
    mut r: MaterializationResponsibility,
) {
    let Some(inner) = weak.upgrade() else {
        r.fail("its LazyJit was dropped");
        return;
    };
    let jit = LazyJit { inner };
    let listener = jit.listener();
    let name = slot.entry.as_str();
    if let Some(l) = &listener {
        l.compile_started(name);
    }
    let start = Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        jit.compile_body(id, &slot, body)
    }))
    .unwrap_or_else(|p| Err(format!("compiler panicked: {}", panic_message(&*p))));
    let elapsed = start.elapsed();
    let c = &jit.inner.counters;
    c.compile_nanos
        .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    match result {
        Ok(published) => {
            let (address, size) = (published.address, published.size);
            // Debuggers learn the name before anyone can run the code.
            jit.announce(name, &published);
            // The code is published (executable) already: callers compiled
            // from now on may bind to it, and once the session reports the
            // symbol ready, `implementation` and `is_compiled` agree.
            slot.implementation.store(address, Ordering::Release);
            slot.state.store(COMPILED, Ordering::Release);
            // It calls other functions through their stubs, or directly
            // only once they are compiled: nothing it needs is unready, so
            // it is ready now (resolve and emit in one step).
            let done =
                r.notify_ready([(slot.implementation_name.clone(), ExecutorAddr::new(address))]);
            if let Err(e) = done {
                slot.implementation.store(0, Ordering::Release);
                slot.state.store(FAILED, Ordering::Release);
                c.failed.fetch_add(1, Ordering::Relaxed);
                r.fail(e);
                return;
            }
            c.compiled.fetch_add(1, Ordering::Relaxed);
            if let Some(l) = &listener {
                l.compiled(name, ExecutorAddr::new(address), size, elapsed);
            }
        }
        Err(reason) => {
            slot.state.store(FAILED, Ordering::Release);
            c.failed.fetch_add(1, Ordering::Relaxed);
            if let Some(l) = &listener {
                l.compile_failed(name, &reason);
            }
            r.fail(format!("compiling {name}: {reason}"));
        }
    }
}
