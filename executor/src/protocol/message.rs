//! The messages: the executor's hello, requests (with their opcodes),
//! replies and responses.

use lazyrt_jit_debug::CodeUnit;

use super::code_unit_wire;
use super::hello::NameList;
use super::wire::{DecodeError, WireReader, WireWriter};

/// Most arguments a [`Request::Call`] passes (the integer argument
/// registers of both ABIs' first six).
pub const MAX_CALL_ARGS: usize = 6;
/// Most threads one [`Request::Call`] starts.
pub const MAX_CALL_THREADS: usize = 256;

/// Page protection of a finalized segment. Never writable and executable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Protection {
    /// Read-only data.
    Read = 1,
    /// Writable data.
    ReadWrite = 3,
    /// Code.
    ReadExecute = 5,
}

impl Protection {
    fn from_u8(v: u8) -> Result<Self, DecodeError> {
        Ok(match v {
            1 => Self::Read,
            3 => Self::ReadWrite,
            5 => Self::ReadExecute,
            _ => {
                return Err(DecodeError::Invalid {
                    field: "segment.protection",
                    reason: format!(
                        "{v:#x} is not read (1), read+write (3) or read+execute (5): W^X forbids write+execute"
                    ),
                });
            }
        })
    }
}

/// Bytes to place at `address` (inside a reservation), then protect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Where the bytes go.
    pub address: u64,
    /// Protection of the pages the segment covers once written.
    pub protection: Protection,
    /// The contents.
    pub bytes: Vec<u8>,
}

/// Code bytes to write at `address` (inside a code region).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeBytes {
    /// Where the bytes execute.
    pub address: u64,
    /// The contents.
    pub bytes: Vec<u8>,
}

/// A word of written code to replace atomically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WordPatch {
    /// Where the 4 bytes lie.
    pub address: u64,
    /// What they must hold now.
    pub expected: u32,
    /// What they become.
    pub new: u32,
}

