//! `jit-PID.dump`, the perf jitdump file (linux
//! `tools/perf/Documentation/jitdump-specification.txt`), and a parser
//! for it.
//!
//! ```text
//! file header (40 bytes, written only if the file is empty)
//!   u32 magic 0x4A695444 ("JiTD" little endian)   u32 version = 1
//!   u32 total_size = 40                           u32 elf_mach
//!   u32 pad1 = 0                                  u32 pid
//!   u64 timestamp                                 u64 flags = 0
//! records, each:
//!   u32 id   u32 total_size (whole record)   u64 timestamp
//!   JIT_CODE_LOAD (id 0), one per symbol:
//!     u32 pid  u32 tid  u64 vma  u64 code_addr (= vma)
//!     u64 code_size  u64 code_index (unique, increasing)
//!     name bytes, NUL             code_size bytes of code
//! ```
//!
//! All fields are in the writer's byte order (little endian here).
//! Timestamps are `CLOCK_MONOTONIC` nanoseconds, what `perf record -k 1`
//! uses. After opening, one page of the file stays mapped
//! `PROT_READ | PROT_EXEC`: the mmap event perf records for it is how
//! `perf inject --jit` finds the dump. Each unit's records go out in one
//! `write`; there is no record for removed code.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::elf_image::HOST_MACHINE;
use crate::{CodeUnit, DebugError};

const MAGIC: u32 = 0x4A69_5444;
const VERSION: u32 = 1;
const HEADER_SIZE: u32 = 40;
const RECORD_HEADER_SIZE: usize = 16;
/// `JIT_CODE_LOAD`'s fixed part, record header included.
const CODE_LOAD_FIXED: usize = RECORD_HEADER_SIZE + 40;
const JIT_CODE_LOAD: u32 = 0;

/// A record of a jitdump file, as [`parse_jitdump`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JitdumpRecord {
    /// `JIT_CODE_LOAD`: code that appeared at `vma`.
    CodeLoad {
        /// The process that wrote it.
        pid: u32,
        /// The thread that wrote it.
        tid: u32,
        /// Where the code runs.
        vma: u64,
        /// Where the code was read from (the same as `vma` here).
        code_addr: u64,
        /// Its size in bytes.
        code_size: u64,
        /// Unique per code load in the dump.
        code_index: u64,
        /// When it was written (ns).
        timestamp: u64,
        /// The symbol's name.
        name: String,
        /// The code's bytes.
        code: Vec<u8>,
    },
    /// Any other record, skipped by its size.
    Other {
        /// The record type.
        id: u32,
        /// Its size, header included.
        total_size: u32,
        /// When it was written.
        timestamp: u64,
    },
}

