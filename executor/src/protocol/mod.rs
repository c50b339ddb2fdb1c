//! The wire protocol between a controller (the process holding the
//! `Session`) and a `lazyrt-executor` (the process running JIT'd code).
//! This module is its whole specification.
//!
//! ## Frames
//!
//! Every message is one frame: a fixed 24-byte header, then `len` payload
//! bytes. All integers are little-endian.
//!
//! ```text
//!  0        4       6      7      8                16       20       24
//!  +--------+-------+------+------+----------------+--------+--------+-----------
//!  | "LZRX" | ver   | kind | 0    | seq            | len    | 0      | payload
//!  | magic  | u16   | u8   | flag | u64            | u32    | rsvd   | len bytes
//!  +--------+-------+------+------+----------------+--------+--------+-----------
//! ```
//!
//! - `magic` is `LZRX`; anything else (a stray `println!` on the channel, a
//!   peer speaking another protocol) closes the connection with
//!   [`FrameError::BadMagic`].
//! - `ver` is [`PROTOCOL_VERSION`] in every frame; a different one closes the
//!   connection with [`FrameError::Version`] naming both.
//! - `kind` is a [`FrameKind`]; `rsvd` is zero; `flag` is zero except
//!   [`FLAG_POSTED`] on a request whose sender does not wait for the reply.
//! - `seq` pairs a [`FrameKind::Response`] with the [`FrameKind::Request`] it
//!   answers. Each side numbers its own requests from 1; the numbers of the
//!   two sides are independent.
//! - `len` is at most [`MAX_PAYLOAD`] (64 MiB): a larger claim is refused
//!   before anything is allocated ([`FrameError::TooLarge`]). A controller
//!   splits larger writes into several segments.
//!
//! ## Conversation
//!
//! 1. The executor speaks first: a [`FrameKind::Hello`] carrying [`Hello`]
//!    (its target triple, page size, pid, bootstrap symbols and CPU
//!    features by their Rust target-feature names; version 1 had no
//!    features).
//! 2. The controller answers with a [`FrameKind::Hello`] whose payload is
//!    empty (accepted) or a [`FrameKind::Hangup`] saying why not.
//! 3. Then either side sends [`Request`]s at any time and answers the other
//!    side's requests with [`FrameKind::Response`] frames ([`Response`]), in
//!    any order: requests are served concurrently. The executor's one
//!    request is [`Request::ResolveImplementation`], sent from inside a first
//!    call while the controller may itself be waiting for the executor.
//!
//!    **Ordering.** The executor answers `Ping`, `Reserve`, `Finalize`,
//!    `Release`, `CreateEntries`, `EnableDebugOutputs`, `RegisterCode`,
//!    `DeregisterCode`, `ReserveCode`, `WriteCode` and `PatchCode` on the
//!    thread that read them (its reading thread, or a thread waiting for a
//!    reply that reads in its turn), in arrival order, before the next frame
//!    is read (none of them waits for the controller). The controller
//!    answers a `ResolveImplementation` whose implementation is already
//!    compiled the same way. So a controller may send `Finalize` or
//!    `WriteCode` (or `PatchCode`) without waiting for its reply: any frame
//!    it sends afterwards, such as the
//!    answer that publishes the code's address or a `Call`, is handled
//!    after the code is in place. Such a request carries [`FLAG_POSTED`]:
//!    if it fails, the executor hangs up with the reason before it reads
//!    another frame (the frames behind it rely on it). The controller sends
//!    call-site `PatchCode`s without waiting too, but unflagged: nothing
//!    behind them relies on them (a site left alone still calls its stub),
//!    so a refusal is an ordinary error reply the controller reports when
//!    it arrives. Other requests are
//!    served concurrently, each on its own thread; when too many are in
//!    flight (1,024) a request is refused with a reason, never queued
//!    behind a blocked one.
//! 4. Either side ends with a [`FrameKind::Hangup`] carrying a reason (UTF-8)
//!    and closes. A closed channel without a hangup is a lost peer.
//!
//! ## Payloads
//!
//! A payload is a sequence of fields: `u8`, `u32`, `u64` little-endian,
//! `bytes` (`u32` length then the bytes), `string` (`bytes` holding UTF-8)
//! and `list` (`u32` count then the elements). A count is checked against
//! the bytes left before anything is reserved for it, so a 24-byte frame
//! cannot ask for a large allocation; a payload with bytes left over after
//! its fields is malformed.
//!
//! A request payload is an opcode byte ([`Request`]'s discriminants, listed
//! with each variant) and its fields. A response payload is a status byte:
//! `0` then a [`Reply`] (its own tag byte and fields), or `1` then an error
//! string.
//!
//! ## Addresses off the wire
//!
//! The executor never trusts an address it receives: memory requests must
//! fall inside reservations it made (code writes and patches inside code
//! regions it made, patches inside code already written there), entry ids must be live entries of its
//! runtime, and a call's target must be a live entry or inside code the
//! controller finalized as executable or wrote into a code region. No
//! request names a function pointer to call as a handler: requests are a closed set of opcodes. A code unit
//! registered for debuggers and profilers ([`Request::RegisterCode`]) may
//! only name ranges of finalized pages or of lazy-entry code (the executor
//! reads them).

mod code_unit_wire;
mod frame;
mod hello;
mod message;
mod wire;

pub use frame::{
    FLAG_POSTED, FrameError, FrameHeader, FrameKind, HEADER_BYTES, MAGIC, MAX_PAYLOAD,
    PROTOCOL_VERSION, read_frame, write_frame, write_frame_with_flags,
};
pub use hello::{Hello, NameList};
pub use message::{
    CodeBytes, MAX_CALL_ARGS, MAX_CALL_THREADS, Protection, Reply, Request, Response, Segment,
    WordPatch,
};
pub use wire::{DecodeError, WireReader, WireWriter};