/// What one side asks of the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Opcode 1. Answered with [`Reply::Unit`]: measures a round trip.
    Ping,
    /// Opcode 2. Reserves `bytes` of address space (inaccessible until
    /// finalized). [`Reply::Address`].
    Reserve {
        /// Size; rounded up to pages.
        bytes: u64,
    },
    /// Opcode 3. Writes each segment while its pages are read+write, then
    /// gives them their protection (flushing the instruction cache for
    /// code). [`Reply::Unit`].
    Finalize {
        /// The segments, each inside one reservation.
        segments: Vec<Segment>,
    },
    /// Opcode 4. Releases a whole reservation. [`Reply::Unit`].
    Release {
        /// Its address, as [`Request::Reserve`] returned it.
        address: u64,
    },
    /// Opcode 5. Creates one lazy entry per name, in one runtime batch; the
    /// first call of entry `i` asks the controller
    /// [`Request::ResolveImplementation`] with `batch` and tag
    /// `first_tag + i`.
    /// [`Reply::Entries`].
    CreateEntries {
        /// The controller's key for the batch's resolver.
        batch: u64,
        /// The tag of the first entry (a large batch comes in several
        /// requests): entry `i` gets tag `first_tag + i`.
        first_tag: u64,
        /// Entry names (for failure messages and tools).
        names: NameList,
    },
    /// Opcode 6. Points each entry at an address. [`Reply::Unit`].
    Redirect {
        /// `(entry id, target)`.
        moves: Vec<(u32, u64)>,
    },
    /// Opcode 7. Frees entries. [`Reply::Unit`].
    FreeEntries {
        /// Entry ids.
        entries: Vec<u32>,
    },
    /// Opcode 8. Resolves an entry now (as its first call would).
    /// [`Reply::Address`].
    ResolveEntry {
        /// Entry id.
        entry: u32,
    },
    /// Opcode 9. Looks symbols up in the executor process (`dlsym`).
    /// [`Reply::Addresses`], 0 for a missing one.
    LookupSymbols {
        /// Symbol names.
        names: Vec<String>,
    },
    /// Opcode 10. Calls `address` as `extern "C" fn(u64, ...) -> u64`
    /// once per argument set, each on its own thread, all released at
    /// once. [`Reply::Values`], one per set.
    Call {
        /// A live entry's stub or finalized code.
        address: u64,
        /// At most [`MAX_CALL_THREADS`] sets of at most [`MAX_CALL_ARGS`].
        arg_sets: Vec<Vec<u64>>,
    },
    /// Opcode 11, executor to controller: the implementation of entry `tag`
    /// of `batch`, on its first call. [`Reply::Address`], or [`Reply::Unresolved`].
    ResolveImplementation {
        /// As given in [`Request::CreateEntries`].
        batch: u64,
        /// The entry's index in its batch.
        tag: u64,
        /// The entry's id (the controller tracks which entry waits for
        /// which, to report cycles of lazy entries instead of deadlocking).
        entry: u32,
    },
    /// Opcode 12. Where live entries' stubs and trampolines lie.
    /// [`Reply::Values`], four per entry: stub, stub size, trampoline,
    /// trampoline size.
    DescribeEntries {
        /// Entry ids.
        entries: Vec<u32>,
    },
    /// Opcode 13. Turns debugger/profiler outputs on in the executor
    /// (`lazyrt_jit_debug::DebugOutputs::to_bits`). [`Reply::Unit`].
    EnableDebugOutputs {
        /// The outputs' bits.
        outputs: u32,
    },
    /// Opcode 14. Registers a code unit with the executor's debugger and
    /// profiler outputs. [`Reply::Address`] holding the unit's id.
    RegisterCode {
        /// The unit.
        unit: CodeUnit,
    },
    /// Opcode 15. Deregisters a unit. [`Reply::Unit`].
    DeregisterCode {
        /// As [`Request::RegisterCode`] answered.
        id: u64,
    },
    /// Opcode 16. Reserves a code region: one memfd mapped read+execute at
    /// the answered address and read+write at an alias the executor keeps
    /// to itself. Refused (with the reason) where memfds are unavailable.
    /// [`Reply::Address`]. Fields: `u64` bytes.
    ReserveCode {
        /// Size; rounded up to pages.
        bytes: u64,
    },
    /// Opcode 17. Writes code into code regions through their aliases, then
    /// synchronises the instruction cache. Each range lies inside one code
    /// region and overlaps nothing written before: published code is never
    /// rewritten. [`Reply::Unit`]; may be posted. Fields: `list` of
    /// (`u64` address, `bytes`).
    WriteCode {
        /// The ranges.
        writes: Vec<CodeBytes>,
    },
    /// Opcode 18. Replaces 4-byte words of written code, each with one
    /// atomic compare-and-swap through the alias, if every word lies in
    /// written code, within one 64-byte cache line (4-aligned on AArch64),
    /// and holds its expected value (all checked before any is applied).
    /// [`Reply::Unit`]. Fields: `list` of (`u64` address, `u32` expected,
    /// `u32` new).
    PatchCode {
        /// The words.
        patches: Vec<WordPatch>,
    },
}

impl Request {
    /// The opcode.
    pub fn opcode(&self) -> u8 {
        match self {
            Request::Ping => 1,
            Request::Reserve { .. } => 2,
            Request::Finalize { .. } => 3,
            Request::Release { .. } => 4,
            Request::CreateEntries { .. } => 5,
            Request::Redirect { .. } => 6,
            Request::FreeEntries { .. } => 7,
            Request::ResolveEntry { .. } => 8,
            Request::LookupSymbols { .. } => 9,
            Request::Call { .. } => 10,
            Request::ResolveImplementation { .. } => 11,
            Request::DescribeEntries { .. } => 12,
            Request::EnableDebugOutputs { .. } => 13,
            Request::RegisterCode { .. } => 14,
            Request::DeregisterCode { .. } => 15,
            Request::ReserveCode { .. } => 16,
            Request::WriteCode { .. } => 17,
            Request::PatchCode { .. } => 18,
        }
    }

