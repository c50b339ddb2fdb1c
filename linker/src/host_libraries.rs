//! Symbols from outside the objects: the host process (libc and whatever
//! it has loaded), libraries opened for the program (`-l NAME` searched in
//! `-L` directories and the system's, `--lib PATH`), and the few the
//! linker provides itself (what `libc_nonshared.a` gives a natively linked
//! program, the `__tls_get_addr` emulation; `__dso_handle` is a word of
//! each program's own data, see `image.rs`).
//!
//! Libraries are opened `RTLD_NOW | RTLD_GLOBAL` and never closed: linked
//! code and its data may keep pointers into them until the process exits.

use std::ffi::{CString, c_void};
use std::path::{Path, PathBuf};

use crate::error::{LinkError, Result};

/// A library to open for the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Library {
    /// `-l NAME`: `libNAME.so` in the search directories.
    Name(String),
    /// `--lib PATH`: that file.
    Path(PathBuf),
}

/// The host's symbols, as the linked program sees them.
pub struct HostSymbols {
    handles: Vec<*mut c_void>,
}

// SAFETY: dlopen handles are process-wide and dlsym is thread-safe.
unsafe impl Send for HostSymbols {}
// SAFETY: as above.
unsafe impl Sync for HostSymbols {}

const SYSTEM_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
];

#[cfg(lazyrt_linker_runtime)]
unsafe extern "C" {
    fn lazyrt_linker_atexit(function: extern "C" fn()) -> i32;
    fn lazyrt_linker_at_quick_exit(function: extern "C" fn()) -> i32;
    fn lazyrt_linker_pthread_atfork(
        a: extern "C" fn(),
        b: extern "C" fn(),
        c: extern "C" fn(),
    ) -> i32;
}

/// What the linker itself defines for programs.
fn builtin(name: &str) -> Option<u64> {
    #[cfg(lazyrt_linker_runtime)]
    {
        let address = match name {
            "__tls_get_addr" => crate::static_tls::tls_get_addr_address(),
            "atexit" => lazyrt_linker_atexit as *const () as u64,
            "at_quick_exit" => lazyrt_linker_at_quick_exit as *const () as u64,
            "pthread_atfork" => lazyrt_linker_pthread_atfork as *const () as u64,
            _ => return None,
        };
        Some(address)
    }
    #[cfg(not(lazyrt_linker_runtime))]
    {
        let _ = name;
        None
    }
}

fn dlopen(path: &Path) -> std::result::Result<*mut c_void, String> {
    let c_path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| "the path contains a NUL byte".to_string())?;
    // SAFETY: c_path is a valid C string; dlopen has no other precondition.
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns a C string (or NULL) owned by libc.
        let message = unsafe { libc::dlerror() };
        let reason = if message.is_null() {
            "dlopen failed".to_string()
        } else {
            // SAFETY: a non-NULL dlerror result is a valid C string.
            unsafe { std::ffi::CStr::from_ptr(message) }
                .to_string_lossy()
                .into_owned()
        };
        return Err(reason);
    }
    Ok(handle)
}

/// The shared object a `libNAME.so` file stands for: itself, or for a GNU
/// ld script (Debian's `libm.so`, `libc.so`) the first `.so` path in it.
fn real_library(path: &Path) -> Option<PathBuf> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.starts_with(b"\x7fELF") {
        return Some(path.to_path_buf());
    }
    let text = String::from_utf8_lossy(&bytes);
    text.split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .find(|token| token.starts_with('/') && token.contains(".so"))
        .map(PathBuf::from)
}

fn find_library(name: &str, search_dirs: &[PathBuf]) -> Option<PathBuf> {
    let file = format!("lib{name}.so");
    let dirs = search_dirs
        .iter()
        .cloned()
        .chain(SYSTEM_DIRS.iter().map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(&file);
        if candidate.exists()
            && let Some(real) = real_library(&candidate)
        {
            return Some(real);
        }
        // Runtime-only installs have just libNAME.so.N.
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut versioned: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|f| f.to_str())
                        .is_some_and(|f| f.starts_with(&format!("{file}.")))
                })
                .collect();
            versioned.sort();
            if let Some(first) = versioned.into_iter().next() {
                return Some(first);
            }
        }
    }
    None
}

impl HostSymbols {
    /// Opens `libraries` (in order; `-l` names searched in `search_dirs`
    /// first, then the system's directories).
    pub fn open(libraries: &[Library], search_dirs: &[PathBuf]) -> Result<Self> {
        let mut handles = Vec::new();
        for library in libraries {
            let (label, path) = match library {
                Library::Name(name) => {
                    let path =
                        find_library(name, search_dirs).ok_or_else(|| LinkError::Library {
                            library: format!("-l{name}"),
                            reason: format!(
                                "lib{name}.so not found in the -L directories or {}",
                                SYSTEM_DIRS.join(", ")
                            ),
                        })?;
                    (format!("-l{name}"), path)
                }
                Library::Path(path) => (path.display().to_string(), path.clone()),
            };
            let handle = dlopen(&path).map_err(|reason| LinkError::Library {
                library: label,
                reason,
            })?;
            handles.push(handle);
        }
        Ok(Self { handles })
    }

