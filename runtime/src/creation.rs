//! Creating entries: the `create_entries*` half of [`Runtime`]'s API and
//! the batch and block bookkeeping behind it.

use std::ffi::c_void;
use std::ptr::NonNull;

use smallvec::SmallVec;

use crate::batch::{Batch, MAX_NAME_BYTES, NameArena};
use crate::block::{BLOCK_CAPACITY, BLOCK_SHIFT, Block};
use crate::entry_state::EntryCell;
use crate::error::RuntimeError;
use crate::index_table::IndexTable;
use crate::runtime::Runtime;
use crate::sync::{Ordering, lock};
use crate::{Entry, EntryId, EntryRun, EntrySpec, Resolve};

impl Runtime {
    /// Creates one entry per spec, all resolved by `resolver`. Each entry's
    /// address is callable at once; its first call runs `resolver` exactly
    /// once, however many threads race. Either every entry is created or none.
    pub fn create_entries<'n>(
        &self,
        resolver: impl Resolve + 'static,
        specs: impl IntoIterator<Item = EntrySpec<'n>>,
    ) -> Result<Vec<Entry>, RuntimeError> {
        // Buffered (inline for small batches): the specs are walked twice.
        let specs: SmallVec<[EntrySpec<'n>; 4]> = specs.into_iter().collect();
        self.create_entries_from(resolver, specs.iter().copied())
    }

    /// [`Runtime::create_entries`] for specs that can be walked more than
    /// once (a cloneable iterator over a collection): nothing is buffered,
    /// so a large batch costs no transient copy of its specs. Each walk
    /// must yield the same specs; the entries made are those of the last
    /// walk, at most as many as the first counted.
    ///
    /// ```
    /// # use std::{ffi::c_void, ptr::NonNull};
    /// # use lazyrt_runtime::{EntryInfo, EntrySpec, ResolveError, Runtime};
    /// # extern "C" fn seven() -> i32 { 7 }
    /// let rt = Runtime::global()?;
    /// let resolver = |_: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
    ///     Ok(NonNull::new(seven as *mut c_void).unwrap())
    /// };
    /// let names = ["a", "b", "c"];
    /// let entries = rt.create_entries_from(
    ///     resolver,
    ///     names.iter().enumerate().map(|(i, n)| EntrySpec::new(n, i as u64)),
    /// )?;
    /// assert_eq!(entries.len(), 3);
    /// # Ok::<(), lazyrt_runtime::RuntimeError>(())
    /// ```
    pub fn create_entries_from<'n, I>(
        &self,
        resolver: impl Resolve + 'static,
        specs: I,
    ) -> Result<Vec<Entry>, RuntimeError>
    where
        I: Iterator<Item = EntrySpec<'n>> + Clone,
    {
        // One walk checks the names and sizes the arena, one fills it.
        let mut n = 0usize;
        let mut arena_bytes = 0usize;
        for spec in specs.clone() {
            if spec.name.len() > MAX_NAME_BYTES {
                return Err(RuntimeError::NameTooLong {
                    len: spec.name.len(),
                    prefix: spec.name.chars().take(32).collect(),
                    max: MAX_NAME_BYTES,
                });
            }
            n += 1;
            arena_bytes += NameArena::stored_len(spec.name);
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let names = NameArena::sized(arena_bytes, specs.clone().take(n).map(|s| s.name)).ok_or(
            RuntimeError::Exhausted {
                requested: n,
                what: "the 4 GiB name arena of one batch",
            },
        )?;
        // Offsets of the names, read back from the arena itself (so they
        // are the arena's own boundaries whatever the last walk yields).
        let offsets: Vec<u32> = names.offsets().collect();
        // Tags of the last walk; a walk shorter than the first gives tag 0
        // to the rest (every counted entry is made, so the batch's count of
        // live entries is exact).
        let mut tags = specs.map(|s| (s.tag, s.sve_arguments));
        let fields = offsets.into_iter().map(move |offset| {
            let (tag, sve_arguments) = tags.next().unwrap_or((0, false));
            (offset, tag, sve_arguments)
        });
        let mut entries = Vec::with_capacity(n);
        self.make_entries(Box::new(resolver), Some(names), n, fields, &mut entries)?;
        Ok(entries)
    }

    /// Creates `count` entries tagged `0..count` whose names the resolver
    /// gives ([`Resolve::entry_name`]) instead of the runtime keeping a copy:
    /// for an embedder that holds the names anyway (the manager's lazy
    /// reexports do), a batch then costs no name bytes here and no walk
    /// over the names. Otherwise as [`Runtime::create_entries`]; the entries
    /// do not pass SVE arguments ([`EntrySpec::with_sve_arguments`]).
    ///
    /// ```
    /// # use std::{ffi::c_void, ptr::NonNull, sync::Arc};
    /// # use lazyrt_runtime::{EntryInfo, Resolve, ResolveError, Runtime};
    /// # extern "C" fn seven() -> i32 { 7 }
    /// struct Named(Vec<String>);
    /// impl Resolve for Named {
    ///     fn resolve(&self, _: &EntryInfo<'_>) -> Result<NonNull<c_void>, ResolveError> {
    ///         Ok(NonNull::new(seven as *mut c_void).unwrap())
    ///     }
    ///     fn entry_name(&self, tag: u64) -> Option<&str> {
    ///         self.0.get(tag as usize).map(String::as_str)
    ///     }
    /// }
    /// let rt = Runtime::global()?;
    /// let named = Arc::new(Named(vec!["first".into(), "second".into()]));
    /// let entries = rt.create_entries_named_by_resolver(named, 2)?;
    /// assert_eq!(rt.name(entries[1].id)?, "second");
    /// # Ok::<(), lazyrt_runtime::RuntimeError>(())
    /// ```
    pub fn create_entries_named_by_resolver(
        &self,
        resolver: impl Resolve + 'static,
        count: usize,
    ) -> Result<Vec<Entry>, RuntimeError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let fields = (0..count as u64).map(|tag| (0, tag, false));
        let mut entries = Vec::with_capacity(count);
        self.make_entries(Box::new(resolver), None, count, fields, &mut entries)?;
        Ok(entries)
    }

    /// [`Runtime::create_entries_named_by_resolver`], returning the
    /// entries as runs of consecutive ids and evenly spaced stubs (entry
    /// `k` of the batch is the `k`-th of the runs' entries, in order): a
    /// batch of 100,000 is about 25 runs instead of a 1.6 MB list.
    ///
    /// ```
    /// # use std::{ffi::c_void, ptr::NonNull};
    /// # use lazyrt_runtime::{EntryInfo, Resolve, ResolveError, Runtime};
    /// # extern "C" fn seven() -> i32 { 7 }
    /// let rt = Runtime::global()?;
    /// let resolver = |_: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
    ///     Ok(NonNull::new(seven as *mut c_void).unwrap())
    /// };
    /// let runs = rt.create_entry_runs_named_by_resolver(resolver, 10_000)?;
    /// let entries: Vec<_> = runs.iter().flat_map(|r| r.entries()).collect();
    /// assert_eq!(entries.len(), 10_000);
    /// // SAFETY: the stub is callable as its implementation's type.
    /// let f: extern "C" fn() -> i32 = unsafe { std::mem::transmute(entries[9_999].address) };
    /// assert_eq!(f(), 7);
    /// # Ok::<(), lazyrt_runtime::RuntimeError>(())
    /// ```
    pub fn create_entry_runs_named_by_resolver(
        &self,
        resolver: impl Resolve + 'static,
        count: usize,
    ) -> Result<Vec<EntryRun>, RuntimeError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let fields = (0..count as u64).map(|tag| (0, tag, false));
        let mut runs = Vec::new();
        self.make_entries(Box::new(resolver), None, count, fields, &mut runs)?;
        Ok(runs)
    }

    /// Maps the blocks `n` entries need and makes them in one batch, with
    /// their fields `(name offset, tag, SVE arguments)` from `fields` (at
    /// most `n`; fewer leaves the rest tagged 0, name offset 0, plain),
    /// handing each to `out` in order.
    fn make_entries(
        &self,
        resolver: Box<dyn Resolve>,
        names: Option<NameArena>,
        n: usize,
        mut fields: impl Iterator<Item = (u32, u64, bool)>,
        out: &mut impl CreatedEntries,
    ) -> Result<(), RuntimeError> {
        let mut allocator = lock(&self.allocator);
        let new_blocks = allocator.blocks_needed(n).ok_or(RuntimeError::Exhausted {
            requested: n,
            what: "the 32-bit entry index space",
        })?;
        for _ in 0..new_blocks {
            let first = allocator.next_block_index();
            let block = Block::map(first, &self.reentry, self.layout, self.direct_stubs.wanted)?;
            allocator.block_mapped(block.mapped_bytes(), block.has_direct_stubs());
            if block.has_direct_stubs() {
                crate::stub_refresh::start();
            }
            allocator.code_bases.insert(block.code_base(), first);
            // Before any stub of the block is handed out (Release: whoever
            // holds one of its stub addresses sees the widened bounds).
            self.stubs_from.fetch_min(block.stub(0), Ordering::Release);
            self.stubs_to
                .fetch_max(block.stub(BLOCK_CAPACITY - 1) + 1, Ordering::Release);
            self.blocks.insert(first >> BLOCK_SHIFT, Box::new(block));
        }
        let batch_id = allocator
            .take_batch_id(IndexTable::<Batch, 4096>::CAPACITY - 1)
            .ok_or(RuntimeError::Exhausted {
                requested: n,
                what: "the batch table",
            })?;
        self.batches
            .insert(batch_id, Box::new(Batch::new(resolver, names, n)));
        let stub_stride = self.layout.stub_bytes();
        // Indexes come in runs within a block: look the block up once per run.
        let mut current: Option<(u32, &Block)> = None;
        for _ in 0..n {
            let (name_at, tag, sve_arguments) = fields.next().unwrap_or((0, 0, false));
            let index = allocator.take_index();
            let block = match current {
                Some((number, block)) if number == index >> BLOCK_SHIFT => block,
                _ => {
                    let (block, _) = self.block_of(index).expect("allocated index has a block");
                    current = Some((index >> BLOCK_SHIFT, block));
                    block
                }
            };
            let local = (index - block.first_index()) as usize;
            let record = block.record(local);
            record.batch.store(batch_id, Ordering::Relaxed);
            record.name.store(name_at, Ordering::Relaxed);
            record.set_tag(tag);
            // Always written: a recycled index may still carry the flag of
            // the entry it held before.
            #[cfg(target_arch = "aarch64")]
            block
                .sve_flag(local)
                .store(u8::from(sve_arguments), Ordering::Relaxed);
            #[cfg(not(target_arch = "aarch64"))]
            let _ = sve_arguments;
            // Publishes the fields above to whoever wins the first call.
            EntryCell::reset(&record.state);
            let address = NonNull::new(block.stub(local) as *mut c_void).expect("stub address");
            out.push(EntryId(index), address, stub_stride);
        }
        Ok(())
    }
}

