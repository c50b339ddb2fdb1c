//! The signatures the bench calls (its implementations are JIT code, see
//! `steady`), the one implementation compiled into the bench binary, and the
//! resolvers and names its entries use.

use super::*;

pub(crate) type FnI1 = extern "C" fn(i32) -> i32;
pub(crate) type FnD2 = extern "C" fn(f64, f64) -> f64;
pub(crate) type FnI6 = extern "C" fn(i64, i64, i64, i64, i64, i64) -> i64;
pub(crate) type FnD8 = extern "C" fn(f64, f64, f64, f64, f64, f64, f64, f64) -> f64;

#[inline(never)]
pub(crate) extern "C" fn int_int(x: i32) -> i32 {
    x.wrapping_add(1)
}

pub(crate) const DISTINCT_COUNT: usize = 4096;

pub(crate) fn address(f: *const ()) -> NonNull<c_void> {
    NonNull::new(f as *mut c_void).expect("function address")
}

/// A resolver that answers `targets[tag]` at once.
pub(crate) fn table_resolver(targets: Vec<NonNull<c_void>>) -> Arc<dyn Resolve> {
    let targets: Vec<usize> = targets.into_iter().map(|p| p.as_ptr() as usize).collect();
    Arc::new(
        move |entry: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
            Ok(address(targets[entry.tag as usize] as *const ()))
        },
    )
}

/// A resolver that answers `target` for every entry at once.
pub(crate) fn constant_resolver(target: NonNull<c_void>) -> Arc<dyn Resolve> {
    let target = target.as_ptr() as usize;
    Arc::new(
        move |_: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
            Ok(address(target as *const ()))
        },
    )
}

/// Names are the caller's data: built up front, borrowed by the specs.
pub(crate) struct Names {
    pub(crate) text: String,
    pub(crate) ends: Vec<usize>,
}

impl Names {
    pub(crate) fn new(prefix: &str, n: usize) -> Self {
        let mut text = String::with_capacity(n * (prefix.len() + 8));
        let mut ends = Vec::with_capacity(n);
        for i in 0..n {
            let _ = write!(text, "{prefix}{i}");
            ends.push(text.len());
        }
        Self { text, ends }
    }

    pub(crate) fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    pub(crate) fn specs(&self) -> impl Iterator<Item = EntrySpec<'_>> {
        (0..self.ends.len()).map(|i| EntrySpec::new(self.get(i), i as u64))
    }
}

pub(crate) fn ids(entries: &[Entry]) -> Vec<EntryId> {
    entries.iter().map(|e| e.id).collect()
}
