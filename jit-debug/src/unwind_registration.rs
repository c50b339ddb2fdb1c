//! Gives a unit's `.eh_frame` to the process's unwinder, so backtraces,
//! panics and C++-style unwinding walk through JIT code.
//!
//! On linux-gnu the unwinder is libgcc's (`libgcc_s`, which Rust binaries
//! link): `__register_frame` takes the start of a whole `.eh_frame`
//! section (CIEs and FDEs up to a zero length word) and
//! `__deregister_frame` must get the same pointer back before the memory
//! goes away. (LLVM's libunwind, as on macOS, takes one FDE per call
//! instead; this crate targets libgcc.)

unsafe extern "C" {
    fn __register_frame(begin: *const u8);
    fn __deregister_frame(begin: *const u8);
}

/// Checks what libgcc relies on when it walks an `.eh_frame` section (at
/// registration, or at the first unwind): every entry's length stays
/// inside the section, no 64-bit DWARF entry, every FDE's CIE pointer
/// points back at a CIE of the section, and the zero terminator is the
/// last word. A section that fails would make the unwinder read past it.
pub(crate) fn check_eh_frame(bytes: &[u8]) -> Result<(), String> {
    let word = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut cies = Vec::new();
    let mut at = 0usize;
    loop {
        let Some(length) = word(at) else {
            return Err(format!(
                ".eh_frame: no zero terminator within its {} bytes",
                bytes.len()
            ));
        };
        if length == 0 {
            return if at + 4 == bytes.len() {
                Ok(())
            } else {
                Err(format!(
                    ".eh_frame: terminator at offset {at}, but the section has {} bytes",
                    bytes.len()
                ))
            };
        }
        if length == u32::MAX {
            return Err(format!(
                ".eh_frame: 64-bit DWARF entry at offset {at} (not accepted)"
            ));
        }
        let end = at + 4 + length as usize;
        if length < 4 || end > bytes.len() {
            return Err(format!(
                ".eh_frame: the entry at offset {at} ({length} bytes) runs past the section"
            ));
        }
        match word(at + 4) {
            Some(0) => cies.push(at),
            Some(pointer) => {
                let cie = (at + 4).checked_sub(pointer as usize);
                if !cie.is_some_and(|c| cies.contains(&c)) {
                    return Err(format!(
                        ".eh_frame: the FDE at offset {at} points at no CIE of the section"
                    ));
                }
            }
            None => unreachable!("length >= 4 and end is inside"),
        }
        at = end;
    }
}

/// An `.eh_frame` section known to the unwinder until this is dropped.
pub(crate) struct UnwindRegistration {
    begin: *const u8,
}

// SAFETY: the pointer is only handed back to libgcc, which locks
// internally; it is never dereferenced here.
unsafe impl Send for UnwindRegistration {}

impl UnwindRegistration {
    /// Registers the `.eh_frame` section at `begin`.
    ///
    /// # Safety
    ///
    /// `begin` is a well-formed `.eh_frame` section ending with a zero
    /// length word, readable until the returned value is dropped, and not
    /// registered already.
    pub(crate) unsafe fn register(begin: *const u8) -> Self {
        // SAFETY: the caller guarantees a valid, zero-terminated section
        // that outlives the registration.
        unsafe { __register_frame(begin) };
        Self { begin }
    }
}

