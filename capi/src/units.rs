//! Defining symbols through units: `lazyrt_jit_dylib_define_unit` (a C
//! materializer with `materialize` / `discard` / `destroy` callbacks),
//! aliases and reexports.

use std::ffi::{CString, c_char, c_void};

use lazyrt::{
    JitDylib, MaterializationResponsibility, MaterializationUnit, ResourceTracker, Session,
    SymbolFlags, SymbolName,
};

use crate::boundary::{
    self, Failure, LAZYRT_FOREIGN_DYLIB, LAZYRT_INVALID_ARGUMENT, UserData, lazyrt_error,
    lazyrt_status, run,
};
use crate::responsibility::{ResponsibilityHandle, lazyrt_responsibility};
use crate::session::{
    flags_from, lazyrt_jit_dylib, lazyrt_resource_tracker, lazyrt_symbol_flags, session_of,
};

/// A symbol a unit provides.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct lazyrt_symbol_definition {
    /// NUL-terminated UTF-8 name.
    pub name: *const c_char,
    /// `LAZYRT_SYMBOL_*` flags.
    pub flags: lazyrt_symbol_flags,
}

/// Produces a unit's symbols. Receives a responsibility it owns: resolve
/// and emit the symbols (`lazyrt_responsibility_notify_ready`, or
/// `_notify_resolved` then `_notify_emitted`), or fail them, now or later
/// from any thread; then dispose it. Runs at most once, on the thread of
/// the lookup that needs the unit or on a dispatcher thread.
pub type lazyrt_materialize_fn = Option<
    unsafe extern "C" fn(user_data: *mut c_void, responsibility: *mut lazyrt_responsibility),
>;

/// The weak symbol `name` lost to a strong definition in `dylib` (a
/// borrowed handle) and must not be provided. Runs under the session's
/// lock: it must not call lazyrt.
pub type lazyrt_discard_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        dylib: *const lazyrt_jit_dylib,
        name: *const c_char,
    ),
>;

/// A custom materialization unit, described by C.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct lazyrt_materialization_unit {
    /// A name for diagnostics (NUL-terminated, copied; NULL: "C unit").
    pub name: *const c_char,
    /// The symbols it provides (copied).
    pub symbols: *const lazyrt_symbol_definition,
    /// Number of `symbols`.
    pub symbol_count: usize,
    /// Passed to the callbacks. Owned by lazyrt once the unit is given to
    /// a define or replace call; used from any thread.
    pub user_data: *mut c_void,
    /// Required.
    pub materialize: lazyrt_materialize_fn,
    /// May be NULL.
    pub discard: lazyrt_discard_fn,
    /// Called exactly once: after the responsibility given to `materialize`
    /// (and every one delegated from it) is disposed, or when the unit is dropped unmaterialized (removed,
    /// every symbol discarded, the session ended, the define refused).
    pub destroy: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
}

/// The Rust side of a [`lazyrt_materialization_unit`].
pub(crate) struct CUnit {
    name: String,
    symbols: Vec<(SymbolName, SymbolFlags)>,
    materialize: unsafe extern "C" fn(*mut c_void, *mut lazyrt_responsibility),
    discard: lazyrt_discard_fn,
    data: UserData,
}

impl CUnit {
    /// Reads a C unit description; its user data is owned from the first
    /// line (destroyed on every error).
    ///
    /// # Safety
    /// `unit` is NULL or points to a valid description.
    pub(crate) unsafe fn from_c(
        session: Result<Session, Failure>,
        unit: *const lazyrt_materialization_unit,
        function: &str,
    ) -> Result<CUnit, Failure> {
        // SAFETY: the caller's contract.
        let unit = unsafe { unit.as_ref() }.ok_or_else(|| boundary::null(function, "unit"))?;
        let data = UserData::new(unit.user_data, unit.destroy);
        let session = session?;
        let materialize = unit.materialize.ok_or_else(|| {
            Failure::new(
                LAZYRT_INVALID_ARGUMENT,
                format!("{function}: `unit->materialize` is NULL"),
            )
        })?;
        let name = if unit.name.is_null() {
            "C unit".to_string()
        } else {
            // SAFETY: the caller's contract.
            unsafe { boundary::c_str(unit.name, function, "unit->name") }?.to_string()
        };
        // SAFETY: the caller's contract.
        let symbols = unsafe {
            boundary::c_slice(unit.symbols, unit.symbol_count, function, "unit->symbols")
        }?;
        let mut owned = Vec::with_capacity(symbols.len());
        for (i, s) in symbols.iter().enumerate() {
            // SAFETY: the caller's contract.
            let symbol =
                unsafe { boundary::c_str(s.name, function, &format!("unit->symbols[{i}].name")) }?;
            owned.push((
                session.intern(symbol),
                flags_from(s.flags, function, &format!("unit->symbols[{i}].flags"))?,
            ));
        }
        Ok(CUnit {
            name,
            symbols: owned,
            materialize,
            discard: unit.discard,
            data,
        })
    }
}

impl MaterializationUnit for CUnit {
    fn name(&self) -> &str {
        &self.name
    }

    fn symbols(&self) -> Vec<(SymbolName, SymbolFlags)> {
        self.symbols.clone()
    }

    fn materialize(self: Box<Self>, responsibility: MaterializationResponsibility) {
        let CUnit {
            materialize, data, ..
        } = *self;
        let pointer = data.pointer();
        // The user data moves to the responsibility: destroyed when C
        // disposes it, so a materializer finishing later still has it.
        let handle = boundary::new_handle::<lazyrt_responsibility>(ResponsibilityHandle::new(
            responsibility,
            Some(std::sync::Arc::new(data)),
        ));
        // SAFETY: the C materializer, given its user data and a
        // responsibility it now owns.
        unsafe { materialize(pointer, handle) };
    }