/// Where [`Runtime::make_entries`] puts the entries it makes, in order.
trait CreatedEntries {
    /// Entry `id`, its stub at `stub`; stubs of one block are
    /// `stub_stride` bytes apart.
    fn push(&mut self, id: EntryId, stub: NonNull<c_void>, stub_stride: usize);
}

impl CreatedEntries for Vec<Entry> {
    fn push(&mut self, id: EntryId, stub: NonNull<c_void>, _: usize) {
        Vec::push(self, Entry { id, address: stub });
    }
}

impl CreatedEntries for Vec<EntryRun> {
    fn push(&mut self, id: EntryId, stub: NonNull<c_void>, stub_stride: usize) {
        if let Some(run) = self.last_mut()
            && run.stub_stride == stub_stride
            && run.first.0.checked_add(run.len) == Some(id.0)
            && (run.first_stub.as_ptr() as usize).checked_add(run.len as usize * stub_stride)
                == Some(stub.as_ptr() as usize)
        {
            run.len += 1;
            return;
        }
        Vec::push(
            self,
            EntryRun {
                first: id,
                first_stub: stub,
                stub_stride,
                len: 1,
            },
        );
    }
}

#[cfg(all(test, target_arch = "aarch64"))]
mod tests {
    use super::*;
    use crate::{EntryInfo, ResolveError};

