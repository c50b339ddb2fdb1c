//! Code that reads libc's data with 32-bit PC-relative loads (gcc's PIE
//! code reads `stdout` as `mov stdout(%rip), %reg`, assuming a copy
//! relocation) works wherever libc is mapped: the linker asks the executor
//! to place the program near the data it reaches
//! (`ExecutorProcess::reserve_near`). The executor here places everything
//! it is not told where to put 6 GiB below libc, beyond any 32-bit reach;
//! the program still links and reads libc's own `stdout`. The control: the
//! same executor ignoring the hint gets a named out-of-range error. Non-PIC
//! code (absolute 32-bit addresses) is placed below 2 GiB, and with the
//! hint ignored fails at load naming the field.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use std::ffi::c_void;
use std::process::Command;
use std::sync::Arc;

use lazyrt::{
    CodePatch, CodeUnit, CodeWrite, DebugOutputs, DebugUnitId, EntryCode, EntryResolver, Error,
    ExecutorAddr, ExecutorInfo, ExecutorProcess, InProcessExecutor, LazyEntryId, MemorySegment,
    Session,
};
use lazyrt_linker::{LinkOptions, Program};

/// This process, but reservations without a hint go far from libc.
struct FarExecutor {
    inner: InProcessExecutor,
    far: ExecutorAddr,
    honour_hints: bool,
}