    /// A short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Ping => "ping",
            Request::Reserve { .. } => "reserve",
            Request::Finalize { .. } => "finalize",
            Request::Release { .. } => "release",
            Request::CreateEntries { .. } => "create entries",
            Request::Redirect { .. } => "redirect",
            Request::FreeEntries { .. } => "free entries",
            Request::ResolveEntry { .. } => "resolve entry",
            Request::LookupSymbols { .. } => "lookup symbols",
            Request::Call { .. } => "call",
            Request::ResolveImplementation { .. } => "resolve implementation",
            Request::DescribeEntries { .. } => "describe entries",
            Request::EnableDebugOutputs { .. } => "enable debug outputs",
            Request::RegisterCode { .. } => "register code",
            Request::DeregisterCode { .. } => "deregister code",
            Request::ReserveCode { .. } => "reserve code",
            Request::WriteCode { .. } => "write code",
            Request::PatchCode { .. } => "patch code",
        }
    }

    /// Encodes the payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = WireWriter::new();
        w.u8(self.opcode());
        match self {
            Request::Ping => {}
            Request::Reserve { bytes } => {
                w.u64(*bytes);
            }
            Request::Finalize { segments } => {
                w.count(segments.len());
                for s in segments {
                    w.u64(s.address).u8(s.protection as u8).bytes(&s.bytes);
                }
            }
            Request::Release { address } => {
                w.u64(*address);
            }
            Request::CreateEntries {
                batch,
                first_tag,
                names,
            } => {
                w.u64(*batch).u64(*first_tag).count(names.len());
                for name in names.iter() {
                    w.string(name);
                }
            }
            Request::Redirect { moves } => {
                w.count(moves.len());
                for (entry, target) in moves {
                    w.u32(*entry).u64(*target);
                }
            }
            Request::FreeEntries { entries } | Request::DescribeEntries { entries } => {
                write_ids(&mut w, entries);
            }
            Request::ResolveEntry { entry } => {
                w.u32(*entry);
            }
            Request::LookupSymbols { names } => {
                w.string_list(names);
            }
            Request::Call { address, arg_sets } => {
                w.u64(*address).count(arg_sets.len());
                for set in arg_sets {
                    w.u64_list(set);
                }
            }
            Request::ResolveImplementation { batch, tag, entry } => {
                w.u64(*batch).u64(*tag).u32(*entry);
            }
            Request::EnableDebugOutputs { outputs } => {
                w.u32(*outputs);
            }
            Request::RegisterCode { unit } => code_unit_wire::encode(&mut w, unit),
            Request::DeregisterCode { id } => {
                w.u64(*id);
            }
            Request::ReserveCode { bytes } => {
                w.u64(*bytes);
            }
            Request::WriteCode { writes } => {
                w.count(writes.len());
                for c in writes {
                    w.u64(c.address).bytes(&c.bytes);
                }
            }
            Request::PatchCode { patches } => {
                w.count(patches.len());
                for p in patches {
                    w.u64(p.address).u32(p.expected).u32(p.new);
                }
            }
        }
        w.into_bytes()
    }

    /// Decodes a payload, checking every count and limit.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = WireReader::new(bytes);
        let request = match r.u8("request opcode")? {
            1 => Request::Ping,
            2 => Request::Reserve {
                bytes: r.u64("reserve.bytes")?,
            },
            3 => {
                let n = r.count("finalize.segments", 13)?;
                let mut segments = Vec::with_capacity(n);
                for _ in 0..n {
                    let address = r.u64("segment.address")?;
                    let protection = Protection::from_u8(r.u8("segment.protection")?)?;
                    let bytes = r.bytes("segment.bytes")?.to_vec();
                    segments.push(Segment {
                        address,
                        protection,
                        bytes,
                    });
                }
                Request::Finalize { segments }
            }
            4 => Request::Release {
                address: r.u64("release.address")?,
            },
            5 => Request::CreateEntries {
                batch: r.u64("create.batch")?,
                first_tag: r.u64("create.first_tag")?,
                names: NameList::decode(&mut r, "create.names")?,
            },
            6 => {
                let n = r.count("redirect.moves", 12)?;
                let mut moves = Vec::with_capacity(n);
                for _ in 0..n {
                    moves.push((r.u32("redirect.entry")?, r.u64("redirect.target")?));
                }
                Request::Redirect { moves }
            }
            7 => Request::FreeEntries {
                entries: read_ids(&mut r, "free.entries")?,
            },
            8 => Request::ResolveEntry {
                entry: r.u32("resolve.entry")?,
            },
            9 => Request::LookupSymbols {
                names: r.string_list("lookup.names")?,
            },
            10 => {
                let address = r.u64("call.address")?;
                let n = r.count("call.arg_sets", 4)?;
                if n == 0 || n > MAX_CALL_THREADS {
                    return Err(DecodeError::Invalid {
                        field: "call.arg_sets",
                        reason: format!("{n} argument sets (threads): 1 to {MAX_CALL_THREADS}"),
                    });
                }
                let mut arg_sets = Vec::with_capacity(n);
                for _ in 0..n {
                    let set = r.u64_list("call.args")?;
                    if set.len() > MAX_CALL_ARGS {
                        return Err(DecodeError::Invalid {
                            field: "call.args",
                            reason: format!("{} arguments, at most {MAX_CALL_ARGS}", set.len()),
                        });
                    }
                    arg_sets.push(set);
                }
                Request::Call { address, arg_sets }
            }
            11 => Request::ResolveImplementation {
                batch: r.u64("resolve_implementation.batch")?,
                tag: r.u64("resolve_implementation.tag")?,
                entry: r.u32("resolve_implementation.entry")?,
            },
            12 => Request::DescribeEntries {
                entries: read_ids(&mut r, "describe.entries")?,
            },
            13 => {
                let outputs = r.u32("debug.outputs")?;
                if lazyrt_jit_debug::DebugOutputs::from_bits(outputs).is_none() {
                    return Err(DecodeError::Invalid {
                        field: "debug.outputs",
                        reason: format!("unknown output bits {outputs:#x}"),
                    });
                }
                Request::EnableDebugOutputs { outputs }
            }
            14 => Request::RegisterCode {
                unit: code_unit_wire::decode(&mut r)?,
            },
            15 => Request::DeregisterCode {
                id: r.u64("deregister.id")?,
            },
            16 => Request::ReserveCode {
                bytes: r.u64("reserve_code.bytes")?,
            },
            17 => {
                // Address, then a bytes length: 12 bytes at least.
                let n = r.count("write_code.writes", 12)?;
                let mut writes = Vec::with_capacity(n);
                for _ in 0..n {
                    let address = r.u64("write_code.address")?;
                    let bytes = r.bytes("write_code.bytes")?.to_vec();
                    writes.push(CodeBytes { address, bytes });
                }
                Request::WriteCode { writes }
            }
            18 => {
                let n = r.count("patch_code.patches", 16)?;
                let mut patches = Vec::with_capacity(n);
                for _ in 0..n {
                    patches.push(WordPatch {
                        address: r.u64("patch_code.address")?,
                        expected: r.u32("patch_code.expected")?,
                        new: r.u32("patch_code.new")?,
                    });
                }
                Request::PatchCode { patches }
            }
            value => {
                return Err(DecodeError::UnknownTag {
                    field: "request opcode",
                    value,
                });
            }
        };
        r.finish("request")?;
        Ok(request)
    }
}