    fn sve_flag(rt: &Runtime, entry: &Entry) -> u8 {
        let (block, local) = rt.block_of(entry.id.0).expect("live entry");
        block.sve_flag(local).load(Ordering::Relaxed)
    }

    /// The flag follows the spec, and a recycled index loses the flag of
    /// the entry it held before.
    #[test]
    fn sve_flags_are_set_and_cleared_on_reuse() {
        let Ok(rt) = Runtime::global() else {
            return; // no reentry assembly on this target
        };
        let resolver = |_: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
            Err(ResolveError::new("never called"))
        };
        let names: Vec<String> = (0..64).map(|i| format!("sve{i}")).collect();
        let marked = rt
            .create_entries(
                resolver,
                names
                    .iter()
                    .map(|n| EntrySpec::new(n, 0).with_sve_arguments()),
            )
            .expect("create");
        assert!(marked.iter().all(|e| sve_flag(rt, e) == 1));
        let ids: Vec<EntryId> = marked.iter().map(|e| e.id).collect();
        rt.free_entries(&ids).expect("free");
        let plain = rt
            .create_entries(resolver, names.iter().map(|n| EntrySpec::new(n, 0)))
            .expect("create");
        assert!(
            plain.iter().any(|e| ids.contains(&e.id)),
            "freed indices are reused (LIFO)"
        );
        assert!(plain.iter().all(|e| sve_flag(rt, e) == 0));
        let named = rt
            .create_entries_named_by_resolver(resolver, 8)
            .expect("create");
        assert!(named.iter().all(|e| sve_flag(rt, e) == 0));
        let all: Vec<EntryId> = plain.iter().chain(&named).map(|e| e.id).collect();
        rt.free_entries(&all).expect("free");
    }
}
