//! Running a loaded program as the C runtime would: destructors arranged
//! first (so they run at exit after every `atexit` handler the program
//! registers, as glibc's `_dl_fini` does), constructors in order
//! (`.preinit_array`, `.init_array.N` by priority, `.init_array`), then
//! `main(argc, argv, envp)`.

use std::ffi::{CString, c_char, c_int, c_void};

use crate::error::{LinkError, Result};
use crate::program::Program;

type ArrayFunction = extern "C" fn(c_int, *const *const c_char, *const *const c_char);
type MainFunction = extern "C" fn(c_int, *const *const c_char, *const *const c_char) -> c_int;

unsafe extern "C" {
    static environ: *const *const c_char;
    fn __cxa_atexit(
        function: extern "C" fn(*mut c_void),
        argument: *mut c_void,
        dso_handle: *mut c_void,
    ) -> c_int;
}

struct AtExit {
    destructors: Vec<u64>,
    hook: Option<Box<dyn FnOnce() + Send>>,
}

extern "C" fn run_destructors(argument: *mut c_void) {
    // SAFETY: `argument` is the Box leaked by `run_main`, passed once.
    let at_exit = unsafe { Box::from_raw(argument as *mut AtExit) };
    let AtExit { destructors, hook } = *at_exit;
    for &function in &destructors {
        // SAFETY: a destructor of the program (`void (*)(void)`), relocated
        // to its entry.
        let function: extern "C" fn() = unsafe { std::mem::transmute(function as usize) };
        function();
    }
    if let Some(hook) = hook {
        hook();
    }
}

impl Program {
    /// The function pointers of the arrays `sections` in the order they
    /// run (0 and -1 entries skipped, as glibc does).
    fn array_functions(&self, sections: &[(u32, u32)], backwards: bool) -> Vec<u64> {
        let inner = &self.inner;
        let values = inner.values();
        let mut functions = Vec::new();
        for &(o, s) in sections {
            let section = &inner.objects[o as usize].sections[s as usize];
            let base = values.section_address(o, s).expect("arrays are placed");
            for i in 0..section.size / 8 {
                // SAFETY: the array was relocated and finalized readable in
                // this process at load.
                let function = unsafe { std::ptr::read_unaligned((base + i * 8) as *const u64) };
                if function != 0 && function != u64::MAX {
                    functions.push(function);
                }
            }
        }
        if backwards {
            functions.reverse();
        }
        functions
    }

    /// Runs the program: arranges its destructors (and `at_exit`, after
    /// them) to run when the process exits, runs its constructors, then
    /// calls `main` with `args` (`args[0]` is the program name) and the
    /// process environment. Returns `main`'s value; end the process with
    /// `libc::exit` of it so that destructors, `atexit` handlers and stdio
    /// flushing happen as for a natively linked program.
    ///
    /// # Safety
    /// Runs the program's code in this process, with whatever it does.
    pub unsafe fn run_main(
        &self,
        args: &[String],
        at_exit: Option<Box<dyn FnOnce() + Send>>,
    ) -> Result<i32> {
        let main = self.symbol_address("main").ok_or(LinkError::NoMain)?;
        let inner = &self.inner;
        // Its destructors are registered with the process's exit.
        inner
            .pinned
            .store(true, std::sync::atomic::Ordering::Release);
        let arguments: Vec<CString> = args
            .iter()
            .map(|a| {
                CString::new(a.as_bytes()).map_err(|_| LinkError::Placement {
                    reason: format!("argument {a:?} contains a NUL byte"),
                })
            })
            .collect::<Result<_>>()?;
        let mut argv: Vec<*const c_char> = arguments.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        // The program may keep argv's strings for its whole life.
        std::mem::forget(arguments);
        let argv = Box::leak(argv.into_boxed_slice());
        let argc = (argv.len() - 1) as c_int;
        // SAFETY: libc's environ, read once.
        let envp = unsafe { environ };

        let at_exit = Box::new(AtExit {
            destructors: self.array_functions(&inner.placement.fini_arrays, true),
            hook: at_exit,
        });
        // SAFETY: run_destructors takes the leaked box back exactly once.
        unsafe {
            __cxa_atexit(
                run_destructors,
                Box::into_raw(at_exit) as *mut c_void,
                std::ptr::null_mut(),
            )
        };
        for function in self.array_functions(&inner.placement.init_arrays, false) {
            // SAFETY: a constructor of the program, called as glibc calls
            // init_array entries.
            let function: ArrayFunction = unsafe { std::mem::transmute(function as usize) };
            function(argc, argv.as_ptr(), envp);
        }
        // SAFETY: `main` is the program's main (its entry), called with a
        // NULL-terminated argv and the environment.
        let main: MainFunction = unsafe { std::mem::transmute(main.value() as usize) };
        let _ = inner.main_called_at.set(std::time::Instant::now());
        Ok(main(argc, argv.as_ptr(), envp))
    }
}
