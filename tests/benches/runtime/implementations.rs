//! The implementations the bench calls (direct and through entries), and
//! the resolvers and names its entries use.

use super::*;

pub(crate) type FnI1 = extern "C" fn(i32) -> i32;
pub(crate) type FnD2 = extern "C" fn(f64, f64) -> f64;
pub(crate) type FnI6 = extern "C" fn(i64, i64, i64, i64, i64, i64) -> i64;
pub(crate) type FnD8 = extern "C" fn(f64, f64, f64, f64, f64, f64, f64, f64) -> f64;

#[inline(never)]
pub(crate) extern "C" fn int_int(x: i32) -> i32 {
    x.wrapping_add(1)
}

#[inline(never)]
pub(crate) extern "C" fn double_double2(a: f64, b: f64) -> f64 {
    a * b + a
}

#[inline(never)]
pub(crate) extern "C" fn int6(a: i64, b: i64, c: i64, d: i64, e: i64, f: i64) -> i64 {
    a.wrapping_add(b)
        .wrapping_add(c)
        .wrapping_add(d)
        .wrapping_add(e)
        .wrapping_add(f)
}

#[allow(clippy::too_many_arguments)]
#[inline(never)]
pub(crate) extern "C" fn double8(
    a: f64,
    b: f64,
    c: f64,
    d: f64,
    e: f64,
    f: f64,
    g: f64,
    h: f64,
) -> f64 {
    ((a + b) + (c + d)) + ((e + f) + (g + h))
}

/// 4096 distinct implementations: `distinct::<K>(x) == x + K`.
#[inline(never)]
pub(crate) extern "C" fn distinct<const K: i32>(x: i32) -> i32 {
    x.wrapping_add(K)
}

macro_rules! sixteen {
    ($m:ident, $base:expr) => {
        [
            $m!($base + 0),
            $m!($base + 1),
            $m!($base + 2),
            $m!($base + 3),
            $m!($base + 4),
            $m!($base + 5),
            $m!($base + 6),
            $m!($base + 7),
            $m!($base + 8),
            $m!($base + 9),
            $m!($base + 10),
            $m!($base + 11),
            $m!($base + 12),
            $m!($base + 13),
            $m!($base + 14),
            $m!($base + 15),
        ]
    };
}
macro_rules! one {
    ($k:expr) => {
        distinct::<{ $k }> as FnI1
    };
}
macro_rules! row {
    ($k:expr) => {
        sixteen!(one, ($k) * 16)
    };
}
macro_rules! plane {
    ($k:expr) => {
        sixteen!(row, ($k) * 16)
    };
}

pub(crate) const DISTINCT_COUNT: usize = 4096;
pub(crate) static DISTINCT: [[[FnI1; 16]; 16]; 16] = sixteen!(plane, 0);

pub(crate) fn distinct_fns() -> &'static [FnI1] {
    DISTINCT.as_flattened().as_flattened()
}

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
