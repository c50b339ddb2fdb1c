//! The clobbering resolver and the check: a fresh entry per case whose
//! resolver clobbers every caller-saved register, called twice and compared
//! with the direct call.

use super::*;

pub(crate) type Clobber = unsafe extern "C" fn(seed: u64, flags: u32);

#[cfg(target_arch = "x86_64")]
unsafe extern "C" {
    pub(crate) fn abi_clobber_sse(seed: u64, flags: u32);
    pub(crate) fn abi_clobber_avx(seed: u64, flags: u32);
    pub(crate) fn abi_clobber_avx512f(seed: u64, flags: u32);
    pub(crate) fn abi_clobber_avx512bw(seed: u64, flags: u32);
}

#[cfg(target_arch = "aarch64")]
unsafe extern "C" {
    pub(crate) fn abi_clobber_aarch64(seed: u64, flags: u32);
}

/// The widest clobberer the CPU can run, and its name.
pub(crate) fn clobberer() -> (Clobber, &'static str) {
    static CHOICE: OnceLock<(Clobber, &'static str)> = OnceLock::new();
    *CHOICE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        let choice: (Clobber, &'static str) = if is_x86_feature_detected!("avx512bw") {
            (abi_clobber_avx512bw, "avx512bw: zmm0-31, k0-k7 (64 bits)")
        } else if is_x86_feature_detected!("avx512f") {
            (abi_clobber_avx512f, "avx512f: zmm0-31, k0-k7 (16 bits)")
        } else if is_x86_feature_detected!("avx") {
            (abi_clobber_avx, "avx: ymm0-15")
        } else {
            (abi_clobber_sse, "sse: xmm0-15")
        };
        #[cfg(target_arch = "aarch64")]
        let choice: (Clobber, &'static str) = (abi_clobber_aarch64, "aarch64: x0-x17, v0-v31");
        eprintln!(
            "abi suite: clobberer {}; reentry saves with {}",
            choice.1,
            runtime().state_save()
        );
        choice
    })
}

/// Distinct markers for the self-test of the clobberer.
pub(crate) fn marker(i: u64) -> u64 {
    0x0101_0101_0101_0101u64.wrapping_mul(i + 1) ^ 0xa5a5_0000_0000_5a5a
}

/// The clobberer itself must change every scratch register it claims to
/// (else the whole suite proves nothing). Checks the general registers and
/// the low 64 bits of xmm0-15; the upper vector bits are covered by the
/// classes with ymm/zmm arguments.
#[cfg(target_arch = "x86_64")]
#[test]
pub(crate) fn clobberer_changes_registers() {
    let (clobber, _) = clobberer();
    let m: [u64; 25] = std::array::from_fn(|i| marker(i as u64));
    let mut g = [0u64; 9];
    let mut x = [0u64; 16];
    // SAFETY: a plain call of the clobberer (seed in rdi, flags in rsi), with
    // every register it may change declared as an output or clobbered.
    unsafe {
        std::arch::asm!(
            "call {f}",
            f = in(reg) clobber,
            inlateout("rdi") m[0] => g[0],
            inlateout("rsi") 0u64 => g[1],
            inlateout("rdx") m[2] => g[2],
            inlateout("rcx") m[3] => g[3],
            inlateout("r8") m[4] => g[4],
            inlateout("r9") m[5] => g[5],
            inlateout("r10") m[6] => g[6],
            inlateout("r11") m[7] => g[7],
            inlateout("rax") m[8] => g[8],
            inlateout("xmm0") m[9] => x[0],
            inlateout("xmm1") m[10] => x[1],
            inlateout("xmm2") m[11] => x[2],
            inlateout("xmm3") m[12] => x[3],
            inlateout("xmm4") m[13] => x[4],
            inlateout("xmm5") m[14] => x[5],
            inlateout("xmm6") m[15] => x[6],
            inlateout("xmm7") m[16] => x[7],
            inlateout("xmm8") m[17] => x[8],
            inlateout("xmm9") m[18] => x[9],
            inlateout("xmm10") m[19] => x[10],
            inlateout("xmm11") m[20] => x[11],
            inlateout("xmm12") m[21] => x[12],
            inlateout("xmm13") m[22] => x[13],
            inlateout("xmm14") m[23] => x[14],
            inlateout("xmm15") m[24] => x[15],
            clobber_abi("C"),
        );
    }
    let names = ["rdi", "rsi", "rdx", "rcx", "r8", "r9", "r10", "r11", "rax"];
    for (i, name) in names.iter().enumerate() {
        let before = if i == 1 { 0 } else { m[i] };
        assert_ne!(g[i], before, "the clobberer left {name} alone");
    }
    for (i, value) in x.iter().enumerate() {
        assert_ne!(*value, m[9 + i], "the clobberer left xmm{i} alone");
    }
}

