use super::*;

/// `fn() -> u32` returning `value` (at most 16 bits on AArch64).
fn returns(value: u32) -> Vec<u8> {
    if cfg!(target_arch = "aarch64") {
        // movz w0, #value; ret
        let movz = 0x5280_0000 | ((value & 0xffff) << 5);
        [movz, 0xd65f_03c0u32]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect()
    } else {
        // mov eax, imm32; ret
        let mut code = vec![0xb8];
        code.extend_from_slice(&value.to_le_bytes());
        code.push(0xc3);
        code
    }
}

fn service() -> MemoryService {
    MemoryService::new(crate::bootstrap::page_size())
}

fn write(m: &MemoryService, address: u64, bytes: &[u8]) -> Result<(), String> {
    m.write_code(&[CodeWriteView { address, bytes }])
}

#[test]
fn written_code_runs_and_counts_as_code() {
    let m = service();
    let base = m.reserve_code(1 << 16).unwrap();
    write(&m, base, &returns(42)).unwrap();
    write(&m, base + 16, &returns(7)).unwrap();
    assert!(m.is_code(base) && m.is_code(base + 16));
    assert!(!m.is_code(base + 8) && !m.is_code(base + 4096));
    assert!(m.is_finalized(base + 16, 6.min(returns(7).len() as u64)));
    assert_eq!(m.reservation_base(base + 16), Some(base));
    for (address, value) in [(base, 42), (base + 16, 7)] {
        // SAFETY: the bytes written there are a `fn() -> u32`.
        let f = unsafe { std::mem::transmute::<usize, extern "C" fn() -> u32>(address as usize) };
        assert_eq!(f(), value);
    }
    m.release(base).unwrap();
    assert!(!m.is_code(base));
    assert!(m.release(base).is_err());
}

#[test]
fn writes_are_bounded_and_never_rewrite_code() {
    let m = service();
    let base = m.reserve_code(4096).unwrap();
    let plain = m.reserve(4096).unwrap();
    let err = |r: Result<(), String>| r.unwrap_err();
    assert!(err(write(&m, base + 4090, &[0; 8])).contains("not inside a code region"));
    assert!(err(write(&m, base, &[])).contains("empty"));
    assert!(err(write(&m, plain, &[0xc3])).contains("not inside a code region"));
    assert!(err(write(&m, 0x1000, &[0xc3])).contains("not inside a code region"));
    write(&m, base + 32, &[0xc3; 16]).unwrap();
    for (address, len) in [(base + 32, 1), (base + 40, 4), (base + 24, 9), (base, 64)] {
        assert!(err(write(&m, address, &vec![0; len])).contains("overlaps"));
    }
    // Two ranges of one request overlapping each other: nothing written.
    let both = [
        CodeWriteView {
            address: base + 100,
            bytes: &[1; 8],
        },
        CodeWriteView {
            address: base + 104,
            bytes: &[2; 8],
        },
    ];
    assert!(err(m.write_code(&both)).contains("overlaps"));
    assert!(!m.is_code(base + 100));
    // A code region takes no finalize (its pages are shared with the alias).
    let segment = SegmentView {
        address: base + 2048,
        protection: Protection::ReadExecute,
        bytes: &[0xc3],
    };
    assert!(m.finalize(&[segment]).is_err());
    m.release(base).unwrap();
    m.release(plain).unwrap();
}

#[test]
fn patches_are_checked_before_any_applies() {
    let m = service();
    let base = m.reserve_code(4096).unwrap();
    write(&m, base, &[0u8; 128]).unwrap();
    let patch = |address, expected, new| CodePatchView {
        address,
        expected,
        new,
    };
    let err = |p: &[CodePatchView]| m.patch_code(p).unwrap_err();
    // Outside written code, partly outside, straddling a cache line.
    assert!(err(&[patch(base + 200, 0, 1)]).contains("not inside code written"));
    assert!(err(&[patch(base + 126, 0, 1)]).contains("not inside code written"));
    assert!(err(&[patch(base + 62, 0, 1)]).contains("straddles"));
    if cfg!(target_arch = "aarch64") {
        assert!(err(&[patch(base + 1, 0, 1)]).contains("4-aligned"));
    }
    // A mismatch in the second patch leaves the first unapplied.
    let e = err(&[patch(base + 8, 0, 0xdead_beef), patch(base + 12, 5, 6)]);
    assert!(e.contains("not the expected 0x00000005"), "{e}");
    m.patch_code(&[patch(base + 12, 0, 0x0102_0304)]).unwrap();
    // SAFETY: the region is mapped and readable.
    let word = |a: u64| unsafe { std::ptr::read_unaligned(a as *const u32) };
    assert_eq!(word(base + 8), 0);
    assert_eq!(word(base + 12), 0x0102_0304);
    if cfg!(target_arch = "x86_64") {
        // Unaligned but inside one line is fine on x86-64.
        m.patch_code(&[patch(base + 33, 0, 0xaabb_ccdd)]).unwrap();
        assert_eq!(word(base + 33), 0xaabb_ccdd);
    }
    m.release(base).unwrap();
    assert!(err(&[patch(base + 12, 0x0102_0304, 0)]).contains("not inside code written"));
}

#[test]
fn a_forked_child_gets_code_of_its_own() {
    let m = service();
    let base = m.reserve_code(4096).unwrap();
    write(&m, base, &[0u8; 64]).unwrap();
    let patch = |expected, new| {
        m.patch_code(&[CodePatchView {
            address: base,
            expected,
            new,
        }])
    };
    // SAFETY: the child only makes system calls and reads memory before
    // `_exit`.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // Child: wait for the parent's patch, then check it did not arrive.
        // SAFETY: plain system calls; the word is mapped.
        unsafe {
            libc::usleep(200_000);
            let word = std::ptr::read_volatile(base as *const u32);
            libc::_exit(if word == 0 { 0 } else { 1 });
        }
    }
    assert!(pid > 0);
    patch(0, 0x1234_5678).unwrap();
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    m.release(base).unwrap();
}

#[test]
fn reservations_near_an_address_land_within_a_gib_of_it() {
    let m = service();
    // An address far from where mmap puts things by default (8 GiB below
    // this function's code), with free room around it.
    let near = (returns as *const () as u64).saturating_sub(8 << 30) & !0xffff;
    let data = m.reserve_near(1 << 20, Some(near)).unwrap();
    let code = m.reserve_code_near(1 << 20, Some(near)).unwrap();
    for (what, base) in [("data", data), ("code", code)] {
        assert!(
            base.abs_diff(near) <= 1 << 30,
            "{what} at {base:#x}, {near:#x} asked"
        );
    }
    write(&m, code, &returns(9)).unwrap();
    // SAFETY: the bytes written there are a `fn() -> u32`.
    let f: extern "C" fn() -> u32 = unsafe { std::mem::transmute(code as usize) };
    assert_eq!(f(), 9);
    m.release(data).unwrap();
    m.release(code).unwrap();
}
