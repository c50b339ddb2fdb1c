//! # lazyrt-linker
//!
//! A per-function lazy linker for relocatable ELF x86-64 objects, on top of
//! lazyrt: each function of the objects gets a lazy entry, and its code is
//! linked (relocated, written W^X, its callers' calls patched to direct
//! ones) on its first call, not the whole object. `lazyrt run a.o b.o --
//! args` runs C programs this way; JITs that produce object files load
//! them with [`Program::load`].
//!
//! ```no_run
//! use lazyrt::Session;
//! use lazyrt_linker::{LinkOptions, Program};
//!
//! let session = Session::new();
//! let program = Program::load_files(&session, &["main.o".into(), "util.o".into()], &LinkOptions::default())?;
//! // SAFETY: runs the program's constructors and main in this process.
//! let status = unsafe { program.run_main(&["main".into()], None)? };
//! println!("{} of {} functions linked", program.stats().functions_linked, program.stats().functions);
//! # let _ = status;
//! # Ok::<(), lazyrt_linker::LinkError>(())
//! ```
//!
//! Which file owns which step:
//! - `input.rs`: reading and checking objects (sections, symbols,
//!   relocations classified by `relocation.rs`);
//! - `archive.rs`: static archives: the members the objects need;
//! - `resolve.rs`: binding global names (strong, weak, COMMON, COMDAT);
//! - `host_libraries.rs`: names from the process and `-l` libraries;
//! - `units.rs`: function entries and link units;
//! - `image.rs`: where everything is placed and what each symbol stands for;
//! - `link.rs`: applying relocations, binding calls, veneers;
//! - `intra_object_calls.rs`: first calls within an object keep `r11`;
//! - `static_tls.rs`: thread-local storage;
//! - `program.rs`: loading (the steps above, in order);
//! - `unit_link.rs`: linking a unit, patching calls already linked;
//! - `host_data.rs`: libc data reached PC-relative: placement and checks;
//! - `low_placement.rs`: code with absolute 32-bit addresses (non-PIC):
//!   placement below 2 GiB and checks;
//! - `unload.rs`: what dropping a program undoes;
//! - `data_load.rs`: data, GOT, TLS image and unwind tables at load;
//! - `entries.rs`: the session's units and lazy entries, and guard entries;
//! - `startup.rs`: constructors, `main`, destructors;
//! - `dry_run.rs`: a whole link at fixed addresses, nothing mapped (fuzzing,
//!   relocation tests).

mod archive;
mod data_load;
mod dry_run;
mod entries;
mod error;
mod fx_hash;
mod host_data;
mod host_libraries;
mod image;
mod input;
mod intra_object_calls;
mod link;
mod low_placement;
mod program;
pub mod relocation;
mod resolve;
mod startup;
mod static_tls;
mod unit_link;
mod units;
mod unload;

pub use dry_run::{DryRun, DryRunAddresses, dry_run};
pub use error::{LinkError, RelocationSite, Result};
pub use host_libraries::Library;
pub use input::{ObjectFile, parse_object};
pub use program::{LinkEvent, LinkMode, LinkOptions, LinkStats, Program};
