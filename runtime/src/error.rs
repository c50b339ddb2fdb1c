//! Typed errors of the runtime API and of resolvers.
//!
//! Both are `Clone + Send + Sync + 'static` and keep their causes as
//! [`std::error::Error::source`]s, so an embedder (the manager) can wrap them
//! in its own error type and its callers can still match the variant and walk
//! the chain.

use std::sync::Arc;

use crate::EntryId;

/// What the runtime API can refuse.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// lazyrt has no reentry assembly for this target.
    #[error(
        "lazyrt does not support {target}: reentry assembly exists for x86_64-linux and aarch64-linux only"
    )]
    Unsupported {
        /// `arch-os` of the build.
        target: String,
    },
    /// The id was never handed out by this runtime.
    #[error("{entry} does not exist")]
    UnknownEntry {
        /// The id that was passed.
        entry: EntryId,
    },
    /// The entry was freed.
    #[error("{entry} ({name}) was removed")]
    EntryRemoved {
        /// The freed entry.
        entry: EntryId,
        /// Its name when it was live.
        name: String,
    },
    /// [`Runtime::resolve`](crate::Runtime::resolve) found no implementation:
    /// the resolver failed (now or on an earlier call), or resolving the
    /// entry needs the entry itself.
    #[error("cannot resolve {name}: {reason}")]
    ResolveFailed {
        /// The entry.
        entry: EntryId,
        /// Its name.
        name: String,
        /// Why (the failure handler's reason, as text).
        reason: String,
        /// The resolver's own error, when that is why (a panic, a removal or
        /// a cycle has none).
        #[source]
        source: Option<ResolveError>,
    },
    /// A batch listed the same entry twice.
    #[error("{entry} is listed more than once in one call")]
    DuplicateEntry {
        /// The repeated entry.
        entry: EntryId,
    },
    /// An entry name longer than the runtime stores.
    #[error("entry name of {len} bytes starting {prefix:?} is too long (at most {max} bytes)")]
    NameTooLong {
        /// Its length.
        len: usize,
        /// Its first characters.
        prefix: String,
        /// The limit.
        max: usize,
    },
    /// The 32-bit entry index space (or the batch table) is used up.
    #[error("cannot create {requested} more entries: {what} is exhausted")]
    Exhausted {
        /// How many entries were asked for.
        requested: usize,
        /// Which table ran out.
        what: &'static str,
    },
    /// The operating system refused memory for a block.
    #[error("cannot {operation} {bytes} bytes for a block of entries: {source}")]
    Memory {
        /// `mmap` or `mprotect`.
        operation: &'static str,
        /// How much.
        bytes: usize,
        /// What the OS said (shared, so the error stays `Clone`).
        source: Arc<std::io::Error>,
    },
}

impl RuntimeError {
    pub(crate) fn unsupported() -> Self {
        RuntimeError::Unsupported {
            target: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
        }
    }
}

/// Why a resolver could not produce an implementation address. Cheap to
/// create from a message or from any error; cloning shares the wrapped error.
#[derive(Debug, Clone)]
pub struct ResolveError {
    // Boxed: the error travels inside `RuntimeError` and the manager's
    // errors, which stay small.
    message: Box<str>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    retry: bool,
}

impl ResolveError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into().into_boxed_str(),
            source: None,
            retry: false,
        }
    }

    /// Wraps another error; the message is its `Display`.
    pub fn from_error(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            message: error.to_string().into_boxed_str(),
            source: Some(Arc::new(error)),
            retry: false,
        }
    }

    /// Makes the failure not stick: this call still reaches the failure
    /// handler, but the entry goes back to unresolved, so the next call
    /// runs the resolver again (which may succeed once the implementation
    /// is fixed, say redefined after a compile error). Without it, every
    /// later call fails at once with this error.
    pub fn retry_later(mut self) -> Self {
        self.retry = true;
        self
    }

    /// Whether [`ResolveError::retry_later`] was asked.
    pub fn is_retryable(&self) -> bool {
        self.retry
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ResolveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_wrappable<E: std::error::Error + Clone + Send + Sync + 'static>() {}

    #[test]
    fn errors_can_be_wrapped_by_an_embedder() {
        assert_wrappable::<RuntimeError>();
        assert_wrappable::<ResolveError>();
    }

    #[test]
    fn resolve_error_keeps_its_source_through_clones() {
        use std::error::Error;
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no object file");
        let error = ResolveError::from_error(io).clone();
        assert_eq!(error.message(), "no object file");
        let source = error.source().expect("the wrapped error is the source");
        assert_eq!(source.to_string(), "no object file");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
        assert!(ResolveError::new("plain").source().is_none());
    }

    #[test]
    fn unsupported_names_the_target_and_what_is_supported() {
        let message = RuntimeError::unsupported().to_string();
        let target = format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS);
        assert_eq!(
            message,
            format!(
                "lazyrt does not support {target}: reentry assembly exists for x86_64-linux and aarch64-linux only"
            )
        );
    }
}
