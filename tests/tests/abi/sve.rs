//! AArch64 SVE arguments (issue #19): the first call of an entry created
//! [`EntrySpec::with_sve_arguments`] reaches its implementation with z0-z7
//! and p0-p3 intact at the CPU's vector length, and its caller gets z8-z23
//! and p4-p15 back (callee-saved under the SVE PCS), although the resolver
//! clobbers every z and p register and FFR (`tests/abi/sve_aarch64.S`).
//!
//! The register images are fixed patterns, so a run is deterministic at a
//! given vector length; CI runs these tests under qemu-user at 128, 512 and
//! 2048 bits (`.ci/run`), with `LAZYRT_SVE_EXPECT_VL_BITS` set so a qemu
//! that ignored the requested length fails instead of passing at another.
//! Without SVE every test here says so once on stderr and passes vacuously.

use super::*;

unsafe extern "C" {
    fn abi_sve_vl() -> u64;
    fn abi_sve_call(fp: *const c_void, x0: u64, input: *const u8, output: *mut u8);
    fn abi_clobber_sve(seed: u64);
    /// SVE PCS (z0-z7, p0-p3 in; only ever called through `abi_sve_call`):
    /// declared for its address only.
    safe fn abi_sve_record();
}

/// Says `line` on stderr past libtest's output capture (which takes only
/// `eprintln!`), so a skip or the vector length shows in every run.
fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The vector length in bytes, or `None` (said once, loudly) without SVE.
/// Checks `LAZYRT_SVE_EXPECT_VL_BITS` when it is set.
fn vector_length() -> Option<usize> {
    static VL: OnceLock<Option<usize>> = OnceLock::new();
    *VL.get_or_init(|| {
        let expected = std::env::var("LAZYRT_SVE_EXPECT_VL_BITS").ok();
        // SAFETY: getauxval has no preconditions.
        let hwcap = unsafe { libc::getauxval(libc::AT_HWCAP) };
        if hwcap & libc::HWCAP_SVE == 0 {
            assert!(
                expected.is_none(),
                "LAZYRT_SVE_EXPECT_VL_BITS is set but this CPU has no SVE"
            );
            say("skipped: SVE argument tests: no SVE on this CPU (AT_HWCAP lacks HWCAP_SVE)");
            return None;
        }
        // SAFETY: SVE is present (checked above); rdvl reads no memory.
        let vl = unsafe { abi_sve_vl() } as usize;
        say(&format!("sve: vector length {} bits", vl * 8));
        if let Some(bits) = expected {
            assert_eq!(
                (vl * 8).to_string(),
                bits,
                "the run asked for another SVE vector length (LAZYRT_SVE_EXPECT_VL_BITS)"
            );
        }
        Some(vl)
    })
}

/// A register image in the layout of `abi_sve_call`: z0-z31 (VL bytes
/// each), then p0-p15 (VL/8 bytes each). 16-byte aligned.
#[derive(Clone, PartialEq, Eq)]
struct Image {
    vl: usize,
    words: Vec<u128>,
}

impl Image {
    fn zeroed(vl: usize) -> Image {
        Image {
            vl,
            words: vec![0; (32 * vl + 16 * (vl / 8)).div_ceil(16)],
        }
    }

    /// Distinct, non-zero bytes in every register (xorshift from a fixed
    /// seed).
    fn pattern(vl: usize) -> Image {
        let mut image = Image::zeroed(vl);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for word in &mut image.words {
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            *word = u128::from(next()) | (u128::from(next()) << 64);
        }
        image
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: u128s are plain bytes; the length is the Vec's.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast(), self.words.len() * 16) }
    }

    fn z(&self, i: usize) -> &[u8] {
        &self.bytes()[i * self.vl..(i + 1) * self.vl]
    }

    fn p(&self, i: usize) -> &[u8] {
        let pl = self.vl / 8;
        &self.bytes()[32 * self.vl + i * pl..32 * self.vl + (i + 1) * pl]
    }

    /// What `abi_sve_record` wrote: z0-z7, then p0-p3, from offset 0.
    fn recorded_z(&self, i: usize) -> &[u8] {
        self.z(i)
    }

    fn recorded_p(&self, i: usize) -> &[u8] {
        let pl = self.vl / 8;
        &self.bytes()[8 * self.vl + i * pl..8 * self.vl + (i + 1) * pl]
    }
}

/// Calls `fp` with x0 = `x0` and every z and p register loaded from `input`;
/// returns the registers after the call.
///
/// # Safety
/// `fp` must follow the SVE PCS or the base PCS, take its one pointer or
/// integer argument in x0, and (if it is a pointer) write at most 34 VL
/// bytes there.
unsafe fn call_with(fp: *const c_void, x0: u64, input: &Image) -> Image {
    let mut after = Image::zeroed(input.vl);
    // SAFETY: both images have the size abi_sve_call reads and writes at
    // this VL; fp is as the caller promised.
    unsafe {
        abi_sve_call(
            fp,
            x0,
            input.words.as_ptr().cast(),
            after.words.as_mut_ptr().cast(),
        )
    };
    after
}

/// Calls `fp` (abi_sve_record or an entry resolving to it) with the
/// pattern; returns (what the implementation saw, the registers after).
fn call_record(fp: *const c_void, input: &Image) -> (Image, Image) {
    let mut seen = Image::zeroed(input.vl);
    // SAFETY: fp is abi_sve_record or an entry resolving to it: SVE PCS,
    // x0 = where it writes 8 VL + 4 VL/8 bytes, inside `seen`.
    let after = unsafe { call_with(fp, seen.words.as_mut_ptr() as u64, input) };
    (seen, after)
}

