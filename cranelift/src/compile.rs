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

use cranelift_module::ModuleReloc;

use crate::declarations::{COMPILED, FAILED, FuncSlot};
use crate::module::{Body, Inner};
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
    /// `name` starts compiling by speculation, before anything called it
    /// ([`lazyrt::Session::set_speculation`]). By default
    /// [`CompileListener::compile_started`].
    fn speculative_compile_started(&self, name: &str) {
        self.compile_started(name);
    }
    /// `name`'s speculative compile failed; nothing is told to anyone
    /// else: the function is compiled again when called, and that compile
    /// reports its own outcome ([`CompileListener::compile_failed`]).
    fn speculative_compile_failed(&self, name: &str, reason: &str) {
        let _ = (name, reason);
    }
    /// `name` was compiled by speculation. By default
    /// [`CompileListener::compiled`].
    fn compiled_speculatively(
        &self,
        name: &str,
        address: ExecutorAddr,
        code_size: usize,
        elapsed: Duration,
    ) {
        self.compiled(name, address, code_size, elapsed);
    }
}

impl LazyJit {
    /// Compiles `body` (the body of `id`) and publishes it. Returns its
    /// address, its size and where its unwind table lies (made only when a
    /// code listener is installed).
    fn compile_body(
        &self,
        id: FuncId,
        slot: &FuncSlot,
        body: Body,
        r: &MaterializationResponsibility,
    ) -> Result<Published, CompileFailure> {
        let mut ctx = match body {
            Body::Bytes {
                bytes,
                alignment,
                relocs,
            } => {
                let fixups = match Fixups::resolve(self, id, &relocs) {
                    Ok(fixups) => fixups,
                    Err(reason) => {
                        return Err(CompileFailure::Link {
                            reason,
                            body: Body::Bytes {
                                bytes,
                                alignment,
                                relocs,
                            },
                        });
                    }
                };
                return self
                    .publish(slot, &bytes, alignment, &fixups, None, Vec::new())
                    .map_err(CompileFailure::Other);
            }
            Body::Ir(func) => Context::for_function(*func),
            Body::Failed(reason) => return Err(CompileFailure::Other(reason)),
            Body::Builder(build) => Context::for_function(
                build(self, id).map_err(|e| CompileFailure::Other(format!("building IR: {e}")))?,
            ),
        };
        if ctx.func.signature != slot.signature {
            return Err(CompileFailure::Other(format!(
                "its IR has signature {} but it was declared with {}",
                ctx.func.signature, slot.signature
            )));
        }
        relocations::prepare(&mut ctx.func);
        if let Err(reason) = relocations::check_links(self, id, &ctx.func) {
            return Err(CompileFailure::Link {
                reason,
                body: Body::Ir(Box::new(ctx.func)),
            });
        }
        // Its entry calls are made as soon as it reaches its calls: compile
        // them while this compiles.
        let mut plan = if self.inner.session.is_speculating() {
            crate::speculation::call_plan(&ctx.func)
        } else {
            Default::default()
        };
        self.speculate_before(&plan, r);
        if let Err(e) = ctx.compile(&*self.inner.isa, &mut ControlPlane::default()) {
            return Err(CompileFailure::Other(
                cranelift_codegen::print_errors::pretty_error(e.func, e.inner),
            ));
        }
        let code = ctx
            .compiled_code()
            .ok_or_else(|| CompileFailure::Other("no compiled code".into()))?;
        let relocs: Vec<ModuleReloc> = code
            .buffer
            .relocs()
            .iter()
            .map(|r| ModuleReloc::from_mach_reloc(r, &ctx.func, id))
            .collect();
        let fixups = Fixups::resolve(self, id, &relocs).map_err(CompileFailure::Other)?;
        let isa = &*self.inner.isa;
        // (Its uncompiled callees ride along in `fixups` to speculation.)
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
        let alignment = u64::from(code.buffer.alignment);
        let mut published = self
            .publish(
                slot,
                code.code_buffer(),
                alignment,
                &fixups,
                unwind.as_ref(),
                lines,
            )
            .map_err(CompileFailure::Other)?;
        published.continuations = std::mem::take(&mut plan.continuations);
        Ok(published)
    }

