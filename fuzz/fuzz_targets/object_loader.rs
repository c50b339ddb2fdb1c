//! The object linker's loader on arbitrary bytes: parsing, symbol
//! resolution, units, layout and every relocation, at fixed addresses with
//! nothing mapped or run (`lazyrt_linker::dry_run`). Any input must give a
//! result or a `LinkError`, never a panic, a hang or a huge allocation.
//! Seeds: real gcc objects in `fuzz/seeds/object_loader`, and an archive
//! of two of them (`sw_lib.a`), which is also linked after the object that
//! needs its members (`sw_main.o`), so member selection and loading run.
#![no_main]

use lazyrt_linker::{DryRunAddresses, dry_run};
use libfuzzer_sys::fuzz_target;

/// An object whose undefined names `sw_lib.a`'s members define.
const ARCHIVE_USER: &[u8] = include_bytes!("../seeds/object_loader/sw_main.o");

fuzz_target!(|data: &[u8]| {
    if data.starts_with(b"!<arch>\n") {
        let with_user = [
            ("sw_main.o".to_string(), ARCHIVE_USER.to_vec()),
            ("fuzz.a".to_string(), data.to_vec()),
        ];
        let _ = dry_run(&with_user, DryRunAddresses::default());
    }
    let one = [("fuzz.o".to_string(), data.to_vec())];
    if dry_run(&one, DryRunAddresses::default()).is_ok() {
        // Twice: duplicate definitions, COMDAT groups kept once, far data.
        let two = [one[0].clone(), ("again.o".to_string(), data.to_vec())];
        let far = DryRunAddresses {
            host: 0x7f00_0000_0000,
            ..DryRunAddresses::default()
        };
        let _ = dry_run(&two, far);
    }
});