    /// Whether the linker itself defines `name` for programs.
    pub fn is_builtin(name: &str) -> bool {
        builtin(name).is_some()
    }

    /// Whether `name`, found at `address` by [`HostSymbols::lookup`], is a
    /// function: one of the linker's own, or an address in an executable
    /// segment of a loaded object (`dl_iterate_phdr`). Not by its symbol:
    /// `dlsym` of an IFUNC (`strcmp`, `memcpy`) gives the implementation
    /// glibc chose, which no exported symbol covers.
    pub fn is_function(name: &str, address: u64) -> bool {
        builtin(name).is_some() || in_executable_segment(address)
    }

    /// Whether `address` is exactly a pointer-sized data object of a loaded
    /// object (`STT_OBJECT` of size 8 at that address, by `dladdr1`).
    pub fn is_pointer_variable(address: u64) -> bool {
        // SAFETY: all-zero is a valid `Dl_info` (null pointers).
        let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
        let mut symbol: *mut c_void = std::ptr::null_mut();
        // RTLD_DL_SYMENT (glibc's <dlfcn.h>): `symbol` gets the
        // `Elf64_Sym` that covers the address.
        const RTLD_DL_SYMENT: libc::c_int = 1;
        // SAFETY: `info` and `symbol` are ours to write; any address may be
        // asked about.
        let found = unsafe {
            libc::dladdr1(
                address as *const c_void,
                &mut info,
                &mut symbol,
                RTLD_DL_SYMENT,
            )
        };
        if found == 0 || symbol.is_null() || info.dli_saddr as u64 != address {
            return false;
        }
        // SAFETY: dladdr1 pointed `symbol` at an `Elf64_Sym` in a loaded
        // object's dynamic symbol table, which stays mapped.
        let symbol = unsafe { &*(symbol as *const libc::Elf64_Sym) };
        symbol.st_info & 0xf == 1 && symbol.st_size == 8 // STT_OBJECT
    }

    /// The address of `name`: the linker's own definitions first, then the
    /// opened libraries in order, then the process's global scope.
    pub fn lookup(&self, name: &str) -> Option<u64> {
        if let Some(address) = builtin(name) {
            return Some(address);
        }
        let c_name = CString::new(name).ok()?;
        for &handle in self.handles.iter().chain([libc::RTLD_DEFAULT].iter()) {
            // SAFETY: a handle from dlopen (never closed) or RTLD_DEFAULT.
            let address = unsafe { libc::dlsym(handle, c_name.as_ptr()) };
            if !address.is_null() {
                return Some(address as u64);
            }
        }
        None
    }
}

/// Whether `address` lies in a `PT_LOAD` segment with `PF_X` of an object
/// loaded in this process.
fn in_executable_segment(address: u64) -> bool {
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid `dl_phdr_info` whose
        // `dlpi_phdr` has `dlpi_phnum` entries, and `data` is the `u64`
        // address below.
        unsafe {
            let info = &*info;
            let address = *(data as *const u64);
            let headers = std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize);
            let inside = headers.iter().any(|h| {
                let start = info.dlpi_addr.wrapping_add(h.p_vaddr);
                h.p_type == libc::PT_LOAD
                    && h.p_flags & libc::PF_X != 0
                    && (start..start.wrapping_add(h.p_memsz)).contains(&address)
            });
            inside as libc::c_int
        }
    }
    let mut address = address;
    // SAFETY: `visit` only reads what dl_iterate_phdr hands it and the
    // address, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&mut address as *mut u64).cast()) != 0 }
}

/// For a name nothing defines, the library that usually does when it is a
/// language runtime's (the compiler driver links it; `lazyrt run` does not
/// guess): C++'s standard library and ABI (`std::`, `__cxa_*`, `operator
/// new`/`delete`, the personality routine).
pub fn library_hint(name: &str) -> Option<&'static str> {
    const CXX: &[&str] = &[
        "_ZSt",
        "_ZNSt",
        "_ZNKSt",
        "_ZTISt",
        "_ZTVSt",
        "_ZTSSt",
        "_ZTIN10__cxxabiv",
        "_ZTVN10__cxxabiv",
        "__cxa_",
        "__gxx_personality",
        "_Znwm",
        "_Znam",
        "_ZdlPv",
        "_ZdaPv",
    ];
    CXX.iter()
        .any(|prefix| name.starts_with(prefix))
        .then_some("stdc++")
}
