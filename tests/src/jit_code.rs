//! Implementations in JIT memory, as a JIT would place them: machine code
//! written into an anonymous mapping (read-write, then read+execute), which
//! Linux places among the other mappings, near lazyrt's stub blocks. The
//! suites and benches call these where it matters that a resolved stub can
//! reach its target with a direct jump (functions in a PIE binary are
//! usually more than 2 GiB away from any mapping, so their stubs keep
//! jumping through the slot).

use std::ptr::NonNull;

/// Functions written into one executable mapping; never unmapped (stubs
/// may still point at them when a suite ends).
pub struct JitCode {
    addresses: Vec<usize>,
}

const ALIGN: usize = 16;

impl JitCode {
    /// Writes each piece of machine code at a 16-byte boundary, wherever
    /// the kernel places a new mapping.
    pub fn new(pieces: &[Vec<u8>]) -> JitCode {
        Self::map(pieces, None)
    }

    /// As [`JitCode::new`], placed within 64 MiB of `near` if that range has
    /// room (under qemu-user, plain mappings may land far from each other).
    pub fn near(near: usize, pieces: &[Vec<u8>]) -> JitCode {
        Self::map(pieces, Some(near))
    }

    fn map(pieces: &[Vec<u8>], near: Option<usize>) -> JitCode {
        let len: usize = pieces.iter().map(|p| p.len().next_multiple_of(ALIGN)).sum();
        let len = len.max(1).next_multiple_of(4096);
        let mmap = |hint: usize, flags: i32| {
            // SAFETY: anonymous private mapping; with a hint, only
            // MAP_FIXED_NOREPLACE, which never replaces an existing mapping.
            unsafe {
                libc::mmap(
                    hint as *mut libc::c_void,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flags,
                    -1,
                    0,
                )
            }
        };
        let hinted = near.into_iter().flat_map(|near| {
            (1..=16).flat_map(move |step: usize| {
                let delta = step << 22; // 4 MiB steps, up to 64 MiB away
                [near.checked_sub(delta), near.checked_add(delta)]
            })
        });
        let base = hinted
            .flatten()
            .map(|hint| mmap(hint & !4095, libc::MAP_FIXED_NOREPLACE))
            .find(|p| *p != libc::MAP_FAILED)
            .unwrap_or_else(|| mmap(0, 0));
        assert_ne!(base, libc::MAP_FAILED, "mmap for JIT code");
        let base = base.cast::<u8>();
        let mut addresses = Vec::with_capacity(pieces.len());
        let mut at = 0;
        for piece in pieces {
            // SAFETY: `at + piece.len() <= len`, inside the fresh mapping.
            unsafe { std::ptr::copy_nonoverlapping(piece.as_ptr(), base.add(at), piece.len()) };
            addresses.push(base as usize + at);
            at += piece.len().next_multiple_of(ALIGN);
        }
        // SAFETY: the code was just written into our own mapping.
        unsafe { lazyrt_runtime::flush_instruction_cache(base, len) };
        // SAFETY: our page-aligned mapping.
        let rc = unsafe { libc::mprotect(base.cast(), len, libc::PROT_READ | libc::PROT_EXEC) };
        assert_eq!(rc, 0, "mprotect JIT code");
        JitCode { addresses }
    }

    /// The address of piece `i`.
    pub fn address(&self, i: usize) -> NonNull<std::ffi::c_void> {
        NonNull::new(self.addresses[i] as *mut _).expect("mapped")
    }

    pub fn len(&self) -> usize {
        self.addresses.len()
    }

    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }
}