/// The registers an SVE PCS call must get right, that differ from `input`:
/// z0-z7/p0-p3 as the implementation saw them, z8-z23/p4-p15 after it.
fn differences(input: &Image, seen: &Image, after: &Image) -> Vec<String> {
    let mut wrong = Vec::new();
    for i in 0..8 {
        if seen.recorded_z(i) != input.z(i) {
            wrong.push(format!("z{i} at entry"));
        }
    }
    for i in 0..4 {
        if seen.recorded_p(i) != input.p(i) {
            wrong.push(format!("p{i} at entry"));
        }
    }
    for i in 8..24 {
        if after.z(i) != input.z(i) {
            wrong.push(format!("z{i} after return"));
        }
    }
    for i in 4..16 {
        if after.p(i) != input.p(i) {
            wrong.push(format!("p{i} after return"));
        }
    }
    wrong
}

/// An entry resolving to `abi_sve_record` whose resolver clobbers every
/// general, vector and SVE register first; marked SVE or not.
fn entry(marked: bool, resolutions: Arc<AtomicUsize>) -> Entry {
    let resolver = move |_: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
        resolutions.fetch_add(1, Ordering::SeqCst);
        // SAFETY: both clobberers only overwrite registers the base PCS lets
        // any callee overwrite; SVE is present (the tests check first).
        unsafe {
            abi_clobber_aarch64(0x5eed, 0);
            abi_clobber_sve(0x5eed);
        }
        Ok(NonNull::new(addr(abi_sve_record) as *mut c_void).expect("implementation"))
    };
    let spec = EntrySpec::new(if marked { "sve_marked" } else { "sve_plain" }, 0);
    let spec = if marked {
        spec.with_sve_arguments()
    } else {
        spec
    };
    runtime()
        .create_entries(resolver, [spec])
        .expect("create an entry")[0]
}

/// The SVE clobberer changes every SVE register a base PCS function may
/// change, at every bit above d8-d15 (else the tests below prove nothing).
#[test]
fn clobberer_changes_sve_registers() {
    let Some(vl) = vector_length() else { return };
    let input = Image::pattern(vl);
    // SAFETY: abi_clobber_sve is a base PCS function of one integer.
    let after = unsafe { call_with(abi_clobber_sve as *const c_void, 7, &input) };
    for i in 0..32 {
        let from = if (8..16).contains(&i) { 8 } else { 0 };
        if from > 0 {
            assert_eq!(after.z(i)[..8], input.z(i)[..8], "clobberer changed d{i}");
        }
        for lane in (from..vl).step_by(8) {
            assert_ne!(
                after.z(i)[lane..lane + 8],
                input.z(i)[lane..lane + 8],
                "the clobberer left bytes {lane}.. of z{i} alone"
            );
        }
    }
    for i in 0..16 {
        assert_ne!(after.p(i), input.p(i), "the clobberer left p{i} alone");
    }
}

/// The first call of an SVE-marked entry and the resolved call after it
/// keep everything the SVE PCS asks, like the direct call.
#[test]
fn sve_arguments_survive_the_first_call() {
    let Some(vl) = vector_length() else { return };
    let input = Image::pattern(vl);
    let (seen, after) = call_record(addr(abi_sve_record), &input);
    assert_eq!(
        differences(&input, &seen, &after),
        Vec::<String>::new(),
        "direct call (the test itself is wrong)"
    );
    let resolutions = Arc::new(AtomicUsize::new(0));
    let e = entry(true, resolutions.clone());
    for call in ["first call (reentry)", "second call (resolved)"] {
        let (seen, after) = call_record(e.address.as_ptr(), &input);
        assert_eq!(
            differences(&input, &seen, &after),
            Vec::<String>::new(),
            "{call} of an SVE entry at VL {} bits",
            vl * 8
        );
        assert_eq!(resolutions.load(Ordering::SeqCst), 1, "{call}");
    }
    runtime().free_entries(&[e.id]).expect("free");
}

/// Control: the same call through an entry NOT marked SVE loses SVE state
/// under the same resolver (p0-p3 always; z0-z7 above 128 bits when the
/// vector length is longer), so the test above can fail.
#[test]
fn unmarked_entry_loses_sve_state() {
    let Some(vl) = vector_length() else { return };
    let input = Image::pattern(vl);
    let e = entry(false, Arc::new(AtomicUsize::new(0)));
    let (seen, after) = call_record(e.address.as_ptr(), &input);
    let wrong = differences(&input, &seen, &after);
    eprintln!(
        "sve: unmarked entry at VL {} bits lost {}",
        vl * 8,
        wrong.join(", ")
    );
    for i in 0..4 {
        assert!(
            wrong.contains(&format!("p{i} at entry")),
            "p{i} survived: {wrong:?}"
        );
    }
    for i in 0..8 {
        // q0-q7 are kept: the low 128 bits always arrive.
        assert_eq!(seen.recorded_z(i)[..16], input.z(i)[..16], "q{i}");
        if vl > 16 {
            assert!(
                wrong.contains(&format!("z{i} at entry")),
                "z{i} survived: {wrong:?}"
            );
        }
    }
    runtime().free_entries(&[e.id]).expect("free");
}