/// The clobberer must change x0-x17 and all 128 bits of v0-v7 and
/// v16-v31, and only the upper halves of v8-v15 (d8-d15 are callee-saved).
#[cfg(target_arch = "aarch64")]
#[test]
pub(crate) fn clobberer_changes_registers() {
    use std::arch::aarch64::{uint64x2_t, vcombine_u64, vcreate_u64};
    let (clobber, _) = clobberer();
    let m: [u64; 50] = std::array::from_fn(|i| marker(i as u64));
    let q = |i: usize| -> uint64x2_t {
        // SAFETY: NEON is always present on AArch64 Linux.
        unsafe { vcombine_u64(vcreate_u64(m[18 + i]), vcreate_u64(!m[18 + i])) }
    };
    let mut g = [0u64; 18];
    let mut v: [uint64x2_t; 32] = std::array::from_fn(q);
    let inputs = v;
    // SAFETY: a plain call of the clobberer (seed in x0, flags in x1), with
    // every register it may change declared as an output or clobbered.
    unsafe {
        std::arch::asm!(
            "blr {f}",
            f = in(reg) clobber,
            inlateout("x0") m[0] => g[0],
            inlateout("x1") m[1] => g[1],
            inlateout("x2") m[2] => g[2],
            inlateout("x3") m[3] => g[3],
            inlateout("x4") m[4] => g[4],
            inlateout("x5") m[5] => g[5],
            inlateout("x6") m[6] => g[6],
            inlateout("x7") m[7] => g[7],
            inlateout("x8") m[8] => g[8],
            inlateout("x9") m[9] => g[9],
            inlateout("x10") m[10] => g[10],
            inlateout("x11") m[11] => g[11],
            inlateout("x12") m[12] => g[12],
            inlateout("x13") m[13] => g[13],
            inlateout("x14") m[14] => g[14],
            inlateout("x15") m[15] => g[15],
            inlateout("x16") m[16] => g[16],
            inlateout("x17") m[17] => g[17],
            inlateout("v0") v[0], inlateout("v1") v[1], inlateout("v2") v[2],
            inlateout("v3") v[3], inlateout("v4") v[4], inlateout("v5") v[5],
            inlateout("v6") v[6], inlateout("v7") v[7], inlateout("v8") v[8],
            inlateout("v9") v[9], inlateout("v10") v[10], inlateout("v11") v[11],
            inlateout("v12") v[12], inlateout("v13") v[13], inlateout("v14") v[14],
            inlateout("v15") v[15], inlateout("v16") v[16], inlateout("v17") v[17],
            inlateout("v18") v[18], inlateout("v19") v[19], inlateout("v20") v[20],
            inlateout("v21") v[21], inlateout("v22") v[22], inlateout("v23") v[23],
            inlateout("v24") v[24], inlateout("v25") v[25], inlateout("v26") v[26],
            inlateout("v27") v[27], inlateout("v28") v[28], inlateout("v29") v[29],
            inlateout("v30") v[30], inlateout("v31") v[31],
            clobber_abi("C"),
        );
    }
    for (i, value) in g.iter().enumerate() {
        assert_ne!(*value, m[i], "the clobberer left x{i} alone");
    }
    let halves = |x: uint64x2_t| -> [u64; 2] {
        // SAFETY: both are 16 bytes of plain bits.
        unsafe { std::mem::transmute::<uint64x2_t, [u64; 2]>(x) }
    };
    for i in 0..32 {
        let (before, after) = (halves(inputs[i]), halves(v[i]));
        if (8..16).contains(&i) {
            assert_eq!(
                after[0], before[0],
                "the clobberer changed callee-saved d{i}"
            );
        } else {
            assert_ne!(
                after[0], before[0],
                "the clobberer left the low half of v{i} alone"
            );
        }
        assert_ne!(
            after[1], before[1],
            "the clobberer left the high half of v{i} alone"
        );
    }
}

pub(crate) fn runtime() -> &'static Runtime {
    Runtime::global().expect("lazyrt supports this target")
}

/// A fresh, unresolved entry; freed on drop.
pub(crate) struct Fresh {
    pub(crate) entry: Entry,
    resolutions: Arc<AtomicUsize>,
}

