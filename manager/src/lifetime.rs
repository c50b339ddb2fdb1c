//! How a session ends: [`Session::end`], or its last [`Session`] handle
//! being dropped (the same steps), and [`WeakSession`], the reference
//! everything else holds.
//!
//! The rule (one sentence, stated on [`Session`]): only `Session` handles
//! keep a session alive. JITDylib and tracker handles, responsibilities,
//! the LazyReexportsManager and everything stored in the session's state
//! refer to it through a [`WeakSession`] or by id, so no cycle through the
//! state can keep a session whose users are gone.

use std::sync::{Arc, Weak};

use crate::error::Error;
use crate::session::{Session, SessionInner};

use crate::tracker::Cleanup;

/// A reference to a session that does not keep it alive (what JITDylib and
/// tracker handles hold). Capture one instead of a [`Session`] in
/// generators and units the session stores.
///
/// ```
/// use lazyrt::{Error, Session};
/// let session = Session::new();
/// let weak = session.downgrade();
/// let jd = session.create_jit_dylib("main")?;
/// assert!(weak.upgrade().is_some());
/// drop(session); // the last handle: the session ends
/// assert!(weak.upgrade().is_none());
/// assert!(matches!(jd.create_resource_tracker(), Err(Error::SessionEnded)));
/// # Ok::<(), lazyrt::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct WeakSession(Weak<SessionInner>);

impl std::fmt::Debug for WeakSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WeakSession")
    }
}

impl WeakSession {
    /// A reference to `inner`'s session.
    pub(crate) fn of(inner: &Arc<SessionInner>) -> Self {
        Self(Arc::downgrade(inner))
    }

    /// The session, while some [`Session`] handle still keeps it.
    pub fn upgrade(&self) -> Option<Session> {
        self.0.upgrade().map(|inner| Session { inner })
    }

    /// The session, or [`Error::SessionEnded`].
    pub(crate) fn live(&self) -> Result<Session, Error> {
        self.upgrade().ok_or(Error::SessionEnded)
    }

    /// Whether both refer to the same session.
    pub(crate) fn ptr_eq(&self, other: &WeakSession) -> bool {
        Weak::ptr_eq(&self.0, &other.0)
    }

    /// Whether this refers to `session` (no reference count touched).
    pub(crate) fn is(&self, session: &Session) -> bool {
        std::ptr::eq(self.0.as_ptr(), Arc::as_ptr(&session.inner))
    }
}

/// What ending takes out of the state, to finish without the lock.
#[derive(Default)]
struct Leftovers {
    /// Lookup callbacks to fail.
    callbacks: Vec<crate::session::LookupCallback>,
    /// Unstarted units, JITDylibs (with generators and link orders):
    /// dropped after the lock, since dropping them runs user code.
    units: Vec<crate::symbol_table::PendingUnit>,
    dylibs: Vec<crate::symbol_table::DylibState>,
    cleanups: Vec<Cleanup>,
}

impl SessionInner {
    /// The steps of [`Session::end`]; also run when the last handle goes.
    pub(crate) fn end(&self) {
        let leftovers = {
            let mut state = self.lock();
            if state.ended {
                return;
            }
            state.ended = true;
            state.take_leftovers()
        };
        for callback in leftovers.callbacks {
            callback(Err(Error::SessionEnded));
        }
        drop(leftovers.units);
        drop(leftovers.dylibs);
        self.speculator.end();
        self.dispatcher.shutdown();
        for cleanup in leftovers.cleanups {
            cleanup();
        }
    }
}

impl Drop for SessionInner {
    fn drop(&mut self) {
        self.end();
    }
}

impl crate::state::State {
    /// Empties the state for [`SessionInner::end`]: fails the queries
    /// (one-symbol lookups collecting their own result find the error in
    /// their row), takes the units, JITDylibs and clean-ups out.
    fn take_leftovers(&mut self) -> Leftovers {
        let callbacks = self.queries.fail_all(&Error::SessionEnded);
        self.waiters = Default::default();
        self.readiness = Default::default();
        let (dylibs, units) = self.symbols.take_all();
        Leftovers {
            callbacks,
            units,
            dylibs,
            cleanups: self.trackers.take_all_cleanups(),
        }
    }
}
