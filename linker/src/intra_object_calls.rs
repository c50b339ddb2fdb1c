//! First calls between functions of one object keep `r11`.
//!
//! GCC's interprocedural register allocation (`-fipa-ra`, on at `-O2`)
//! lets a caller keep values in call-clobbered registers across a direct
//! call to a function of the same translation unit that it knows does not
//! clobber them. A lazy entry's first call clobbers exactly one register,
//! `r11` (the reentry trampoline's entry index; see
//! `asm/x86_64_sysv_reentry.S`), so such a call must not reach the stub
//! with a live `r11`. Calls between functions of one object whose callee
//! is not linked yet therefore go through a **guard**:
//!
//! ```text
//!   caller: call guard_f          (patched to `call f` once f is linked)
//!   guard_f:     jmp .+5                   (patched to `jmp f` once f is linked)
//!                mov %r11, %fs:SAVE       save r11 (a slot of the static TLS block)
//!                jmp *guard_entry_f        a second lazy entry of f ...
//!   restore_f:   mov %fs:SAVE, %r11       ... whose implementation restores r11
//!                jmp f                     and enters f with every register as the caller left it
//! ```
//!
//! The second entry resolves (linking `f`'s unit once, however it is
//! reached) to `restore_f`, written when `f`'s unit is linked. Calls
//! between objects need no guard: GCC assumes a full clobber for them.
//! Linking `f` also patches the guard's first jump to go straight to `f`,
//! so calls that could not be patched (a field across a cache line) stop
//! using the slot. Between saving and restoring, a thread runs only the
//! resolver (never program code), so one slot per thread suffices.

use crate::fx_hash::FxHashMap as HashMap;

use crate::input::{ObjectFile, SectionKind};
use crate::link::is_branch_field;
use crate::resolve::Resolution;
use crate::units::UnitPlan;

/// Bytes of a guard (`mov %r11, %fs:SAVE; jmp *0(%rip); .quad entry`).
pub const GUARD_BYTES: u64 = 32;
/// Bytes of a restore thunk (`mov %fs:SAVE, %r11; jmp rel32`).
pub const RESTORE_BYTES: u64 = 16;

/// The entries called directly from another unit of their own object: they
/// get a guard and a restore thunk, numbered by slot.
pub fn guarded_entries(
    objects: &[ObjectFile],
    resolution: &Resolution,
    plan: &UnitPlan,
) -> HashMap<u32, u32> {
    let mut slots = HashMap::default();
    for (o, object) in objects.iter().enumerate() {
        for (s, section) in object.sections.iter().enumerate() {
            if section.kind != SectionKind::Code || section.discarded {
                continue;
            }
            let Some(&unit) = plan.unit_of.get(&(o as u32, s as u32)) else {
                continue;
            };
            for r in &section.relocations {
                if r.kind != crate::relocation::RelocationKind::Relative32
                    || !is_branch_field(&section.data, r.offset as usize)
                {
                    continue;
                }
                let Some(e) = plan.entry_for(objects, resolution, o as u32, r, true) else {
                    continue;
                };
                let entry = &plan.entries[e as usize];
                if entry.object == o as u32 && entry.unit != unit {
                    let next = slots.len() as u32;
                    slots.entry(e).or_insert(next);
                }
            }
        }
    }
    slots
}

/// The guard of an entry whose second lazy entry's stub is at `entry`.
pub fn guard_code(save_tp_offset: i32, entry: u64) -> [u8; GUARD_BYTES as usize] {
    let mut code = [0xcc; GUARD_BYTES as usize];
    // jmp .+5 (its rel32, at GUARD_JUMP_FIELD, becomes f's once linked)
    code[..5].copy_from_slice(&[0xe9, 0, 0, 0, 0]);
    // mov %r11, %fs:save_tp_offset
    code[5..10].copy_from_slice(&[0x64, 0x4c, 0x89, 0x1c, 0x25]);
    code[10..14].copy_from_slice(&save_tp_offset.to_le_bytes());
    // jmp *0(%rip); .quad entry
    code[14..20].copy_from_slice(&[0xff, 0x25, 0, 0, 0, 0]);
    code[20..28].copy_from_slice(&entry.to_le_bytes());
    code
}

/// Offset in a guard of its first jump's rel32 (guards are 32-byte
/// aligned, so it never crosses a cache line).
pub const GUARD_JUMP_FIELD: u64 = 1;

/// The restore thunk at `at` entering the function at `implementation`
/// (within ±2 GiB: both are in the code region).
pub fn restore_code(
    save_tp_offset: i32,
    at: u64,
    implementation: u64,
) -> [u8; RESTORE_BYTES as usize] {
    let mut code = [0xcc; RESTORE_BYTES as usize];
    // mov %fs:save_tp_offset, %r11
    code[..5].copy_from_slice(&[0x64, 0x4c, 0x8b, 0x1c, 0x25]);
    code[5..9].copy_from_slice(&save_tp_offset.to_le_bytes());
    // jmp implementation
    code[9] = 0xe9;
    let rel = implementation as i64 - (at as i64 + 14);
    code[10..14].copy_from_slice(&(rel as i32).to_le_bytes());
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_and_restore_encode_the_documented_instructions() {
        let guard = guard_code(-0x1000, 0x1122_3344_5566_7788);
        assert_eq!(guard[..5], [0xe9, 0, 0, 0, 0]);
        // 64 4c 89 1c 25 00 f0 ff ff: mov %r11,%fs:0xfffffffffffff000
        assert_eq!(
            guard[5..14],
            [0x64, 0x4c, 0x89, 0x1c, 0x25, 0x00, 0xf0, 0xff, 0xff]
        );
        assert_eq!(guard[14..20], [0xff, 0x25, 0, 0, 0, 0]);
        assert_eq!(
            u64::from_le_bytes(guard[20..28].try_into().unwrap()),
            0x1122_3344_5566_7788
        );
        let restore = restore_code(-0x1000, 0x10_0000, 0x10_0100);
        assert_eq!(
            restore[..9],
            [0x64, 0x4c, 0x8b, 0x1c, 0x25, 0x00, 0xf0, 0xff, 0xff]
        );
        assert_eq!(restore[9], 0xe9);
        assert_eq!(
            i32::from_le_bytes(restore[10..14].try_into().unwrap()),
            0x100 - 14
        );
    }
}
