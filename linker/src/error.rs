//! Link errors: each names the object file, and where it applies the
//! section, the offset and the symbol, so a user can find the input that
//! was wrong.

/// Why objects could not be loaded, linked or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// A file could not be read.
    #[error("{path}: cannot read: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// Not an ELF relocatable object, or a corrupt one.
    #[error("{object}: malformed ELF object: {reason}")]
    Malformed {
        /// The file.
        object: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A static archive that cannot be read.
    #[error("{archive}: malformed archive: {reason}")]
    MalformedArchive {
        /// The archive.
        archive: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An ELF object for another machine, class or byte order, or not
    /// relocatable.
    #[error("{object}: {reason}")]
    WrongKind {
        /// The file.
        object: String,
        /// What it is instead (e.g. "not an x86-64 object: machine 183 (AArch64)").
        reason: String,
    },
    /// A relocation this linker does not implement.
    #[error("{site}: unsupported relocation {} (type {raw_type})", site.type_name)]
    UnsupportedRelocation {
        /// Where.
        site: Box<RelocationSite>,
        /// `r_type`.
        raw_type: u32,
    },
    /// A relocation's value does not fit its field.
    #[error("{site}: relocation {} is out of range: value {value:#x} does not fit ({detail})", site.type_name)]
    OutOfRange {
        /// Where.
        site: Box<RelocationSite>,
        /// The value computed.
        value: i128,
        /// Why (e.g. the target is a host library beyond ±2 GiB).
        detail: String,
    },
    /// A symbol referenced but defined nowhere (objects, libraries, process).
    #[error("undefined symbol `{symbol}` (referenced by {referenced_by})")]
    UndefinedSymbol {
        /// The name.
        symbol: String,
        /// The objects referencing it, comma-separated.
        referenced_by: String,
    },
    /// Two strong definitions of one symbol.
    #[error("duplicate definition of `{symbol}` in {first} and {second}")]
    DuplicateDefinition {
        /// The name.
        symbol: String,
        /// The object that defined it first.
        first: String,
        /// The object that defined it again.
        second: String,
    },
    /// A library given with `-l`/`--lib` could not be found or opened.
    #[error("library {library}: {reason}")]
    Library {
        /// The `-l` name or path.
        library: String,
        /// Why.
        reason: String,
    },
    /// The program's thread-local storage does not fit the static TLS block.
    #[error("{reason}")]
    ThreadLocalStorage {
        /// What does not fit or is unavailable.
        reason: String,
    },
    /// Something the linker does not support (named).
    #[error("{object}: {what} is not supported")]
    Unsupported {
        /// The file.
        object: String,
        /// What.
        what: String,
    },
    /// The program's code and data could not be placed within ±2 GiB of
    /// each other, or the executor cannot hold them.
    #[error("cannot place the program: {reason}")]
    Placement {
        /// Why.
        reason: String,
    },
    /// A constructor array or an unwind table could not be set up.
    #[error("{object}: {reason}")]
    Startup {
        /// The file.
        object: String,
        /// Why.
        reason: String,
    },
    /// The objects define no `main`.
    #[error("no `main` is defined by the objects")]
    NoMain,
    /// The session or the executor failed.
    #[error(transparent)]
    Session(#[from] lazyrt::Error),
}

/// Where a relocation is: `a.o: .text.f+0x10 against `g``.
#[derive(Debug, Clone)]
pub struct RelocationSite {
    /// The file.
    pub object: String,
    /// The section the relocation applies to.
    pub section: String,
    /// Its offset in that section.
    pub offset: u64,
    /// Its type's name (`R_X86_64_…`).
    pub type_name: &'static str,
    /// The symbol it refers to.
    pub symbol: String,
}

impl std::fmt::Display for RelocationSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}+{:#x} against `{}`",
            self.object, self.section, self.offset, self.symbol
        )
    }
}

/// Results of this crate.
pub type Result<T, E = LinkError> = std::result::Result<T, E>;
