//! W^X code memory, placed in the session's executor (this process, or a
//! `lazyrt-executor` process) through [`ExecutorProcess`].
//!
//! Functions are packed into code regions ([`ExecutorProcess::reserve_code`]:
//! a memfd mapped read+execute where code runs and read+write at an alias
//! only the executor uses), one after another with a bump pointer, so many
//! functions share a page. The code is relocated here for the address it
//! will run at, then the executor copies it in through the alias (into
//! bytes never written before) and synchronises the instruction cache
//! before its address is handed out. No mapping is ever writable and
//! executable, and published code is never rewritten, so functions can be
//! published while other threads run code next to them; the only change
//! to published code is [`CodeMemory::patch`], one atomic word at a time.
//!
//! Functions start 16-byte aligned: Cranelift lays out a function's
//! constant pool (up to 16-byte vector constants) aligned relative to the
//! start of its buffer, and 16 is what its x86-64 backend asks of a
//! function's start; 32 would only waste more of the shared pages.
//!
//! Without code regions (no `memfd_create`, or the executor refuses the
//! double mapping) each function gets its own run of pages instead,
//! carved from large reservations and finalized read+execute, as before.
//! So does a function published with an unwind table (a debugger or
//! profiler listens): gdb inserts breakpoints with ptrace writes, which
//! the kernel refuses on a shared read-only mapping such as a code
//! region's; private pages take them.
use std::sync::{Arc, Mutex};

use lazyrt::{CodePatch, CodeWrite, ExecutorAddr, ExecutorProcess, MemorySegment, Protection};

/// Bytes reserved after a function for its unwind table (a CIE and one
/// FDE take about 60-100 bytes; on the page path a longer table only takes
/// effect if it still fits in the function's last page).
const TRAILER_ESTIMATE: u64 = 256;

/// Reserved at a time (address space only until pages are used).
const REGION_BYTES: u64 = 256 << 20;

/// Where a packed function starts (see the module docs).
const FUNCTION_ALIGN: u64 = 16;

struct Region {
    base: u64,
    len: u64,
    used: u64,
}

/// How functions are placed, decided on first use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    Undecided,
    /// Packed into code regions.
    Packed,
    /// A run of pages each (the executor has no code regions).
    Pages,
}

struct Regions {
    placement: Placement,
    /// Code regions (packed).
    regions: Vec<Region>,
    /// Page reservations (the page path).
    pages: Vec<Region>,
}

/// Executable code in the executor. Released on drop.
pub(crate) struct CodeMemory {
    executor: Arc<dyn ExecutorProcess>,
    page: u64,
    regions: Mutex<Regions>,
    /// Why the executor refuses to patch published code, once it said so
    /// (shared with patches in flight, which may learn it).
    patching_off: Arc<std::sync::OnceLock<String>>,
}

/// Code memory statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes of machine code published.
    pub code_bytes: usize,
    /// Bytes of pages those occupy (touch, when functions share pages).
    pub page_bytes: usize,
}

/// How an executor refuses every patch (`lazyrt_executor::memory_service`).
const PATCHING_OFF: &str = "patch code: off in this executor";

/// Why code in pages of its own is not patched.
const NO_CODE_REGIONS: &str = "code patching needs code regions; this executor has none (no memfd_create?), so functions live in pages of their own";