/// A list of entry ids: a count, then a `u32` each.
fn write_ids(w: &mut WireWriter, ids: &[u32]) {
    w.count(ids.len());
    for id in ids {
        w.u32(*id);
    }
}

fn read_ids(r: &mut WireReader<'_>, field: &'static str) -> Result<Vec<u32>, DecodeError> {
    let n = r.count(field, 4)?;
    (0..n).map(|_| r.u32(field)).collect()
}

/// The value of a successful request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Tag 0: nothing.
    Unit,
    /// Tag 1: one address.
    Address(u64),
    /// Tag 2: created entries, `(id, stub address)`.
    Entries(Vec<(u32, u64)>),
    /// Tag 3: addresses (0 for none).
    Addresses(Vec<u64>),
    /// Tag 4: values returned by calls.
    Values(Vec<u64>),
    /// Tag 5: the answer to [`Request::ResolveImplementation`] when the
    /// controller cannot resolve the entry: its reason (a string) and
    /// whether a later call may succeed (`u8`, 0 or 1: the implementation
    /// is missing or failed to compile, and may be defined again). The
    /// executor's first call fails either way; with `retry` the entry stays
    /// unresolved, so its next call asks again; without, it stays failed.
    Unresolved {
        /// Why.
        reason: String,
        /// Whether a later call may succeed.
        retry: bool,
    },
}