impl Fresh {
    /// An entry resolving to `target` whose resolver runs `hook`, then
    /// clobbers every caller-saved register (pattern from `seed`; with the
    /// top bit of `seed` set the x86 clobberers end with vzeroupper) and
    /// answers.
    pub(crate) fn new(
        class: &str,
        target: *const c_void,
        seed: u64,
        hook: impl Fn() + Send + Sync + 'static,
    ) -> Fresh {
        let resolutions = Arc::new(AtomicUsize::new(0));
        let count = resolutions.clone();
        let target = target as usize;
        let (clobber, _) = clobberer();
        let resolver = Arc::new(
            move |_: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
                count.fetch_add(1, Ordering::SeqCst);
                hook();
                // SAFETY: the clobberer only overwrites registers the C ABI
                // lets any callee overwrite.
                unsafe { clobber(seed, (seed >> 63) as u32) };
                Ok(NonNull::new(target as *mut c_void).expect("implementation address"))
            },
        );
        let entries = runtime()
            .create_entries(resolver, [EntrySpec::new(class, seed)])
            .expect("create an entry");
        Fresh {
            entry: entries[0],
            resolutions,
        }
    }

    pub(crate) fn address(&self) -> *const c_void {
        self.entry.address.as_ptr()
    }

    pub(crate) fn resolutions(&self) -> usize {
        self.resolutions.load(Ordering::SeqCst)
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        let _ = runtime().free_entries(&[self.entry.id]);
    }
}

pub(crate) fn same(
    class: &str,
    what: &str,
    got: &[(u64, u32)],
    want: &[(u64, u32)],
) -> Result<(), TestCaseError> {
    prop_assert!(
        got == want,
        "class {class}: {what}\n   got {}\n  want {}",
        show(got),
        show(want)
    );
    Ok(())
}

/// Checks one case of `class`: `call(fp)` calls `fp` with the case's
/// arguments. `model` is the hash of the arguments if the result is derived
/// from it (abi.h). `hook` runs in the resolver before the clobberer.
pub(crate) fn check_hooked<R: Words>(
    class: &str,
    implementation: Sym,
    seed: u64,
    model: Option<u64>,
    hook: impl Fn() + Send + Sync + 'static,
    call: impl Fn(*const c_void) -> R,
) -> Result<(), TestCaseError> {
    let direct = call(addr(implementation)).word_list();
    if let Some(h) = model {
        same(
            class,
            "the direct call disagrees with the hash of the arguments \
             (Rust and C disagree on the signature)",
            &direct,
            &model_words(h, &direct),
        )?;
    }
    let fresh = Fresh::new(class, addr(implementation), seed, hook);
    prop_assert!(!runtime().is_resolved(fresh.entry.id).expect("live entry"));
    let first = call(fresh.address()).word_list();
    prop_assert_eq!(fresh.resolutions(), 1, "class {}: resolver runs", class);
    same(
        class,
        "first call (through the reentry path) differs from the direct call",
        &first,
        &direct,
    )?;
    prop_assert!(runtime().is_resolved(fresh.entry.id).expect("live entry"));
    let second = call(fresh.address()).word_list();
    prop_assert_eq!(fresh.resolutions(), 1, "class {}: resolved once", class);
    same(
        class,
        "second call (resolved entry) differs from the direct call",
        &second,
        &direct,
    )
}

pub(crate) fn check<R: Words>(
    class: &str,
    implementation: Sym,
    seed: u64,
    model: Option<u64>,
    call: impl Fn(*const c_void) -> R,
) -> Result<(), TestCaseError> {
    check_hooked(class, implementation, seed, model, || {}, call)
}

/// Calls `fp` as `unsafe extern "C" fn(types) -> ret` with `args`.
macro_rules! call_as {
    ($fp:expr, fn($($ty:ty),*) $(-> $ret:ty)?; $($arg:expr),* $(,)?) => {{
        let fp: *const c_void = $fp;
        // SAFETY: every pointer a check calls is the class's implementation
        // or an entry resolving to it, and the implementation has exactly
        // this signature (the C definitions in tests/abi/).
        unsafe {
            let f = std::mem::transmute::<
                *const c_void,
                unsafe extern "C" fn($($ty),*) $(-> $ret)?,
            >(fp);
            f($($arg),*)
        }
    }};
}
pub(crate) use call_as;

/// Whether this CPU can run class `class`, which needs `feature` (`has`:
/// the feature check). If not, says so once per class on stderr, so a run
/// without it reads as skipped, not as passed.
#[cfg(target_arch = "x86_64")]
pub(crate) fn runs_here(class: &str, has: bool, feature: &str) -> bool {
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    if !has {
        let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
        if !said.iter().any(|c| c == class) {
            eprintln!("skipped: ABI class {class}: no {feature} on this CPU");
            said.push(class.to_string());
        }
    }
    has
}
