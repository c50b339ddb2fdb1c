//! Definition generators: asked to define symbols a lookup did not find.

use crate::dylib::JitDylib;
use crate::error::Error;
use crate::symbol::SymbolName;

/// Defines symbols on demand when a lookup misses them in a JITDylib.
pub trait DefinitionGenerator: Send + Sync {
    /// Called without the session lock for the `missing` symbols of a lookup
    /// that searches `dylib`; defines whichever it can (with `dylib.define*`).
    /// Symbols it does not define stay missing; an error fails the lookup.
    fn try_to_generate(&self, dylib: &JitDylib, missing: &[SymbolName]) -> Result<(), Error>;
}

/// Symbols of a loaded library (or the whole process) via `dlsym`.
struct DynamicLibrary {
    handle: *mut libc::c_void,
    description: String,
}

// SAFETY: a dlopen handle may be used from any thread (dlsym is thread-safe).
unsafe impl Send for DynamicLibrary {}
// SAFETY: as above; the handle is never mutated.
unsafe impl Sync for DynamicLibrary {}

/// Which names a generator may define.
type AllowFilter = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// Defines missing symbols that a dynamic library (or the current process)
/// exports, as absolute, exported, callable symbols.
///
/// ```
/// use lazyrt::{DynamicLibraryGenerator, RequiredState, Session};
/// let session = Session::new();
/// let jd = session.create_jit_dylib("main")?;
/// jd.add_generator(DynamicLibraryGenerator::for_current_process().with_filter(|n| n == "strlen"))?;
/// let strlen = session.intern("strlen");
/// assert_ne!(jd.lookup(&[strlen.clone()], RequiredState::Ready)?[&strlen].address, lazyrt::ExecutorAddr::NULL);
/// assert!(jd.lookup(&[session.intern("malloc")], RequiredState::Ready).is_err()); // filtered out
/// # Ok::<(), lazyrt::Error>(())
/// ```
pub struct DynamicLibraryGenerator {
    library: DynamicLibrary,
    filter: Option<AllowFilter>,
}

impl DynamicLibraryGenerator {
    /// Symbols of the current process (its executable and loaded libraries).
    pub fn for_current_process() -> Self {
        Self {
            library: DynamicLibrary {
                handle: libc::RTLD_DEFAULT,
                description: "the current process".to_string(),
            },
            filter: None,
        }
    }

    /// Loads the shared library at `path` (`dlopen`, `RTLD_NOW | RTLD_LOCAL`).
    pub fn load(path: &std::path::Path) -> Result<Self, Error> {
        use std::os::unix::ffi::OsStrExt;
        let c_path =
            std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Library {
                path: path.to_path_buf(),
                source: crate::error::source_of("the path contains a NUL byte"),
            })?;
        // SAFETY: c_path is a valid NUL-terminated string; loading a library
        // runs its initializers, which is what the caller asks for.
        let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(Error::Library {
                path: path.to_path_buf(),
                source: crate::error::source_of(dlerror_message()),
            });
        }
        Ok(Self {
            library: DynamicLibrary {
                handle,
                description: path.display().to_string(),
            },
            filter: None,
        })
    }

    /// Only names for which `allow` returns true are defined.
    pub fn with_filter(mut self, allow: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.filter = Some(Box::new(allow));
        self
    }

    fn address_of(&self, name: &str) -> Option<crate::symbol::ExecutorAddr> {
        let c_name = std::ffi::CString::new(name).ok()?;
        // SAFETY: the handle is RTLD_DEFAULT or a live dlopen handle, and
        // c_name is NUL-terminated.
        let address = unsafe { libc::dlsym(self.library.handle, c_name.as_ptr()) };
        (!address.is_null()).then(|| crate::symbol::ExecutorAddr::from_ptr(address))
    }
}

impl std::fmt::Debug for DynamicLibraryGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DynamicLibraryGenerator({})", self.library.description)
    }
}

fn dlerror_message() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated string valid until the
    // next dl* call on this thread; we copy it at once.
    unsafe {
        let message = libc::dlerror();
        if message.is_null() {
            "unknown dlopen error".to_string()
        } else {
            std::ffi::CStr::from_ptr(message)
                .to_string_lossy()
                .into_owned()
        }
    }
}

impl DefinitionGenerator for DynamicLibraryGenerator {
    fn try_to_generate(&self, dylib: &JitDylib, missing: &[SymbolName]) -> Result<(), Error> {
        let found: Vec<(SymbolName, crate::symbol::ExecutorSymbol)> = missing
            .iter()
            .filter(|n| self.filter.as_ref().is_none_or(|allow| allow(n.as_str())))
            .filter_map(|n| {
                let address = self.address_of(n.as_str())?;
                Some((
                    n.clone(),
                    crate::symbol::ExecutorSymbol {
                        address,
                        flags: crate::symbol::SymbolFlags::exported_callable(),
                    },
                ))
            })
            .collect();
        if found.is_empty() {
            return Ok(());
        }
        dylib.define_absolute(found)
    }
}
