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