impl Drop for UnwindRegistration {
    fn drop(&mut self) {
        // SAFETY: `begin` was registered by `register` and is deregistered
        // once, here, while still readable (the `register` contract).
        // libgcc skips an empty section in both calls alike.
        unsafe { __deregister_frame(self.begin) };
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `struct dwarf_eh_bases` of libgcc's `unwind-dw2-fde.h`.
    #[repr(C)]
    struct DwarfEhBases {
        tbase: *mut u8,
        dbase: *mut u8,
        func: *mut u8,
    }

    unsafe extern "C" {
        fn _Unwind_Find_FDE(pc: *mut u8, bases: *mut DwarfEhBases) -> *const u8;
    }

    /// Does the unwinder know an FDE covering `pc`?
    pub(crate) fn unwinder_knows(pc: u64) -> bool {
        let mut bases = DwarfEhBases {
            tbase: std::ptr::null_mut(),
            dbase: std::ptr::null_mut(),
            func: std::ptr::null_mut(),
        };
        // SAFETY: `bases` is writable; the lookup only reads registered
        // tables.
        !unsafe { _Unwind_Find_FDE(pc as *mut u8, &mut bases) }.is_null()
    }

    /// An `.eh_frame` with one CIE (augmentation "zR", absolute 8-byte
    /// pointers) and one FDE for `[start, start + len)`, zero-terminated.
    pub(crate) fn eh_frame_for(start: u64, len: u64) -> Vec<u8> {
        let mut cie = vec![0u8; 4]; // length, patched below
        cie.extend_from_slice(&0u32.to_le_bytes()); // CIE id
        cie.push(1); // version
        cie.extend_from_slice(b"zR\0");
        cie.extend_from_slice(&[1, 0x78, 16]); // code align 1, data align -8, RA reg 16
        cie.extend_from_slice(&[1, 0x00]); // augmentation length 1, DW_EH_PE_absptr
        cie.extend_from_slice(&[0x0c, 7, 8]); // DW_CFA_def_cfa r7 + 8
        while !cie.len().is_multiple_of(8) {
            cie.push(0); // DW_CFA_nop
        }
        let cie_len = (cie.len() - 4) as u32;
        cie[..4].copy_from_slice(&cie_len.to_le_bytes());

        let mut fde = vec![0u8; 4];
        let cie_pointer = (cie.len() + 4) as u32; // from this field back to the CIE
        fde.extend_from_slice(&cie_pointer.to_le_bytes());
        fde.extend_from_slice(&start.to_le_bytes());
        fde.extend_from_slice(&len.to_le_bytes());
        fde.push(0); // augmentation length
        while !fde.len().is_multiple_of(8) {
            fde.push(0);
        }
        let fde_len = (fde.len() - 4) as u32;
        fde[..4].copy_from_slice(&fde_len.to_le_bytes());

        let mut out = cie;
        out.extend_from_slice(&fde);
        out.extend_from_slice(&0u32.to_le_bytes());
        out
    }

    #[test]
    fn malformed_sections_are_named_before_the_unwinder_reads_them() {
        let good = eh_frame_for(0x1000, 0x40);
        check_eh_frame(&good).unwrap();
        let fails = |bytes: &[u8], says: &str| {
            let e = check_eh_frame(bytes).unwrap_err();
            assert!(e.contains(says), "{e} (expected {says:?})");
        };
        fails(&good[..good.len() - 4], "no zero terminator");
        fails(&[good.as_slice(), &[0; 4]].concat(), "terminator at offset");
        let mut long = good.clone();
        long[..4].copy_from_slice(&0x1000u32.to_le_bytes());
        fails(&long, "runs past the section");
        let mut wide = good.clone();
        wide[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        fails(&wide, "64-bit");
        let fde = u32::from_le_bytes(good[..4].try_into().unwrap()) as usize + 4;
        let mut orphan = good.clone();
        orphan[fde + 4..fde + 8].copy_from_slice(&3u32.to_le_bytes());
        fails(&orphan, "points at no CIE");
        fails(&[], "no zero terminator");
        // Every truncation fails cleanly (no panic, no read past the end).
        for len in 0..good.len() - 1 {
            assert!(check_eh_frame(&good[..len]).is_err(), "{len}");
        }
    }

    #[test]
    fn register_then_deregister_is_seen_by_the_unwinder() {
        // A made-up code range nobody else describes.
        let pc = 0x0000_7eee_0000_1000u64;
        let eh = eh_frame_for(pc, 0x40);
        assert!(!unwinder_knows(pc + 8));
        // SAFETY: `eh` is a well-formed, zero-terminated section that
        // outlives the registration.
        let registration = unsafe { UnwindRegistration::register(eh.as_ptr()) };
        assert!(unwinder_knows(pc + 8));
        assert!(!unwinder_knows(pc + 0x40));
        drop(registration);
        assert!(!unwinder_knows(pc + 8));
    }
}