/// `CLOCK_MONOTONIC` in nanoseconds.
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// `$JITDUMPDIR/jit-PID.dump`, or `./jit-PID.dump`.
pub(crate) fn default_path() -> PathBuf {
    let dir = std::env::var_os("JITDUMPDIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    dir.join(format!("jit-{}.dump", std::process::id()))
}

/// An open jitdump file with its marker mapping.
pub(crate) struct Jitdump {
    file: File,
    path: PathBuf,
    /// The marker page (`PROT_READ | PROT_EXEC`, `MAP_PRIVATE`).
    marker: *mut libc::c_void,
    marker_len: usize,
    next_code_index: u64,
}

// SAFETY: the marker mapping is never accessed, only unmapped on drop.
unsafe impl Send for Jitdump {}

impl Jitdump {
    /// Opens (creating if needed) the dump at `path`, writes the header if
    /// the file is empty and maps the marker page.
    pub(crate) fn open(path: &Path) -> Result<Self, DebugError> {
        let io = |what: &'static str| {
            let path = path.to_path_buf();
            move |source| DebugError::Io { what, path, source }
        };
        // Readable too: mapping the file needs a readable descriptor.
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io("opening the jitdump"))?;
        // An earlier process with this pid left it: its records would be
        // taken for this process's code.
        crate::perf_map::empty_if_stale(&file).map_err(io("emptying the stale jitdump"))?;
        // Another writer may create the header between this check and the
        // write (the specification's format admits no better).
        if file
            .metadata()
            .map_err(io("reading the jitdump's size"))?
            .len()
            == 0
        {
            file.write_all(&header_bytes())
                .map_err(io("writing the jitdump header"))?;
        }
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let marker_len = usize::try_from(page).unwrap_or(4096).max(4096);
        // SAFETY: a fresh private mapping of our open file; nothing else
        // is affected.
        let marker = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                marker_len,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if marker == libc::MAP_FAILED {
            return Err(io("mapping the jitdump marker page (noexec mount?)")(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(Self {
            file,
            path: path.to_path_buf(),
            marker,
            marker_len,
            next_code_index: 0,
        })
    }

    /// Where the dump is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one `JIT_CODE_LOAD` per symbol of `unit`, in one write;
    /// returns the number of records.
    ///
    /// # Safety
    ///
    /// Every symbol's range is mapped readable in this process.
    pub(crate) unsafe fn write_unit(&mut self, unit: &CodeUnit) -> Result<u64, DebugError> {
        if unit.symbols.is_empty() {
            return Ok(0);
        }
        let timestamp = monotonic_ns();
        let pid = std::process::id();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        let mut sizes = Vec::with_capacity(unit.symbols.len());
        for s in &unit.symbols {
            let fixed = (CODE_LOAD_FIXED + s.name.len() + 1) as u64;
            let Ok(size) = u32::try_from(s.size.saturating_add(fixed)) else {
                return Err(DebugError::InvalidUnit(format!(
                    "symbol {} is too large for a jitdump record",
                    s.name
                )));
            };
            sizes.push(size);
        }
        let mut buf = Vec::with_capacity(sizes.iter().map(|&s| s as usize).sum());
        let mut index = self.next_code_index;
        for (s, &record_size) in unit.symbols.iter().zip(&sizes) {
            let vma = s.address.value();
            buf.extend_from_slice(&JIT_CODE_LOAD.to_le_bytes());
            buf.extend_from_slice(&record_size.to_le_bytes());
            buf.extend_from_slice(&timestamp.to_le_bytes());
            buf.extend_from_slice(&pid.to_le_bytes());
            buf.extend_from_slice(&tid.to_le_bytes());
            buf.extend_from_slice(&vma.to_le_bytes());
            buf.extend_from_slice(&vma.to_le_bytes());
            buf.extend_from_slice(&s.size.to_le_bytes());
            buf.extend_from_slice(&index.to_le_bytes());
            buf.extend_from_slice(s.name.as_bytes());
            buf.push(0);
            // Volatile reads: stub bytes may be patched concurrently (one
            // aligned word at a time); the record then holds the old or
            // the new jump, both valid code.
            for offset in 0..s.size {
                // SAFETY: the caller guarantees the symbol's range is
                // mapped readable; `validate` ruled out wrap-around.
                buf.push(unsafe { std::ptr::read_volatile((vma + offset) as *const u8) });
            }
            index += 1;
        }
        self.file.write_all(&buf).map_err(|source| DebugError::Io {
            what: "writing the jitdump",
            path: self.path.clone(),
            source,
        })?;
        self.next_code_index = index;
        Ok(unit.symbols.len() as u64)
    }
}

impl Drop for Jitdump {
    fn drop(&mut self) {
        // SAFETY: `marker` is our mapping of `marker_len` bytes, unmapped
        // only here.
        unsafe {
            libc::munmap(self.marker, self.marker_len);
        }
    }
}

fn header_bytes() -> [u8; HEADER_SIZE as usize] {
    let mut h = [0u8; HEADER_SIZE as usize];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..8].copy_from_slice(&VERSION.to_le_bytes());
    h[8..12].copy_from_slice(&HEADER_SIZE.to_le_bytes());
    h[12..16].copy_from_slice(&u32::from(HOST_MACHINE).to_le_bytes());
    // 16..20: pad1 = 0.
    h[20..24].copy_from_slice(&std::process::id().to_le_bytes());
    h[24..32].copy_from_slice(&monotonic_ns().to_le_bytes());
    // 32..40: flags = 0.
    h
}

/// Bounds-checked little-endian reads at absolute offsets.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes(&self, at: usize, len: usize, what: &str) -> Result<&[u8], String> {
        at.checked_add(len)
            .and_then(|end| self.0.get(at..end))
            .ok_or_else(|| {
                format!(
                    "offset {at}: {what} runs past the end ({} bytes)",
                    self.0.len()
                )
            })
    }
    fn u32(&self, at: usize, what: &str) -> Result<u32, String> {
        let b = self.bytes(at, 4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&self, at: usize, what: &str) -> Result<u64, String> {
        let b = self.bytes(at, 8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

/// Parses a whole `jit-PID.dump`: the header's pid and `elf_mach`, and
/// every record. Errors name the offset of what is wrong; no input
/// panics.
pub fn parse_jitdump(bytes: &[u8]) -> Result<(u32, u32, Vec<JitdumpRecord>), String> {
    let r = Reader(bytes);
    let magic = r.u32(0, "header magic")?;
    if magic == MAGIC.swap_bytes() {
        return Err("offset 0: dump written in the other byte order".into());
    }
    if magic != MAGIC {
        return Err(format!("offset 0: bad magic {magic:#x}"));
    }
    let version = r.u32(4, "header version")?;
    if version != VERSION {
        return Err(format!("offset 4: unsupported version {version}"));
    }
    let header_size = r.u32(8, "header size")? as usize;
    if header_size < HEADER_SIZE as usize {
        return Err(format!(
            "offset 8: header size {header_size} < {HEADER_SIZE}"
        ));
    }
    r.bytes(0, header_size, "header")?;
    let elf_mach = r.u32(12, "elf_mach")?;
    let pid = r.u32(20, "pid")?;

    let mut records = Vec::new();
    let mut at = header_size;
    while at < bytes.len() {
        let id = r.u32(at, "record id")?;
        let total_size = r.u32(at + 4, "record size")?;
        let timestamp = r.u64(at + 8, "record timestamp")?;
        let size = total_size as usize;
        if size < RECORD_HEADER_SIZE {
            return Err(format!(
                "offset {at}: record size {size} < {RECORD_HEADER_SIZE}"
            ));
        }
        let record = r.bytes(at, size, "record")?;
        if id == JIT_CODE_LOAD {
            records.push(parse_code_load(record, at, timestamp)?);
        } else {
            records.push(JitdumpRecord::Other {
                id,
                total_size,
                timestamp,
            });
        }
        at += size;
    }
    Ok((pid, elf_mach, records))
}

/// One `JIT_CODE_LOAD` record (`record` is all of it; `base` its offset).
fn parse_code_load(record: &[u8], base: usize, timestamp: u64) -> Result<JitdumpRecord, String> {
    let r = Reader(record);
    let at = |o: usize| base + o;
    if record.len() < CODE_LOAD_FIXED {
        return Err(format!(
            "offset {base}: JIT_CODE_LOAD of {} bytes < {CODE_LOAD_FIXED}",
            record.len()
        ));
    }
    let field = |o: usize, what: &str| r.u64(o, what).map_err(|e| format!("record at {base}: {e}"));
    let pid = r.u32(16, "pid")?;
    let tid = r.u32(20, "tid")?;
    let vma = field(24, "vma")?;
    let code_addr = field(32, "code_addr")?;
    let code_size = field(40, "code_size")?;
    let code_index = field(48, "code_index")?;
    let rest = &record[CODE_LOAD_FIXED..];
    let Some(nul) = rest.iter().position(|&b| b == 0) else {
        return Err(format!("offset {}: name without NUL", at(CODE_LOAD_FIXED)));
    };
    let name = String::from_utf8_lossy(&rest[..nul]).into_owned();
    let code_start = nul + 1;
    let code = usize::try_from(code_size)
        .ok()
        .and_then(|len| rest.get(code_start..code_start.checked_add(len)?))
        .ok_or_else(|| {
            format!(
                "offset {}: code_size {code_size} runs past the record's end",
                at(CODE_LOAD_FIXED + code_start)
            )
        })?;
    Ok(JitdumpRecord::CodeLoad {
        pid,
        tid,
        vma,
        code_addr,
        code_size,
        code_index,
        timestamp,
        name,
        code: code.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CodeKind, CodeSymbol};
    use lazyrt_runtime::ExecutorAddr;

    #[test]
    fn round_trip() {
        let code_a = *b"\xb8\x2a\x00\x00\x00\xc3";
        let code_b = [0x90u8; 3];
        let unit = CodeUnit {
            symbols: vec![
                CodeSymbol {
                    name: "answer".into(),
                    kind: CodeKind::Function,
                    address: ExecutorAddr::new(code_a.as_ptr() as u64),
                    size: code_a.len() as u64,
                },
                CodeSymbol {
                    name: "nops$stub".into(),
                    kind: CodeKind::Stub,
                    address: ExecutorAddr::new(code_b.as_ptr() as u64),
                    size: 3,
                },
            ],
            eh_frame: None,
            lines: Vec::new(),
        };
        let dir = crate::test_support::TempDir::new("jitdump");
        let path = dir.path().join("jit-test.dump");
        let before = monotonic_ns();
        let mut dump = Jitdump::open(&path).expect("open");
        // SAFETY: the symbols point at the arrays above.
        assert_eq!(unsafe { dump.write_unit(&unit) }.expect("write"), 2);
        drop(dump);
        // Reopening keeps the header and continues.
        let mut dump = Jitdump::open(&path).expect("reopen");
        // SAFETY: as above.
        unsafe { dump.write_unit(&unit) }.expect("write");
        drop(dump);

        let bytes = std::fs::read(&path).expect("read");
        let (pid, mach, records) = parse_jitdump(&bytes).expect("parses");
        assert_eq!(pid, std::process::id());
        assert_eq!(mach, u32::from(HOST_MACHINE));
        assert_eq!(records.len(), 4);
        let JitdumpRecord::CodeLoad {
            pid,
            tid,
            vma,
            code_addr,
            code_size,
            code_index,
            timestamp,
            name,
            code,
        } = &records[1]
        else {
            panic!("not a code load: {:?}", records[1]);
        };
        assert_eq!(
            (*pid, *vma, *code_addr),
            (std::process::id(), code_b.as_ptr() as u64, *vma)
        );
        // SAFETY: gettid has no preconditions.
        assert_eq!(*tid, unsafe { libc::gettid() } as u32);
        assert_eq!(
            (*code_size, *code_index, name.as_str()),
            (3, 1, "nops$stub")
        );
        assert_eq!(code, &code_b);
        assert!(*timestamp >= before && *timestamp <= monotonic_ns());
        let JitdumpRecord::CodeLoad { code, name, .. } = &records[0] else {
            panic!()
        };
        assert_eq!((code.as_slice(), name.as_str()), (&code_a[..], "answer"));
        let indices: Vec<u64> = records
            .iter()
            .filter_map(|r| match r {
                JitdumpRecord::CodeLoad { code_index, .. } => Some(*code_index),
                JitdumpRecord::Other { .. } => None,
            })
            .collect();
        // Index restarts per open: a real process opens the dump once.
        assert_eq!(indices, vec![0, 1, 0, 1]);
    }

    fn sample() -> Vec<u8> {
        let mut bytes = header_bytes().to_vec();
        // A code load of "f" with 2 code bytes, then an unknown record.
        let mut rec = Vec::new();
        rec.extend_from_slice(&0u32.to_le_bytes());
        rec.extend_from_slice(&((CODE_LOAD_FIXED + 4) as u32).to_le_bytes());
        rec.extend_from_slice(&5u64.to_le_bytes());
        rec.extend_from_slice(&[1, 0, 0, 0, 2, 0, 0, 0]);
        for v in [0x1000u64, 0x1000, 2, 9] {
            rec.extend_from_slice(&v.to_le_bytes());
        }
        rec.extend_from_slice(b"f\0\xc3\xc3");
        bytes.extend_from_slice(&rec);
        bytes.extend_from_slice(&3u32.to_le_bytes());
        bytes.extend_from_slice(&24u32.to_le_bytes());
        bytes.extend_from_slice(&6u64.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 8]);
        bytes
    }

    #[test]
    fn parses_other_records() {
        let (_, _, records) = parse_jitdump(&sample()).expect("parses");
        assert_eq!(records.len(), 2);
        assert_eq!(
            records[1],
            JitdumpRecord::Other {
                id: 3,
                total_size: 24,
                timestamp: 6
            }
        );
        assert!(
            matches!(&records[0], JitdumpRecord::CodeLoad { code_index: 9, code, .. } if code == &[0xc3, 0xc3])
        );
    }

    #[test]
    fn truncated_or_corrupt_input_is_an_error() {
        let good = sample();
        // Every truncation that cuts a record or the header fails.
        let boundaries = [
            HEADER_SIZE as usize,
            HEADER_SIZE as usize + CODE_LOAD_FIXED + 4,
            good.len(),
        ];
        for len in 0..good.len() {
            let result = parse_jitdump(&good[..len]);
            assert_eq!(
                result.is_ok(),
                boundaries.contains(&len),
                "length {len}: {result:?}"
            );
        }
        // Every single-byte corruption is either parsed or rejected: no panic.
        for i in 0..good.len() {
            for v in [0u8, 0x01, 0x7f, 0xff] {
                let mut bad = good.clone();
                bad[i] = v;
                let _ = parse_jitdump(&bad);
            }
        }
        let mut bad = good.clone();
        bad[0] ^= 1;
        assert!(parse_jitdump(&bad).unwrap_err().contains("offset 0"));
        // A record size under the header size.
        let mut bad = good.clone();
        let at = HEADER_SIZE as usize + 4;
        bad[at..at + 4].copy_from_slice(&8u32.to_le_bytes());
        assert!(
            parse_jitdump(&bad)
                .unwrap_err()
                .contains(&format!("offset {}", HEADER_SIZE))
        );
        // A code size past the record.
        let mut bad = good;
        let at = HEADER_SIZE as usize + 40;
        bad[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse_jitdump(&bad).is_err());
        assert!(parse_jitdump(b"").is_err());
    }
}
