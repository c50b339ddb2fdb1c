//! The oracle's input: a sequence of operations on the runtime API, and how
//! bytes decode into one (`arbitrary`, written out by hand so the test crate
//! needs no derive macro).

use arbitrary::{Arbitrary, Unstructured};
use lazyrt_runtime::MAX_NAME_BYTES;

/// How a new entry is named.
#[derive(Debug, Clone)]
pub enum NameKind {
    /// Up to 64 characters of this text.
    Text(String),
    /// The empty name.
    Empty,
    /// Exactly `MAX_NAME_BYTES`: accepted.
    AtLimit,
    /// `MAX_NAME_BYTES + 1 + extra`: rejected with `NameTooLong`.
    TooLong(u16),
    /// Multi-byte characters and NULs.
    Odd(u8),
}

/// What a new entry's resolver does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// Returns implementation `k` (of four).
    Returns(u8),
    /// Returns an error.
    Fails,
    /// Panics.
    Panics,
    /// Calls its own entry (a cycle, which reaches the failure handler and
    /// continues in `fallback`), then returns implementation `k`.
    CallsItself(u8),
}

/// One entry of a batch to create.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// Its name.
    pub name: NameKind,
    /// Its resolver's behaviour.
    pub behavior: Behavior,
}

/// An entry id: one this input has seen (by position) or any `u32`.
#[derive(Debug, Clone, Copy)]
pub enum Pick {
    /// The id seen at this position (modulo how many were seen).
    Known(u16),
    /// This id, whoever owns it.
    Raw(u32),
}

/// One operation on the runtime API.
#[derive(Debug, Clone)]
pub enum Op {
    /// `create_entries` of a batch (at most 48; skipped past 512 live).
    Create(Vec<NewEntry>),
    /// A batch whose names the resolver gives (`Resolve::entry_name`):
    /// no length limit, the runtime keeps no copy.
    CreateNamedByResolver(Vec<NewEntry>),
    /// Calls a seen entry through its stub.
    Call {
        /// Which seen entry.
        pick: u16,
        /// The argument.
        arg: u64,
    },
    /// `redirect` to implementation `target`.
    Redirect {
        /// The entry.
        pick: Pick,
        /// Which implementation.
        target: u8,
    },
    /// `redirect_many` (the first 64).
    RedirectMany(Vec<(Pick, u8)>),
    /// `free_entries` (the first 64).
    Free(Vec<Pick>),
    /// Every query: phase, name, target, address, batch name bytes.
    Query(Pick),
    /// `Runtime::resolve` ahead of a call.
    Resolve(Pick),
}

impl<'a> Arbitrary<'a> for NameKind {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0u8..=4)? {
            0 => NameKind::Text(u.arbitrary()?),
            1 => NameKind::Empty,
            2 => NameKind::AtLimit,
            3 => NameKind::TooLong(u.arbitrary()?),
            _ => NameKind::Odd(u.arbitrary()?),
        })
    }
}

impl<'a> Arbitrary<'a> for Behavior {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0u8..=3)? {
            0 => Behavior::Returns(u.arbitrary()?),
            1 => Behavior::Fails,
            2 => Behavior::Panics,
            _ => Behavior::CallsItself(u.arbitrary()?),
        })
    }
}

impl<'a> Arbitrary<'a> for NewEntry {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(NewEntry {
            name: u.arbitrary()?,
            behavior: u.arbitrary()?,
        })
    }
}

impl<'a> Arbitrary<'a> for Pick {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(if u.arbitrary()? {
            Pick::Known(u.arbitrary()?)
        } else {
            Pick::Raw(u.arbitrary()?)
        })
    }
}

impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0u8..=7)? {
            0 => Op::Create(u.arbitrary()?),
            1 => Op::CreateNamedByResolver(u.arbitrary()?),
            2 => Op::Call {
                pick: u.arbitrary()?,
                arg: u.arbitrary()?,
            },
            3 => Op::Redirect {
                pick: u.arbitrary()?,
                target: u.arbitrary()?,
            },
            4 => Op::RedirectMany(u.arbitrary()?),
            5 => Op::Free(u.arbitrary()?),
            6 => Op::Query(u.arbitrary()?),
            _ => Op::Resolve(u.arbitrary()?),
        })
    }
}

/// The name an entry of `kind` gets, `serial` making limit-sized ones
/// distinct.
pub(crate) fn name_of(kind: &NameKind, serial: usize) -> String {
    match kind {
        NameKind::Text(s) => s.chars().take(64).collect(),
        NameKind::Empty => String::new(),
        NameKind::AtLimit => {
            let mut s = format!("limit{serial}-");
            s.extend(std::iter::repeat_n('x', MAX_NAME_BYTES - s.len()));
            s
        }
        NameKind::TooLong(extra) => "y".repeat(MAX_NAME_BYTES + 1 + usize::from(*extra) % 4096),
        NameKind::Odd(n) => {
            let mut s = String::new();
            for i in 0..usize::from(*n % 16) {
                s.push(['\0', 'é', '🦀', '\u{fffd}', '\u{10ffff}', '\n'][i % 6]);
            }
            s
        }
    }
}