impl ExecutorProcess for FarExecutor {
    fn info(&self) -> &ExecutorInfo {
        self.inner.info()
    }
    fn create_lazy_entries(
        &self,
        r: Arc<dyn EntryResolver>,
        n: usize,
    ) -> Result<Vec<(LazyEntryId, ExecutorAddr)>, Error> {
        self.inner.create_lazy_entries(r, n)
    }
    fn create_lazy_entry_runs(
        &self,
        r: Arc<dyn EntryResolver>,
        n: usize,
    ) -> Result<lazyrt::LazyEntryRuns, Error> {
        self.inner.create_lazy_entry_runs(r, n)
    }
    fn redirect_entries(&self, moves: &[(LazyEntryId, ExecutorAddr)]) -> Result<(), Error> {
        self.inner.redirect_entries(moves)
    }
    fn free_entries(&self, entries: &[LazyEntryId]) -> Result<(), Error> {
        self.inner.free_entries(entries)
    }
    fn lazy_entry_at(&self, address: ExecutorAddr) -> Option<LazyEntryId> {
        self.inner.lazy_entry_at(address)
    }
    fn resolve_entry(&self, entry: LazyEntryId) -> Result<ExecutorAddr, Error> {
        self.inner.resolve_entry(entry)
    }
    fn reserve(&self, bytes: u64) -> Result<ExecutorAddr, Error> {
        self.inner.reserve_near(bytes, self.far)
    }
    fn reserve_near(&self, bytes: u64, near: ExecutorAddr) -> Result<ExecutorAddr, Error> {
        if self.honour_hints {
            self.inner.reserve_near(bytes, near)
        } else {
            self.reserve(bytes)
        }
    }
    fn finalize(&self, segments: &[MemorySegment<'_>]) -> Result<(), Error> {
        self.inner.finalize(segments)
    }
    fn release(&self, base: ExecutorAddr) -> Result<(), Error> {
        self.inner.release(base)
    }
    fn reserve_code(&self, bytes: u64) -> Result<ExecutorAddr, Error> {
        self.inner.reserve_code_near(bytes, self.far)
    }
    fn reserve_code_near(&self, bytes: u64, near: ExecutorAddr) -> Result<ExecutorAddr, Error> {
        if self.honour_hints {
            self.inner.reserve_code_near(bytes, near)
        } else {
            self.reserve_code(bytes)
        }
    }
    fn write_code(&self, writes: &[CodeWrite<'_>]) -> Result<(), Error> {
        self.inner.write_code(writes)
    }
    fn patch_code(&self, patches: &[CodePatch]) -> Result<(), Error> {
        self.inner.patch_code(patches)
    }
    fn describe_lazy_entries(&self, entries: &[LazyEntryId]) -> Result<Vec<EntryCode>, Error> {
        self.inner.describe_lazy_entries(entries)
    }
    fn enable_debug_outputs(&self, outputs: DebugOutputs) -> Result<(), Error> {
        self.inner.enable_debug_outputs(outputs)
    }
    fn register_debug_unit(&self, unit: &CodeUnit) -> Result<DebugUnitId, Error> {
        self.inner.register_debug_unit(unit)
    }
    fn deregister_debug_unit(&self, id: DebugUnitId) -> Result<(), Error> {
        self.inner.deregister_debug_unit(id)
    }
    fn lookup_symbols(&self, names: &[&str]) -> Result<Vec<Option<ExecutorAddr>>, Error> {
        self.inner.lookup_symbols(names)
    }
    unsafe fn call(
        &self,
        function: ExecutorAddr,
        arg_sets: &[Vec<u64>],
    ) -> Result<Vec<u64>, Error> {
        // SAFETY: the caller's contract, passed on.
        unsafe { self.inner.call(function, arg_sets) }
    }
}

/// Compiles `source` with `cc -c -O2 FLAGS` into a directory of the
/// test's own (`tag`): the tests run in parallel, and one must not read an
/// object another is still writing. `None` (saying so) without a compiler.
fn compile(tag: &str, source: &str, flags: &[&str]) -> Option<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("lazyrt-linker-far-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("object.c");
    std::fs::write(&path, source).expect("write source");
    let object = dir.join("object.o");
    match Command::new("cc")
        .args(["-c", "-O2"])
        .args(flags)
        .arg(&path)
        .arg("-o")
        .arg(&object)
        .status()
    {
        Ok(status) => assert!(status.success(), "cc failed"),
        Err(e) => {
            eprintln!("SKIPPED: no C compiler ({e})");
            return None;
        }
    }
    Some(object)
}

/// `is_stdout` compares its argument with libc's `stdout`, which gcc's PIE
/// code reads with a 32-bit PC-relative load.
fn stdout_reader(tag: &str) -> Option<std::path::PathBuf> {
    compile(
        tag,
        "#include <stdio.h>\nint is_stdout(void *p) { return p == (void *)stdout; }\n",
        &[],
    )
}

/// A non-PIC object (`cc -fno-pic`): `get` returns a string's address
/// with `mov $msg, %eax` (`R_X86_64_32`); `call_puts` compares puts'
/// address taken twice (`R_X86_64_32`, `R_X86_64_32S`); `cmp_address`
/// returns `strcmp`'s, an IFUNC's choice no exported symbol covers;
/// `streams` reads `stdout` and `stderr` with SSE loads (`movq`,
/// `movhps`).
fn non_pic_object(tag: &str) -> Option<std::path::PathBuf> {
    compile(
        tag,
        "#include <stdio.h>\n\
         #include <string.h>\n\
         static const char msg[] = \"low\";\n\
         const char *get(void) { return msg; }\n\
         typedef int (*puts_fn)(const char *);\n\
         puts_fn __attribute__((noinline)) puts_address(void) { return puts; }\n\
         int call_puts(void) { puts_fn volatile f = puts_address(); return f == puts ? 7 : 0; }\n\
         typedef int (*cmp_fn)(const char *, const char *);\n\
         cmp_fn cmp_address(void) { return strcmp; }\n\
         int use_cmp(void) { return cmp_address()(\"ab\", \"ab\") == 0 ? 5 : 0; }\n\
         void __attribute__((noinline)) streams(FILE **out) { FILE *a[2] = {stdout, stderr}; memcpy(out, a, sizeof a); }\n",
        &["-fno-pic"],
    )
}

/// A PIE object linked with the non-PIC one: `cb_address` takes `cb`'s
/// address with `lea cb(%rip)`, a PC-relative field.
fn pie_object(tag: &str) -> Option<std::path::PathBuf> {
    compile(
        tag,
        "int cb(int x) { return x + 1; }\n\
         void *cb_address(void) { return (void *)cb; }\n",
        &["-fPIE"],
    )
}

#[test]
fn non_pic_code_is_placed_below_2_gib() {
    let (Some(non_pic), Some(pie)) = (non_pic_object("low"), pie_object("low-pie")) else {
        return;
    };
    let (session, stdout_var) = session(true);
    let program = Program::load_files(&session, &[non_pic, pie], &LinkOptions::default())
        .expect("placed below 2 GiB");
    let function = |name: &str| program.symbol_address(name).expect("defined");
    // SAFETY: `const char *get(void)`.
    let get = unsafe { function("get").to_fn::<extern "C" fn() -> *const u8>() };
    let msg = get() as u64;
    assert!(msg < 1 << 31, "the string is at {msg:#x}, not below 2 GiB");
    // SAFETY: `get` returns a NUL-terminated string of the program.
    let text = unsafe { std::ffi::CStr::from_ptr(msg as *const std::ffi::c_char) };
    assert_eq!(text.to_str(), Ok("low"));
    // SAFETY: `int call_puts(void)` and `int use_cmp(void)`.
    let (call_puts, use_cmp) = unsafe {
        (
            function("call_puts").to_fn::<extern "C" fn() -> i32>(),
            function("use_cmp").to_fn::<extern "C" fn() -> i32>(),
        )
    };
    assert_eq!(call_puts(), 7, "puts has one address in the program");
    assert_eq!(use_cmp(), 5, "strcmp is called through its address");
    // SAFETY: `void streams(FILE **out)` writes two pointers.
    let streams = unsafe { function("streams").to_fn::<extern "C" fn(*mut [usize; 2])>() };
    let mut got = [0usize; 2];
    streams(&mut got);
    // SAFETY: libc's `stdout` and `stderr` variables.
    let (out, err) = unsafe {
        (
            *(stdout_var as *const usize),
            *(libc::dlsym(libc::RTLD_DEFAULT, c"stderr".as_ptr()) as *const usize),
        )
    };
    assert_eq!(got, [out, err], "the copies hold libc's streams");
    // SAFETY: `void *cb_address(void)` and `int cb(int)`.
    let (cb_address, cb) = unsafe {
        (
            function("cb_address").to_fn::<extern "C" fn() -> usize>(),
            function("cb").to_fn::<extern "C" fn(i32) -> i32>(),
        )
    };
    assert_eq!(
        cb_address() as u64,
        function("cb").value(),
        "one address for cb"
    );
    assert_eq!(cb(41), 42);
}

#[test]
fn non_pic_code_placed_high_fails_at_load_naming_the_field() {
    let Some(object) = non_pic_object("high") else {
        return;
    };
    let (session, _) = session(false);
    let error = match Program::load_files(&session, &[object], &LinkOptions::default()) {
        Ok(_) => panic!("an absolute 32-bit address cannot hold an address 6 GiB below libc"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("R_X86_64_32") && error.contains("-fPIE") && error.contains("object.o"),
        "{error}"
    );
}

fn session(honour_hints: bool) -> (Session, u64) {
    // SAFETY: the address of libc's `stdout` variable.
    let stdout_var = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"stdout".as_ptr()) } as u64;
    let executor = FarExecutor {
        inner: InProcessExecutor::new(),
        far: ExecutorAddr::new(stdout_var - (6 << 30)),
        honour_hints,
    };
    (
        Session::builder().executor(Arc::new(executor)).build(),
        stdout_var,
    )
}

#[test]
fn libc_data_is_reached_with_the_program_placed_near_libc() {
    let Some(object) = stdout_reader("near") else {
        return;
    };
    let (session, stdout_var) = session(true);
    let program = Program::load_files(&session, &[object], &LinkOptions::default())
        .expect("code and data are placed near libc");
    let is_stdout = program.symbol_address("is_stdout").expect("defined");
    // SAFETY: `int is_stdout(void *)`.
    let is_stdout = unsafe { is_stdout.to_fn::<extern "C" fn(*mut c_void) -> i32>() };
    // SAFETY: reads libc's stdout pointer.
    let stdout_value = unsafe { *(stdout_var as *const *mut c_void) };
    assert_eq!(
        is_stdout(stdout_value),
        1,
        "the program reads libc's own stdout"
    );
}

#[test]
fn placed_far_from_libc_the_load_fails_naming_the_variable() {
    let Some(object) = stdout_reader("far") else {
        return;
    };
    let (session, _) = session(false);
    let error = match Program::load_files(&session, &[object], &LinkOptions::default()) {
        Ok(_) => panic!("the executor placed the program 6 GiB from libc: the load cannot succeed"),
        Err(e) => e.to_string(),
    };
    // The function is linked on first call, so the load itself may pass;
    // here is_stdout's unit is only linked when called, so check both.
    assert!(
        error.contains("stdout") && error.contains("out of range"),
        "{error}"
    );
}
