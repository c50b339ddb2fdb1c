//! What a code producer reports: a unit of code that became executable
//! together (one stub batch, one compiled function, one linked section),
//! registered and removed as a whole.

use lazyrt_runtime::ExecutorAddr;

/// What a piece of code is, for tools that group or filter by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CodeKind {
    /// A compiled function (Cranelift, a linked object).
    Function = 0,
    /// A lazy entry's stub: the address handed out for the entry.
    Stub = 1,
    /// A lazy entry's reentry trampoline: where its first call goes.
    ReentryTrampoline = 2,
    /// Other runtime code (thunks).
    RuntimeCode = 3,
}

impl CodeKind {
    /// The kind with this wire value.
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Function,
            1 => Self::Stub,
            2 => Self::ReentryTrampoline,
            3 => Self::RuntimeCode,
            _ => return None,
        })
    }
}

/// One named range of executable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeSymbol {
    /// The name tools show: the function's name; for a stub, its entry's
    /// name followed by `$stub`, for a trampoline `$reentry`.
    pub name: String,
    /// What it is.
    pub kind: CodeKind,
    /// Where it starts, in the process that runs it.
    pub address: ExecutorAddr,
    /// Its size in bytes (nonzero).
    pub size: u64,
}

/// Code that became executable together. Producers report it once its
/// pages are final (executable, never written again while registered).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeUnit {
    /// Its symbols, in any order; they must not overlap.
    pub symbols: Vec<CodeSymbol>,
    /// An `.eh_frame` section describing the unit's functions, already
    /// placed (readable) in the process that runs the code, terminated by
    /// a zero length word: `(address, length in bytes including the
    /// terminator)`. Its pointers are absolute (`DW_EH_PE_absptr`) or
    /// relative to where it lies.
    pub eh_frame: Option<(ExecutorAddr, u64)>,
    /// Its line table, where the producer knows source positions (GDB then
    /// shows `file:line` and breaks on lines): each row covers the code
    /// from its address to the next row's, or to the end of the symbol
    /// holding it. Any order; every address inside a symbol.
    pub lines: Vec<SourceLine>,
}

/// One row of a [`CodeUnit`]'s line table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLine {
    /// The first instruction of the row.
    pub address: ExecutorAddr,
    /// The source file, as the JIT's users name it (no NUL).
    pub file: String,
    /// The line, from 1 (0: code with no source line).
    pub line: u32,
}

impl CodeUnit {
    /// Checks what the registry relies on: nonzero sizes, no overflow, no
    /// overlap, names without NUL, a plausible `.eh_frame` range.
    pub fn validate(&self) -> Result<(), String> {
        let mut ranges: Vec<(u64, u64, &str)> = Vec::with_capacity(self.symbols.len());
        for s in &self.symbols {
            if s.size == 0 {
                return Err(format!("symbol {} has size 0", s.name));
            }
            if s.name.is_empty() || s.name.contains('\0') {
                return Err(format!(
                    "symbol at {} has an empty name or a NUL",
                    s.address
                ));
            }
            let start = s.address.value();
            let Some(end) = start.checked_add(s.size) else {
                return Err(format!("symbol {} wraps around the address space", s.name));
            };
            ranges.push((start, end, &s.name));
        }
        ranges.sort_unstable();
        for pair in ranges.windows(2) {
            if pair[1].0 < pair[0].1 {
                return Err(format!("symbols {} and {} overlap", pair[0].2, pair[1].2));
            }
        }
        if let Some((address, len)) = self.eh_frame
            && (address.is_null() || len < 4 || address.value().checked_add(len).is_none())
        {
            return Err(format!("bad .eh_frame range {address} + {len}"));
        }
        for row in &self.lines {
            if row.file.is_empty() || row.file.contains('\0') {
                return Err(format!(
                    "line {} at {} has an empty file name or a NUL",
                    row.line, row.address
                ));
            }
            let at = row.address.value();
            let inside = match ranges.partition_point(|r| r.0 <= at) {
                0 => false,
                i => at < ranges[i - 1].1,
            };
            if !inside {
                return Err(format!(
                    "line {}:{} at {} lies outside every symbol of the unit",
                    row.file, row.line, row.address
                ));
            }
        }
        Ok(())
    }
}

/// Which outputs the registry writes. Several may be on at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DebugOutputs {
    /// Append `/tmp/perf-PID.map` lines (`perf report` names JIT code).
    pub perf_map: bool,
    /// Write `jit-PID.dump` records for `perf inject --jit`.
    pub jitdump: bool,
    /// Register in-memory ELF objects through the GDB JIT interface.
    pub gdb: bool,
    /// Register `.eh_frame` with the unwinder (`__register_frame`), so
    /// backtraces and unwinding walk through JIT code.
    pub unwind: bool,
}

impl DebugOutputs {
    /// Everything on.
    pub const ALL: Self = Self {
        perf_map: true,
        jitdump: true,
        gdb: true,
        unwind: true,
    };

    /// Nothing on.
    pub fn is_empty(self) -> bool {
        self == Self::default()
    }

    /// What either turns on.
    pub fn union(self, other: Self) -> Self {
        Self {
            perf_map: self.perf_map | other.perf_map,
            jitdump: self.jitdump | other.jitdump,
            gdb: self.gdb | other.gdb,
            unwind: self.unwind | other.unwind,
        }
    }

    /// The wire form: bit 0 perf map, 1 jitdump, 2 gdb, 3 unwind.
    pub fn to_bits(self) -> u32 {
        u32::from(self.perf_map)
            | u32::from(self.jitdump) << 1
            | u32::from(self.gdb) << 2
            | u32::from(self.unwind) << 3
    }

    /// From the wire form; unknown bits are an error.
    pub fn from_bits(bits: u32) -> Option<Self> {
        (bits & !0xf == 0).then_some(Self {
            perf_map: bits & 1 != 0,
            jitdump: bits & 2 != 0,
            gdb: bits & 4 != 0,
            unwind: bits & 8 != 0,
        })
    }

    /// What the environment asks for: `LAZYRT_PERF=map|jitdump|map,jitdump`,
    /// `LAZYRT_GDB=1` (GDB also turns on `unwind`). Unset or empty means
    /// off; anything else is an error naming the variable and value.
    pub fn from_env() -> Result<Self, crate::DebugError> {
        let mut outputs = Self::default();
        if let Some(value) = std::env::var_os("LAZYRT_PERF") {
            let text = value.to_string_lossy();
            for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match part {
                    "map" => outputs.perf_map = true,
                    "jitdump" => outputs.jitdump = true,
                    _ => {
                        return Err(crate::DebugError::Env {
                            variable: "LAZYRT_PERF",
                            value: text.into_owned(),
                            expected: "map, jitdump or map,jitdump",
                        });
                    }
                }
            }
        }
        if let Some(value) = std::env::var_os("LAZYRT_GDB") {
            match value.to_string_lossy().trim() {
                "" | "0" | "off" => {}
                "1" | "on" => {
                    outputs.gdb = true;
                    outputs.unwind = true;
                }
                other => {
                    return Err(crate::DebugError::Env {
                        variable: "LAZYRT_GDB",
                        value: other.to_string(),
                        expected: "1, on, 0 or off",
                    });
                }
            }
        }
        Ok(outputs)
    }
}

/// A registered unit, as the registry names it (never reused in a process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DebugUnitId(pub u64);