    /// Places `code` (with its veneers) in code memory, relocated, and
    /// re-points nothing yet: the caller publishes the address.
    fn publish(
        &self,
        slot: &FuncSlot,
        code: &[u8],
        alignment: u64,
        fixups: &Fixups,
        unwind: Option<&cranelift_codegen::isa::unwind::UnwindInfo>,
        lines: Vec<(u32, std::sync::Arc<str>, u32)>,
    ) -> Result<Published, String> {
        let _ = slot;
        let isa = &*self.inner.isa;
        let (veneer_start, veneer_len) = fixups.veneer_area(code.len());
        let mut bytes = code.to_vec();
        if veneer_len > 0 {
            bytes.resize(veneer_start + veneer_len, 0);
        }
        let trailer =
            unwind.map(|info| move |address| crate::debug_info::eh_frame(isa, info, address));
        let mut sites = Vec::new();
        let (address, eh_frame) = self.inner.memory.publish(
            &bytes,
            alignment,
            |bytes, base| {
                sites = fixups.apply(bytes, code.len(), base)?;
                Ok(())
            },
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
            size: code.len(),
            eh_frame,
            lines,
            stub_call_sites: sites,
            uncompiled_callees: fixups.uncompiled_callees.clone(),
            continuations: Vec::new(),
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

/// Why a function did not compile.
pub(crate) enum CompileFailure {
    /// A function or data object it names cannot be bound (yet): not the
    /// IR's fault, so the body is kept and its next call tries again.
    Link { reason: String, body: Body },
    /// Anything else (a verifier error, a builder's error): it needs a new
    /// definition.
    Other(String),
}

/// Where a compiled function was placed.
struct Published {
    address: u64,
    size: usize,
    /// Its `.eh_frame`: `(address, length)`.
    eh_frame: Option<(u64, u64)>,
    /// Its line table: `(code offset, file, line)`.
    lines: Vec<(u32, std::sync::Arc<str>, u32)>,
    /// Its calls bound to stubs, to re-point once their callees compile.
    stub_call_sites: Vec<relocations::StubCallSite>,
    /// Callees not compiled yet, with their call-site counts: what it will
    /// likely call next (reported to speculation).
    uncompiled_callees: Vec<(FuncId, u32)>,
    /// What runs after each of its calls returns (from its IR; empty for
    /// bytes or without speculation).
    continuations: crate::speculation::Continuations,
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
    let speculative = r.is_speculative();
    if let Some(l) = &listener {
        if speculative {
            l.speculative_compile_started(name);
        } else {
            l.compile_started(name);
        }
    }
    let start = Instant::now();
    // A speculative compile that fails is tried again when the function is
    // called, so it keeps a copy of what it compiles.
    let mut retry_copy = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let body = if speculative {
            let body = body.into_retryable(&jit, id);
            retry_copy = body.try_clone();
            body
        } else {
            body
        };
        jit.compile_body(id, &slot, body, &r)
    }))
    .unwrap_or_else(|p| {
        Err(CompileFailure::Other(format!(
            "compiler panicked: {}",
            panic_message(&*p)
        )))
    });
    let elapsed = start.elapsed();
    let c = &jit.inner.counters;
    c.compile_nanos
        .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    match result {
        Ok(mut published) => {
            let (address, size) = (published.address, published.size);
            // Debuggers learn the name before anyone can run the code.
            jit.announce(name, &published);
            // The code is published (executable) already: callers compiled
            // from now on may bind to it, and once the session reports the
            // symbol ready, `implementation` and `is_compiled` agree.
            slot.implementation.store(address, Ordering::Release);
            slot.speculative.store(speculative, Ordering::Release);
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
            if speculative {
                c.speculative.fetch_add(1, Ordering::Relaxed);
            }
            jit.call_sites_published(id, address, published.stub_call_sites);
            // After it is ready: the caller that waits runs it meanwhile.
            jit.speculate_after(
                id,
                &published.uncompiled_callees,
                std::mem::take(&mut published.continuations),
                &r,
            );
            if let Some(l) = &listener {
                let address = ExecutorAddr::new(address);
                if speculative {
                    l.compiled_speculatively(name, address, size, elapsed);
                } else {
                    l.compiled(name, address, size, elapsed);
                }
            }
        }
        Err(failure) => {
            let (reason, mut retry) = match failure {
                CompileFailure::Link { reason, body } => (reason, Some(body)),
                CompileFailure::Other(reason) => (reason, None),
            };
            if let Some(l) = &listener {
                if speculative {
                    l.speculative_compile_failed(name, &reason);
                } else {
                    l.compile_failed(name, &reason);
                }
            }
            if speculative {
                // Nobody asked for it: it goes back to the JITDylib as it
                // was (a builder's error is kept to be told), so the call
                // that needs it compiles it and hears the error itself. A
                // call that raced in gets the new unit as demand work.
                c.speculative_failed.fetch_add(1, Ordering::Relaxed);
                slot.speculation_failed.store(true, Ordering::Release);
                let body = retry
                    .take()
                    .or(retry_copy)
                    .unwrap_or_else(|| Body::Failed(reason.clone()));
                match r.replace(Box::new(jit.compile_unit(id, &slot, body))) {
                    Ok(()) => return,
                    // The session ended: nobody to tell.
                    Err(lazyrt::Error::SessionEnded) => return,
                    // Its JITDylib is gone (or a misuse): failed below.
                    Err(_) => {}
                }
            }
            c.failed.fetch_add(1, Ordering::Relaxed);
            // The error goes to whoever waits for the function (a first
            // call hands it to its failure handler), once.
            r.fail(format!("compiling {name}: {reason}"));
            match retry {
                // Not the IR's fault: it stays defined (a new definition
                // is refused meanwhile) and is defined again at once, so
                // its next call tries again (the callee it lacked may be
                // defined by then).
                Some(body) => {
                    if let Err(e) = jit.redefine(id, &slot, body) {
                        slot.state.store(FAILED, Ordering::Release);
                        jit.inner.session.report_error(&e);
                    }
                }
                // Only now, after the waiting callers were told: a new
                // definition replaces this unit from here on.
                None => slot.state.store(FAILED, Ordering::Release),
            }
        }
    }
}
