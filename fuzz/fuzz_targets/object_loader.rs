//! The object linker's loader on arbitrary bytes: parsing, symbol
//! resolution, units, layout and every relocation, at fixed addresses with
//! nothing mapped or run (`lazyrt_linker::dry_run`). Any input must give a
//! result or a `LinkError`, never a panic, a hang or a huge allocation.
//! Seeds: real gcc objects in `fuzz/seeds/object_loader`.
#![no_main]

use lazyrt_linker::{DryRunAddresses, dry_run};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