/// Machine code for the target (x86-64 or AArch64), one function each.
pub mod templates {
    #[cfg(target_arch = "aarch64")]
    fn words(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[cfg(target_arch = "aarch64")]
    const RET: u32 = 0xd65f_03c0;

    /// `extern "C" fn(u64) -> u64 { x * 31 + k }`.
    pub fn affine_u64(k: u32) -> Vec<u8> {
        #[cfg(target_arch = "x86_64")]
        {
            // imul rax, rdi, 31; add rax, imm32; ret
            let mut code = vec![0x48, 0x6b, 0xc7, 0x1f, 0x48, 0x05];
            code.extend_from_slice(&k.to_le_bytes());
            code.push(0xc3);
            code
        }
        #[cfg(target_arch = "aarch64")]
        {
            assert!(k < 4096, "add immediate");
            // movz x1, #31; mul x0, x0, x1; add x0, x0, #k; ret
            words(&[0xd280_03e1, 0x9b01_7c00, 0x9100_0000 | (k << 10), RET])
        }
    }

    /// `extern "C" fn(i32) -> i32 { x.wrapping_add(k) }`.
    pub fn add_i32(k: u32) -> Vec<u8> {
        #[cfg(target_arch = "x86_64")]
        {
            // lea eax, [rdi + k]; ret
            let mut code = vec![0x8d, 0x87];
            code.extend_from_slice(&k.to_le_bytes());
            code.push(0xc3);
            code
        }
        #[cfg(target_arch = "aarch64")]
        {
            assert!(k < 4096, "add immediate");
            // add w0, w0, #k; ret
            words(&[0x1100_0000 | (k << 10), RET])
        }
    }

    /// `extern "C" fn(f64, f64) -> f64 { a * b + a }`.
    pub fn mul_add_f64() -> Vec<u8> {
        #[cfg(target_arch = "x86_64")]
        {
            // mulsd xmm1, xmm0; addsd xmm0, xmm1; ret
            vec![0xf2, 0x0f, 0x59, 0xc8, 0xf2, 0x0f, 0x58, 0xc1, 0xc3]
        }
        #[cfg(target_arch = "aarch64")]
        {
            // fmul d1, d0, d1; fadd d0, d0, d1; ret
            words(&[0x1e61_0801, 0x1e61_2800, RET])
        }
    }

    /// `extern "C" fn(i64 x6) -> i64`: the wrapping sum.
    pub fn sum6_i64() -> Vec<u8> {
        #[cfg(target_arch = "x86_64")]
        {
            // lea rax, [rdi + rsi]; add rax, rdx; add rax, rcx; add rax, r8;
            // add rax, r9; ret
            vec![
                0x48, 0x8d, 0x04, 0x37, 0x48, 0x01, 0xd0, 0x48, 0x01, 0xc8, 0x4c, 0x01, 0xc0, 0x4c,
                0x01, 0xc8, 0xc3,
            ]
        }
        #[cfg(target_arch = "aarch64")]
        {
            // add x0, x0, x1 .. x5; ret
            words(&[
                0x8b01_0000,
                0x8b02_0000,
                0x8b03_0000,
                0x8b04_0000,
                0x8b05_0000,
                RET,
            ])
        }
    }

    /// `extern "C" fn(f64 x8) -> f64 { ((a+b)+(c+d))+((e+f)+(g+h)) }`.
    pub fn sum8_f64() -> Vec<u8> {
        #[cfg(target_arch = "x86_64")]
        {
            let mut code = Vec::new();
            // addsd: xmm0+=xmm1, xmm2+=xmm3, xmm0+=xmm2, xmm4+=xmm5,
            // xmm6+=xmm7, xmm4+=xmm6, xmm0+=xmm4
            for modrm in [0xc1, 0xd3, 0xc2, 0xe5, 0xf7, 0xe6, 0xc4] {
                code.extend_from_slice(&[0xf2, 0x0f, 0x58, modrm]);
            }
            code.push(0xc3);
            code
        }
        #[cfg(target_arch = "aarch64")]
        {
            // fadd d0,d0,d1; d2,d2,d3; d0,d0,d2; d4,d4,d5; d6,d6,d7;
            // d4,d4,d6; d0,d0,d4; ret
            words(&[
                0x1e61_2800,
                0x1e63_2842,
                0x1e62_2800,
                0x1e65_2884,
                0x1e67_28c6,
                0x1e66_2884,
                0x1e64_2800,
                RET,
            ])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_compute_what_they_say() {
        let code = JitCode::new(&[
            templates::affine_u64(7),
            templates::add_i32(1),
            templates::mul_add_f64(),
            templates::sum6_i64(),
            templates::sum8_f64(),
        ]);
        // SAFETY: each piece has the signature it is called with.
        unsafe {
            let affine: extern "C" fn(u64) -> u64 = std::mem::transmute(code.address(0));
            assert_eq!(affine(5), 5 * 31 + 7);
            let add: extern "C" fn(i32) -> i32 = std::mem::transmute(code.address(1));
            assert_eq!(add(41), 42);
            let mul_add: extern "C" fn(f64, f64) -> f64 = std::mem::transmute(code.address(2));
            assert_eq!(mul_add(3.0, 4.0), 15.0);
            let sum6: extern "C" fn(i64, i64, i64, i64, i64, i64) -> i64 =
                std::mem::transmute(code.address(3));
            assert_eq!(sum6(1, 2, 3, 4, 5, 6), 21);
            #[allow(clippy::type_complexity)]
            let sum8: extern "C" fn(f64, f64, f64, f64, f64, f64, f64, f64) -> f64 =
                std::mem::transmute(code.address(4));
            assert_eq!(sum8(1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0), 36.0);
        }
    }
}