/// A response: a [`Reply`] or an error message.
pub type Response = Result<Reply, String>;

impl Reply {
    /// Encodes a response payload.
    pub fn encode_response(response: &Response) -> Vec<u8> {
        let mut w = WireWriter::new();
        match response {
            Err(message) => {
                w.u8(1).string(message);
            }
            Ok(reply) => {
                w.u8(0);
                match reply {
                    Reply::Unit => {
                        w.u8(0);
                    }
                    Reply::Address(a) => {
                        w.u8(1).u64(*a);
                    }
                    Reply::Entries(entries) => {
                        w.u8(2).count(entries.len());
                        for (id, address) in entries {
                            w.u32(*id).u64(*address);
                        }
                    }
                    Reply::Addresses(v) => {
                        w.u8(3).u64_list(v);
                    }
                    Reply::Values(v) => {
                        w.u8(4).u64_list(v);
                    }
                    Reply::Unresolved { reason, retry } => {
                        w.u8(5).string(reason).u8(u8::from(*retry));
                    }
                }
            }
        }
        w.into_bytes()
    }

    /// Decodes a response payload.
    pub fn decode_response(bytes: &[u8]) -> Result<Response, DecodeError> {
        let mut r = WireReader::new(bytes);
        let response = match r.u8("response status")? {
            0 => Ok(match r.u8("reply tag")? {
                0 => Reply::Unit,
                1 => Reply::Address(r.u64("reply.address")?),
                2 => {
                    let n = r.count("reply.entries", 12)?;
                    let mut entries = Vec::with_capacity(n);
                    for _ in 0..n {
                        entries.push((r.u32("reply.entry")?, r.u64("reply.stub")?));
                    }
                    Reply::Entries(entries)
                }
                3 => Reply::Addresses(r.u64_list("reply.addresses")?),
                4 => Reply::Values(r.u64_list("reply.values")?),
                5 => Reply::Unresolved {
                    reason: r.string("reply.reason")?,
                    retry: match r.u8("reply.retry")? {
                        0 => false,
                        1 => true,
                        value => {
                            return Err(DecodeError::UnknownTag {
                                field: "reply.retry",
                                value,
                            });
                        }
                    },
                },
                value => {
                    return Err(DecodeError::UnknownTag {
                        field: "reply tag",
                        value,
                    });
                }
            }),
            1 => Err(r.string("response.error")?),
            value => {
                return Err(DecodeError::UnknownTag {
                    field: "response status",
                    value,
                });
            }
        };
        r.finish("response")?;
        Ok(response)
    }
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