    fn discard(&mut self, dylib: &JitDylib, symbol: &SymbolName) {
        self.symbols.retain(|(s, _)| s != symbol);
        if let Some(discard) = self.discard {
            let name = CString::new(symbol.as_str()).unwrap_or_default();
            // SAFETY: the C callback, with a borrowed dylib handle and a
            // name that live for the call.
            unsafe {
                discard(
                    self.data.pointer(),
                    (dylib as *const JitDylib).cast(),
                    name.as_ptr(),
                )
            };
        }
    }
}

/// Defines `unit` in `dylib` under `tracker` (NULL: the default tracker).
pub(crate) fn define(
    dylib: &JitDylib,
    tracker: Option<&ResourceTracker>,
    unit: Box<dyn MaterializationUnit>,
) -> Result<(), Failure> {
    match tracker {
        Some(tracker) => dylib.define_boxed_with(unit, tracker)?,
        None => dylib.define_boxed(unit)?,
    }
    Ok(())
}

/// Defines a C unit: it is materialized (its `materialize` called) the
/// first time one of its symbols is looked up, at most once. A strong
/// symbol already defined is `LAZYRT_DUPLICATE_DEFINITION` and nothing is
/// defined. From this call on the unit's user data is lazyrt's: `destroy`
/// runs exactly once, also when this call fails.
///
/// Any thread, including materializers.
///
/// # Safety
/// `dylib` is a live or borrowed handle, `tracker` NULL or a live handle;
/// `unit` points to a valid description; `error` is NULL or a live error
/// object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_jit_dylib_define_unit(
    dylib: *const lazyrt_jit_dylib,
    tracker: *const lazyrt_resource_tracker,
    unit: *const lazyrt_materialization_unit,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_jit_dylib_define_unit";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let dylib = unsafe { boundary::borrow(dylib, F, "dylib") };
        let session = dylib.clone().and_then(session_of);
        // The unit's user data is taken before the session's error is
        // returned, so destroy runs on every path.
        // SAFETY: the caller's contract.
        let unit = unsafe { CUnit::from_c(session, unit, F) }?;
        let dylib = dylib?;
        // SAFETY: the caller's contract.
        let tracker = unsafe { tracker.cast::<ResourceTracker>().as_ref() };
        define(dylib, tracker, Box::new(unit))
    })
}

/// An alias `name -> target`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct lazyrt_alias {
    /// The alias (NUL-terminated UTF-8).
    pub name: *const c_char,
    /// What it stands for (NUL-terminated UTF-8).
    pub target: *const c_char,
    /// The alias's `LAZYRT_SYMBOL_*` flags.
    pub flags: lazyrt_symbol_flags,
}

/// `LAZYRT_FOREIGN_DYLIB` unless `source` belongs to `session`.
pub(crate) fn check_same_session(
    session: &Session,
    source: &JitDylib,
    function: &str,
) -> Result<(), Failure> {
    if source.session()? == *session {
        return Ok(());
    }
    Err(Failure::new(
        LAZYRT_FOREIGN_DYLIB,
        format!(
            "{function}: JITDylib {} (`source`) belongs to another session",
            source.name()
        ),
    ))
}

/// `alias -> (target, flags)`, as the Rust unit constructors take them.
pub(crate) type AliasList = Vec<(SymbolName, (SymbolName, SymbolFlags))>;

/// Reads `aliases[0..count]`.
///
/// # Safety
/// `aliases` holds `count` valid entries.
pub(crate) unsafe fn read_aliases(
    session: &Session,
    aliases: *const lazyrt_alias,
    count: usize,
    function: &str,
) -> Result<AliasList, Failure> {
    // SAFETY: the caller's contract.
    let aliases = unsafe { boundary::c_slice(aliases, count, function, "aliases") }?;
    aliases
        .iter()
        .enumerate()
        .map(|(i, a)| {
            // SAFETY: the caller's contract.
            let name = unsafe { boundary::c_str(a.name, function, &format!("aliases[{i}].name")) }?;
            // SAFETY: the caller's contract.
            let target =
                unsafe { boundary::c_str(a.target, function, &format!("aliases[{i}].target")) }?;
            let flags = flags_from(a.flags, function, &format!("aliases[{i}].flags"))?;
            Ok((session.intern(name), (session.intern(target), flags)))
        })
        .collect()
}

/// Defines aliases within `dylib` (targets looked up in `dylib` itself,
/// every symbol visible) when `source` is NULL, or reexports of `source`'s
/// exported symbols. An alias resolves to its target's address.
///
/// Any thread.
///
/// # Safety
/// `dylib` is a live or borrowed handle; `tracker` and `source` NULL or
/// live handles; `aliases` holds `count` valid entries; `error` is NULL or
/// a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_jit_dylib_define_reexports(
    dylib: *const lazyrt_jit_dylib,
    tracker: *const lazyrt_resource_tracker,
    source: *const lazyrt_jit_dylib,
    aliases: *const lazyrt_alias,
    count: usize,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_jit_dylib_define_reexports";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let dylib = unsafe { boundary::borrow(dylib, F, "dylib") }?;
        let session = session_of(dylib)?;
        // SAFETY: the caller's contract.
        let aliases = unsafe { read_aliases(&session, aliases, count, F) }?;
        // SAFETY: the caller's contract.
        let tracker = unsafe { tracker.cast::<ResourceTracker>().as_ref() };
        // SAFETY: the caller's contract.
        let unit = match unsafe { source.cast::<JitDylib>().as_ref() } {
            Some(source) => {
                check_same_session(&session, source, F)?;
                lazyrt::reexports(source, aliases)
            }
            None => lazyrt::aliases(aliases),
        };
        define(dylib, tracker, Box::new(unit))
    })
}