impl CodeMemory {
    pub(crate) fn new(executor: Arc<dyn ExecutorProcess>) -> Self {
        Self {
            page: executor.info().page_size,
            executor,
            regions: Mutex::new(Regions {
                placement: Placement::Undecided,
                regions: Vec::new(),
                pages: Vec::new(),
            }),
            patching_off: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Regions> {
        self.regions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides the placement on first use: packed if the executor gives a
    /// code region, pages otherwise.
    fn decide(&self, regions: &mut Regions) -> Placement {
        if regions.placement == Placement::Undecided {
            regions.placement = match self.executor.reserve_code(REGION_BYTES) {
                Ok(base) => {
                    regions.regions.push(Region {
                        base: base.value(),
                        len: REGION_BYTES,
                        used: 0,
                    });
                    Placement::Packed
                }
                Err(_) => Placement::Pages,
            };
        }
        regions.placement
    }

    /// Places `code` in executable memory: `relocate` patches a copy (it
    /// gets the bytes and the address they will execute at), then the
    /// executor writes it (packed next to earlier functions, or in fresh
    /// pages made read+execute: without code regions, or with a trailer). `trailer`, given the code's address,
    /// makes bytes placed after the code (8-aligned): its unwind table.
    /// Returns the code's address and the trailer's `(address, length)`.
    pub(crate) fn publish(
        &self,
        code: &[u8],
        align: u64,
        relocate: impl FnOnce(&mut [u8], u64) -> Result<(), String>,
        trailer: Option<&dyn Fn(u64) -> Option<Vec<u8>>>,
    ) -> Result<(u64, Option<(u64, u64)>), String> {
        // What the code asks for (its constant pool's alignment), at least
        // FUNCTION_ALIGN; a page-aligned run satisfies anything up to a page.
        let align = align.max(FUNCTION_ALIGN);
        if !align.is_power_of_two() || align > self.page {
            return Err(format!(
                "code alignment {align} is not a power of two up to a page"
            ));
        }
        let mut regions = self.lock();
        // A function with an unwind table is one a debugger or profiler
        // listens for (the Cranelift layer builds tables only then), and
        // gdb cannot insert breakpoints (ptrace writes) into the shared,
        // read-only mapping of a code region: such functions get pages.
        if self.decide(&mut regions) == Placement::Pages || trailer.is_some() {
            drop(regions);
            return self.publish_in_pages(code, relocate, trailer);
        }
        // Placed, relocated and sized under the lock (all in memory, no
        // executor request), so the next function goes right after this
        // one; written after it is released.
        let code_end = (code.len() as u64).next_multiple_of(8);
        let room = code_end.max(8) + trailer.map_or(0, |_| TRAILER_ESTIMATE);
        let region = match regions.regions.last_mut() {
            Some(r) if r.used.next_multiple_of(align) + room <= r.len => r,
            _ => {
                let len = REGION_BYTES.max(room.next_multiple_of(self.page));
                let base = self
                    .executor
                    .reserve_code(len)
                    .map_err(|e| e.to_string())?
                    .value();
                regions.regions.push(Region { base, len, used: 0 });
                regions.regions.last_mut().expect("just pushed")
            }
        };
        let offset = region.used.next_multiple_of(align);
        let address = region.base + offset;
        let mut bytes = code.to_vec();
        relocate(&mut bytes, address)?;
        let mut placed = None;
        if let Some(make) = trailer
            && let Some(table) = make(address)
            && offset + code_end + table.len() as u64 <= region.len
        {
            bytes.resize(code_end as usize, 0);
            bytes.extend_from_slice(&table);
            placed = Some((address + code_end, table.len() as u64));
        }
        if bytes.is_empty() {
            bytes.push(0);
        }
        region.used = offset + bytes.len() as u64;
        drop(regions);
        self.executor
            .write_code(&[CodeWrite {
                address: ExecutorAddr::new(address),
                bytes: &bytes,
            }])
            .map_err(|e| e.to_string())?;
        Ok((address, placed))
    }

    /// [`CodeMemory::publish`] without code regions: fresh pages each.
    fn publish_in_pages(
        &self,
        code: &[u8],
        relocate: impl FnOnce(&mut [u8], u64) -> Result<(), String>,
        trailer: Option<&dyn Fn(u64) -> Option<Vec<u8>>>,
    ) -> Result<(u64, Option<(u64, u64)>), String> {
        // The trailer's size is only known once it is built for the final
        // address; its bytes do not depend on where they lie (absolute
        // pointers), so it is built for the code's address once that is
        // known and its length reserved from a first estimate.
        let code_end = (code.len() as u64).next_multiple_of(8);
        let estimate = trailer.map_or(0, |_| TRAILER_ESTIMATE);
        let len = ((code_end + estimate).max(1)).div_ceil(self.page) * self.page;
        let address = self.reserve_pages(len)?;
        let mut bytes = code.to_vec();
        relocate(&mut bytes, address)?;
        let mut placed = None;
        if let Some(make) = trailer
            && let Some(table) = make(address)
            && code_end + table.len() as u64 <= len
        {
            bytes.resize(code_end as usize, 0);
            bytes.extend_from_slice(&table);
            placed = Some((address + code_end, table.len() as u64));
        }
        self.executor
            .finalize(&[MemorySegment {
                address: ExecutorAddr::new(address),
                protection: Protection::ReadExecute,
                bytes: &bytes,
            }])
            .map_err(|e| e.to_string())?;
        Ok((address, placed))
    }

    fn reserve_pages(&self, len: u64) -> Result<u64, String> {
        let mut regions = self.lock();
        if let Some(region) = regions.pages.last_mut()
            && region.len - region.used >= len
        {
            let address = region.base + region.used;
            region.used += len;
            return Ok(address);
        }
        let size = REGION_BYTES.max(len);
        let base = self
            .executor
            .reserve(size)
            .map_err(|e| e.to_string())?
            .value();
        regions.pages.push(Region {
            base,
            len: size,
            used: len,
        });
        Ok(base)
    }

    /// Bytes of pages the published code touches (packed: the pages each
    /// region's bump pointer has reached; pages: every function's run), so
    /// that page bytes / code bytes says how densely code is packed.
    pub(crate) fn page_bytes(&self) -> usize {
        let regions = self.lock();
        regions
            .regions
            .iter()
            .chain(&regions.pages)
            .map(|r| r.used.next_multiple_of(self.page) as usize)
            .sum()
    }

    /// Whether published code can be patched ([`CodeMemory::patch`]): the
    /// functions are packed into code regions.
    pub(crate) fn can_patch(&self) -> bool {
        let mut regions = self.lock();
        self.decide(&mut regions) == Placement::Packed
    }

    /// Whether `address` lies in a code region (packed code, which
    /// [`CodeMemory::patch_unawaited`] can patch), not in pages of its own.
    pub(crate) fn is_packed(&self, address: u64) -> bool {
        self.lock()
            .regions
            .iter()
            .any(|r| (r.base..r.base + r.used).contains(&address))
    }

    /// [`CodeMemory::patch_unawaited`] through an executor that answers at
    /// once (in this process): the outcome (for tests).
    #[cfg(test)]
    pub(crate) fn patch(&self, patches: &[CodePatch]) -> Result<(), String> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.patch_unawaited(patches, move |e, _| {
            let _ = tx.send(e.to_string());
        });
        rx.try_recv().map_or(Ok(()), Err)
    }

    /// Replaces 4-byte words of published code atomically (see
    /// [`ExecutorProcess::patch_code`]: each must hold its expected value,
    /// lie within one cache line, 4-aligned on AArch64), e.g. to re-point
    /// a `call rel32` / `bl` from a stub to the implementation while
    /// other threads run it.
    ///
    /// Not waited for (see [`ExecutorProcess::patch_code_unawaited`]):
    /// anything sent to the executor afterwards sees the patches applied
    /// or refused. Every failure (refused now or later, nothing sent: no
    /// code regions, patching known to be off, the executor gone) reaches
    /// `on_failure` exactly once, with whether it is news: the executor's
    /// "patching is off" is news once, however many patches were in
    /// flight when it said so. `on_failure` may run on this thread or
    /// later on another, which may block.
    pub(crate) fn patch_unawaited<F>(&self, patches: &[CodePatch], on_failure: F)
    where
        F: FnOnce(lazyrt::Error, bool) + Send + 'static,
    {
        let refused = |reason: String| {
            lazyrt::Error::Executor(lazyrt::ExecutorError::Refused {
                operation: "patch code",
                reason,
            })
        };
        if !self.can_patch() {
            return on_failure(refused(NO_CODE_REGIONS.into()), true);
        }
        if let Some(why) = self.patching_off.get() {
            return on_failure(refused(why.clone()), false);
        }
        // Shared with the request's callback, so a request that could not
        // be sent (its callback dropped unrun) is told here.
        let once = Arc::new(Mutex::new(Some(on_failure)));
        let patching_off = self.patching_off.clone();
        let tell = move |once: &Mutex<Option<_>>, e: lazyrt::Error| {
            let why = e.to_string();
            let news = !why.contains(PATCHING_OFF) || patching_off.set(why).is_ok();
            let on_failure: Option<F> = once.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(on_failure) = on_failure {
                on_failure(e, news)
            }
        };
        let (later, tell_later) = (once.clone(), tell.clone());
        let sent = self
            .executor
            .patch_code_unawaited(patches, Box::new(move |e| tell_later(&later, e)));
        if let Err(e) = sent {
            tell(&once, e);
        }
    }

    /// Whether patching is known to be off in the executor (its reason is
    /// reported once, by the first patch that learnt it).
    pub(crate) fn patching_is_off(&self) -> bool {
        self.patching_off.get().is_some()
    }
}

impl Drop for CodeMemory {
    fn drop(&mut self) {
        let regions = self.regions.get_mut().unwrap_or_else(|e| e.into_inner());
        for region in regions.regions.drain(..).chain(regions.pages.drain(..)) {
            // The owner guarantees no code in it runs any more (see
            // `LazyJit`'s drop); a gone executor has released everything.
            let _ = self.executor.release(ExecutorAddr::new(region.base));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lazyrt::InProcessExecutor;

    /// `extern "C" fn() -> u64` returning `value` (< 2^16).
    fn returns(value: u32) -> Vec<u8> {
        if cfg!(target_arch = "aarch64") {
            // movz x0, #value; ret
            [0xd280_0000 | (value << 5), 0xd65f_03c0u32]
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect()
        } else {
            // mov eax, imm32; ret
            let mut code = vec![0xb8];
            code.extend_from_slice(&value.to_le_bytes());
            code.push(0xc3);
            code
        }
    }

    fn run(address: u64) -> u64 {
        // SAFETY: every function these tests publish is a `fn() -> u64`.
        let f = unsafe { std::mem::transmute::<usize, extern "C" fn() -> u64>(address as usize) };
        f()
    }

    fn publish(memory: &CodeMemory, code: &[u8]) -> u64 {
        memory
            .publish(code, 1, |_, _| Ok(()), None)
            .expect("publish")
            .0
    }

    #[test]
    fn functions_share_pages() {
        let memory = CodeMemory::new(Arc::new(InProcessExecutor::new()));
        assert!(memory.can_patch());
        let addresses: Vec<u64> = (0..100).map(|i| publish(&memory, &returns(i))).collect();
        for (i, a) in addresses.iter().enumerate() {
            assert_eq!(a % FUNCTION_ALIGN, 0);
            assert_eq!(run(*a), i as u64);
        }
        // 100 functions of 6-8 bytes, 16 bytes apart: one page.
        assert_eq!(addresses[99] - addresses[0], 99 * FUNCTION_ALIGN);
        assert_eq!(memory.page_bytes(), memory.page as usize);
    }

    #[test]
    fn a_function_with_a_trailer_gets_pages_and_relocate_sees_its_address() {
        let memory = CodeMemory::new(Arc::new(InProcessExecutor::new()));
        let first = publish(&memory, &returns(1));
        let seen = std::cell::Cell::new(0);
        let trailer = |address: u64| Some(address.to_le_bytes().repeat(3));
        let (address, placed) = memory
            .publish(
                &returns(0),
                1,
                |code, address| {
                    seen.set(address);
                    code.copy_from_slice(&returns(9)); // as relocation would
                    Ok(())
                },
                Some(&trailer),
            )
            .expect("publish");
        assert_eq!(seen.get(), address);
        // With a table (a debugger listens): pages of its own.
        assert_eq!(address % memory.page, 0);
        assert_eq!(run(address), 9);
        let code_end = (returns(0).len() as u64).next_multiple_of(8);
        assert_eq!(placed, Some((address + code_end, 24)));
        // SAFETY: the trailer was written there, readable code memory.
        let table = unsafe { std::slice::from_raw_parts(placed.unwrap().0 as *const u8, 24) };
        assert_eq!(table, address.to_le_bytes().repeat(3));
        let next = publish(&memory, &returns(2));
        assert_eq!(next, first + FUNCTION_ALIGN);
        assert_eq!(run(next), 2);
    }

    #[test]
    fn a_call_site_is_repointed() {
        let memory = CodeMemory::new(Arc::new(InProcessExecutor::new()));
        let one = publish(&memory, &returns(1));
        let two = publish(&memory, &returns(2));
        let word = |at: u64, target: u64| {
            if cfg!(target_arch = "aarch64") {
                0x9400_0000 | ((target.wrapping_sub(at) >> 2) as u32 & 0x03ff_ffff)
            } else {
                target.wrapping_sub(at + 4) as u32
            }
        };
        let (caller, site) = if cfg!(target_arch = "aarch64") {
            // stp x29, x30, [sp, #-16]!; bl; ldp x29, x30, [sp], #16; ret
            let mut code = [0xa9bf_7bfdu32, 0, 0xa8c1_7bfd, 0xd65f_03c0];
            let f = memory
                .publish(
                    &[0; 16],
                    1,
                    |bytes, at| {
                        code[1] = word(at + 4, one);
                        for (chunk, w) in bytes.chunks_mut(4).zip(code) {
                            chunk.copy_from_slice(&w.to_le_bytes());
                        }
                        Ok(())
                    },
                    None,
                )
                .unwrap()
                .0;
            (f, f + 4)
        } else {
            // call rel32; ret
            let f = memory
                .publish(
                    &[0xe8, 0, 0, 0, 0, 0xc3],
                    1,
                    |bytes, at| {
                        bytes[1..5].copy_from_slice(&word(at + 1, one).to_le_bytes());
                        Ok(())
                    },
                    None,
                )
                .unwrap()
                .0;
            (f, f + 1)
        };
        assert_eq!(run(caller), 1);
        let patch = CodePatch {
            address: ExecutorAddr::new(site),
            expected: word(site, one),
            new: word(site, two),
        };
        let aliased_patches_run = lazyrt::Runtime::global().unwrap().direct_stubs().0;
        if !aliased_patches_run {
            // qemu-user, or LAZYRT_DIRECT_STUBS=off: refused, said once.
            let e = memory.patch(&[patch]).unwrap_err();
            assert!(e.contains("off in this executor"), "{e}");
            assert!(memory.patching_is_off());
            assert_eq!(run(caller), 1);
            return;
        }
        memory.patch(&[patch]).expect("patch");
        assert_eq!(run(caller), 2);
        assert!(memory.patch(&[patch]).is_err(), "a stale expected value");
    }

    /// An executor without code regions (as without `memfd_create`).
    struct NoCodeRegions(InProcessExecutor);

    impl ExecutorProcess for NoCodeRegions {
        fn info(&self) -> &lazyrt::ExecutorInfo {
            self.0.info()
        }
        fn create_lazy_entries(
            &self,
            resolver: Arc<dyn lazyrt::EntryResolver>,
            count: usize,
        ) -> Result<Vec<(lazyrt::LazyEntryId, ExecutorAddr)>, lazyrt::Error> {
            self.0.create_lazy_entries(resolver, count)
        }
        fn create_lazy_entry_runs(
            &self,
            resolver: Arc<dyn lazyrt::EntryResolver>,
            count: usize,
        ) -> Result<lazyrt::LazyEntryRuns, lazyrt::Error> {
            self.0.create_lazy_entry_runs(resolver, count)
        }
        fn redirect_entries(
            &self,
            moves: &[(lazyrt::LazyEntryId, ExecutorAddr)],
        ) -> Result<(), lazyrt::Error> {
            self.0.redirect_entries(moves)
        }
        fn free_entries(&self, entries: &[lazyrt::LazyEntryId]) -> Result<(), lazyrt::Error> {
            self.0.free_entries(entries)
        }
        fn lazy_entry_at(&self, address: ExecutorAddr) -> Option<lazyrt::LazyEntryId> {
            self.0.lazy_entry_at(address)
        }
        fn resolve_entry(&self, entry: lazyrt::LazyEntryId) -> Result<ExecutorAddr, lazyrt::Error> {
            self.0.resolve_entry(entry)
        }
        fn reserve(&self, bytes: u64) -> Result<ExecutorAddr, lazyrt::Error> {
            self.0.reserve(bytes)
        }
        fn finalize(&self, segments: &[MemorySegment<'_>]) -> Result<(), lazyrt::Error> {
            self.0.finalize(segments)
        }
        fn release(&self, base: ExecutorAddr) -> Result<(), lazyrt::Error> {
            self.0.release(base)
        }
        fn reserve_code(&self, _: u64) -> Result<ExecutorAddr, lazyrt::Error> {
            Err(lazyrt::Error::Executor(lazyrt::ExecutorError::Refused {
                operation: "reserve code",
                reason: "memfd_create: function not implemented".into(),
            }))
        }
        fn write_code(&self, writes: &[CodeWrite<'_>]) -> Result<(), lazyrt::Error> {
            self.0.write_code(writes)
        }
        fn patch_code(&self, patches: &[CodePatch]) -> Result<(), lazyrt::Error> {
            self.0.patch_code(patches)
        }
        fn describe_lazy_entries(
            &self,
            entries: &[lazyrt::LazyEntryId],
        ) -> Result<Vec<lazyrt::EntryCode>, lazyrt::Error> {
            self.0.describe_lazy_entries(entries)
        }
        fn enable_debug_outputs(&self, outputs: lazyrt::DebugOutputs) -> Result<(), lazyrt::Error> {
            self.0.enable_debug_outputs(outputs)
        }
        fn register_debug_unit(
            &self,
            unit: &lazyrt::CodeUnit,
        ) -> Result<lazyrt::DebugUnitId, lazyrt::Error> {
            self.0.register_debug_unit(unit)
        }
        fn deregister_debug_unit(&self, id: lazyrt::DebugUnitId) -> Result<(), lazyrt::Error> {
            self.0.deregister_debug_unit(id)
        }
        fn lookup_symbols(
            &self,
            names: &[&str],
        ) -> Result<Vec<Option<ExecutorAddr>>, lazyrt::Error> {
            self.0.lookup_symbols(names)
        }
        unsafe fn call(
            &self,
            function: ExecutorAddr,
            arg_sets: &[Vec<u64>],
        ) -> Result<Vec<u64>, lazyrt::Error> {
            // SAFETY: forwarded: our caller's contract is the same.
            unsafe { self.0.call(function, arg_sets) }
        }
    }

    #[test]
    fn without_code_regions_each_function_gets_pages() {
        let memory = CodeMemory::new(Arc::new(NoCodeRegions(InProcessExecutor::new())));
        let addresses: Vec<u64> = (0..10).map(|i| publish(&memory, &returns(i))).collect();
        for (i, a) in addresses.iter().enumerate() {
            assert_eq!(a % memory.page, 0);
            assert_eq!(run(*a), i as u64);
        }
        assert_eq!(memory.page_bytes(), 10 * memory.page as usize);
        assert!(!memory.can_patch());
        let patch = CodePatch {
            address: ExecutorAddr::new(addresses[0] + 1),
            expected: 0,
            new: 1,
        };
        assert!(
            memory
                .patch(&[patch])
                .unwrap_err()
                .contains("needs code regions")
        );
    }
}
