//! Interned symbol names and symbol flags.
//!
//! A [`SymbolName`] is interned by its [`Session`](crate::Session): two names
//! with the same text are the same allocation, so comparing and hashing look
//! at the pointer only. Dead names (held by nobody but the pool) are swept
//! when the pool has doubled since the last sweep, so create/remove loops keep
//! memory flat.

use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::sync::Mutex;

pub use lazyrt_runtime::ExecutorAddr;

/// An interned symbol name; equality and hashing are by pointer. One
/// pointer wide (the text sits behind the shared allocation), so every table
/// keyed by names stays small.
#[derive(Clone)]
pub struct SymbolName(Arc<Box<str>>);

const _: () = assert!(size_of::<SymbolName>() == size_of::<usize>());

impl SymbolName {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq for SymbolName {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SymbolName {}

impl Hash for SymbolName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.0) as usize).hash(state);
    }
}

impl PartialOrd for SymbolName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Orders by text (stable output for error messages and tests), then by
/// identity, so that the order agrees with `Eq`: names of two sessions
/// with the same text are different names, and never compare `Equal`.
impl Ord for SymbolName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str()
            .cmp(other.as_str())
            .then_with(|| Arc::as_ptr(&self.0).cmp(&Arc::as_ptr(&other.0)))
    }
}

impl fmt::Debug for SymbolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl fmt::Display for SymbolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Key of the pool: hashes and compares by text.
struct ByText(Arc<Box<str>>);

impl PartialEq for ByText {
    fn eq(&self, other: &Self) -> bool {
        **self.0 == **other.0
    }
}
impl Eq for ByText {}
impl Hash for ByText {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}
impl std::borrow::Borrow<str> for ByText {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// The interning pool of a session.
pub(crate) struct SymbolPool {
    inner: Mutex<PoolInner>,
}

struct PoolInner {
    names: HashSet<ByText>,
    sweep_at: usize,
}

impl SymbolPool {
    pub(crate) fn new() -> Self {
        Self {
            inner: Mutex::new(PoolInner {
                names: HashSet::new(),
                sweep_at: 1024,
            }),
        }
    }

    pub(crate) fn intern(&self, text: &str) -> SymbolName {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = inner.names.get(text) {
            return SymbolName(existing.0.clone());
        }
        if inner.names.len() >= inner.sweep_at {
            inner.names.retain(|n| Arc::strong_count(&n.0) > 1);
            inner.sweep_at = (inner.names.len() * 2).max(1024);
        }
        let name: Arc<Box<str>> = Arc::new(Box::from(text));
        inner.names.insert(ByText(name.clone()));
        SymbolName(name)
    }

    /// Names currently interned (live or not yet swept).
    pub(crate) fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .names
            .len()
    }
}

/// Linkage and kind of a symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SymbolFlags(u8);

impl SymbolFlags {
    /// No flags: a local, non-callable, strong symbol.
    pub const NONE: SymbolFlags = SymbolFlags(0);
    /// Visible to lookups from other JITDylibs.
    pub const EXPORTED: SymbolFlags = SymbolFlags(1);
    /// A function (may be lazily reexported).
    pub const CALLABLE: SymbolFlags = SymbolFlags(2);
    /// Loses against a strong definition of the same name.
    pub const WEAK: SymbolFlags = SymbolFlags(4);

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: SymbolFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Exported and callable: the usual flags of a JIT'd function.
    pub const fn exported_callable() -> SymbolFlags {
        SymbolFlags(Self::EXPORTED.0 | Self::CALLABLE.0)
    }
}

impl std::ops::BitOr for SymbolFlags {
    type Output = SymbolFlags;
    fn bitor(self, rhs: SymbolFlags) -> SymbolFlags {
        SymbolFlags(self.0 | rhs.0)
    }
}

/// An address with the flags of its symbol, as lookups return it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExecutorSymbol {
    /// The address in the executing process.
    pub address: ExecutorAddr,
    /// The symbol's flags.
    pub flags: SymbolFlags,
}

/// Formats names as `[a, b, c]`, sorted, for error messages.
pub(crate) fn name_list<'a>(names: impl IntoIterator<Item = &'a SymbolName>) -> String {
    let mut names: Vec<&str> = names.into_iter().map(SymbolName::as_str).collect();
    names.sort_unstable();
    format!("[{}]", names.join(", "))
}
