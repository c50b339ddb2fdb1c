//! Relocations checked at fixed addresses, nothing executed (as JITLink's
//! `llvm-jitlink -noexec -slab-address` tests): each case assembles a few
//! instructions with `cc -c`, links them with [`dry_run`] at known
//! addresses and checks the bytes of each field, near and far.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use std::path::PathBuf;
use std::process::Command;

use lazyrt_linker::{DryRun, DryRunAddresses, LinkError, dry_run};

fn assemble(name: &str, source: &str) -> Option<Vec<u8>> {
    let dir =
        std::env::temp_dir().join(format!("lazyrt-linker-fixed-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (src, obj): (PathBuf, PathBuf) =
        (dir.join(format!("{name}.s")), dir.join(format!("{name}.o")));
    std::fs::write(&src, source).expect("write source");
    let status = match Command::new("cc")
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
    {
        Ok(status) => status,
        Err(e) => {
            eprintln!("SKIPPED: no C compiler to assemble the test input ({e})");
            return None;
        }
    };
    assert!(status.success(), "cc -c {} failed", src.display());
    let bytes = std::fs::read(&obj).expect("read object");
    let _ = std::fs::remove_dir_all(&dir);
    Some(bytes)
}

fn link(name: &str, source: &str, addresses: DryRunAddresses) -> Option<Result<DryRun, LinkError>> {
    let object = assemble(name, source)?;
    Some(dry_run(&[(format!("{name}.o"), object)], addresses))
}

fn i32_at(bytes: &[u8], offset: usize) -> i64 {
    i32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as i64
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap())
}

const CALLS: &str = r#"
    .section .text.caller,"ax",@progbits
    .globl caller
    .type caller,@function
caller:
    call callee            # 0: e8, field at 1: another unit -> callee's stub
    call helper            # 5: e8, field at 6: same section (resolved by the assembler)
    call puts              # 10: e8, field at 11: host function
    lea callee(%rip), %rax # 15: 48 8d 05, field at 18: address -> stub
    ret
helper:
    ret
    .size caller, .-caller
    .section .text.callee,"ax",@progbits
    .globl callee
    .type callee,@function
callee:
    ret
"#;

#[test]
fn calls_bind_to_stubs_direct_code_and_host_functions() {
    let Some(result) = link("calls", CALLS, DryRunAddresses::default()) else {
        return;
    };
    let run = result.expect("links");
    let (caller_at, code) = &run.sections[&(0, ".text.caller".to_string())];
    let (_, callee_stub) = run.entries["callee"];
    let field = |at: u64| caller_at + at;
    assert_eq!(
        i32_at(code, 1),
        callee_stub as i64 - (field(1) + 4) as i64,
        "call to another unit: its stub"
    );
    assert_eq!(
        i32_at(code, 6),
        (caller_at + 23) as i64 - (field(6) + 4) as i64,
        "call within the section"
    );
    assert_eq!(
        i32_at(code, 11),
        run.host["puts"] as i64 - (field(11) + 4) as i64,
        "host call"
    );
    assert_eq!(
        i32_at(code, 18),
        callee_stub as i64 - (field(18) + 4) as i64,
        "address of a function: its stub"
    );
}

#[test]
fn far_host_calls_go_through_a_veneer_and_far_data_is_an_error() {
    let far = DryRunAddresses {
        host: 0x7f00_0000_0000,
        ..Default::default()
    };
    let Some(result) = link("far_calls", CALLS, far) else {
        return;
    };
    let run = result.expect("a far call is reached through a veneer");
    let (caller_at, code) = &run.sections[&(0, ".text.caller".to_string())];
    let target = (caller_at + 15) as i64 + i32_at(code, 11);
    assert!(
        target > *caller_at as i64 && target < 0x1100_0000,
        "the far call lands in the veneer area: {target:#x}"
    );

    let data = r#"
    .text
    .globl f
    .type f,@function
f:
    movq stdout(%rip), %rax
    ret
"#;
    let Some(result) = link("far_data", data, far) else {
        return;
    };
    let error = result
        .expect_err("PC32 data beyond ±2 GiB cannot be reached")
        .to_string();
    assert!(
        error.contains("out of range") && error.contains("stdout") && error.contains(".text+0x3"),
        "{error}"
    );
}

#[test]
fn data_pointers_bind_to_stubs_and_unwind_tables_to_code() {
    let source = r#"
    .section .text.f,"ax",@progbits
    .type f,@function      # a local function, referenced through its section
f:
    .cfi_startproc
    ret
    .cfi_endproc
    .section .data.rel.local.table,"aw",@progbits
    .globl table
table:
    .quad f                # section symbol + 0 -> f's stub
    .quad f + 1            # inside f: raw code address
"#;
    let Some(result) = link("pointers", source, DryRunAddresses::default()) else {
        return;
    };
    let run = result.expect("links");
    let (_, table) = &run.sections[&(0, ".data.rel.local.table".to_string())];
    let (code, stub) = *run
        .entries
        .iter()
        .find(|(name, _)| name.starts_with("f@"))
        .expect("f's entry")
        .1;
    assert_eq!(
        u64_at(table, 0),
        stub,
        "a pointer to a function is its stub (pointer equality)"
    );
    assert_eq!(
        u64_at(table, 8),
        code + 1,
        "a pointer into a function is code"
    );
    let (eh_at, eh) = &run.sections[&(0, ".eh_frame".to_string())];
    // The FDE's pc_begin (PC32 after the CIE) is the code, not the stub.
    let fde = 4 + u32::from_le_bytes(eh[0..4].try_into().unwrap()) as usize;
    let pc_begin = (eh_at + fde as u64 + 8) as i64 + i32_at(eh, fde + 8);
    assert_eq!(pc_begin as u64, code);
}

#[test]
fn absolute_32_bit_fields_are_range_checked() {
    let source = r#"
    .text
    .globl f
    .type f,@function
f:
    movl $value, %eax      # R_X86_64_32
    movq $value, %rax      # R_X86_64_32S
    ret
    .data
value:
    .long 1
"#;
    let Some(result) = link("abs32_near", source, DryRunAddresses::default()) else {
        return;
    };
    let run = result.expect("addresses below 2 GiB fit");
    let (_, code) = &run.sections[&(0, ".text".to_string())];
    let (data_at, _) = run.sections[&(0, ".data".to_string())];
    assert_eq!(i32_at(code, 1) as u64, data_at);
    let high = DryRunAddresses {
        data: 0x1_0000_0000,
        ..Default::default()
    };
    let Some(result) = link("abs32_far", source, high) else {
        return;
    };
    let error = result
        .expect_err("data above 4 GiB does not fit 32 bits")
        .to_string();
    assert!(
        error.contains("R_X86_64_32") && error.contains("out of range"),
        "{error}"
    );
}

#[test]
fn got_and_thread_local_relocations() {
    let source = r#"
    .text
    .globl f
    .type f,@function
f:
    movq ext_fn@GOTPCREL(%rip), %rax   # GOTPCRELX: a GOT slot with the host address
    movl %fs:tv@tpoff, %eax            # TPOFF32
    movq tv2@gottpoff(%rip), %rax      # GOTTPOFF
    ret
    .section .tbss,"awT",@nobits
    .globl tv, tv2
tv: .zero 4
tv2: .zero 4
"#;
    let Some(result) = link("tls_got", source, DryRunAddresses::default()) else {
        return;
    };
    let run = result.expect("links");
    let (text_at, code) = &run.sections[&(0, ".text".to_string())];
    let slot = (text_at + 7) as i64 + i32_at(code, 3);
    assert!(
        slot as u64 >= 0x2000_0000,
        "the GOT is in the data reservation"
    );
    // movl %fs:tv@tpoff: 64 8b 04 25 <disp32>; tv is at image offset 0.
    assert_eq!(
        i32_at(code, 11),
        -0x1000,
        "tpoff(tv) = the image's offset + 0"
    );
    assert_eq!(DryRunAddresses::default().tls_tp_offset, -0x1000);
}

#[test]
fn unsupported_relocations_name_object_section_offset_and_type() {
    let source = r#"
    .text
    .globl f
f:
    nop
    .reloc ., R_X86_64_GOTPLT64, f
    .quad 0
"#;
    let Some(result) = link("unsupported", source, DryRunAddresses::default()) else {
        return;
    };
    let error = result.expect_err("GOTPLT64 is not supported").to_string();
    assert!(
        error.contains("unsupported.o")
            && error.contains(".text+0x1")
            && error.contains("R_X86_64_GOTPLT64"),
        "{error}"
    );
}

#[test]
fn relative_table_entries_in_data_are_code_offsets_never_stubs() {
    // A jump-table entry is `label - table` (PC32 in data against the
    // section symbol); here its addend + 4 happens to be where g starts,
    // which must not make it g's stub.
    let source = r#"
    .text
    .type f,@function
f:
    nop; nop; nop; nop; nop; nop; nop; nop
    .type g,@function
g:
    ret
    .section .rodata.table,"a",@progbits
table:
    .long f + 4 - table
"#;
    let Some(result) = link("relative_table", source, DryRunAddresses::default()) else {
        return;
    };
    let run = result.expect("links");
    let (table_at, table) = &run.sections[&(0, ".rodata.table".to_string())];
    let (text_at, _) = run.sections[&(0, ".text".to_string())];
    assert_eq!((*table_at as i64 + i32_at(table, 0)) as u64, text_at + 4);
}

#[test]
fn comdat_groups_are_kept_once_and_unwind_tables_follow_the_kept_copy() {
    // Two objects with the same inline function in a COMDAT group, as g++
    // emits it; `.eh_frame` is outside the group and refers to it.
    let source = |caller: &str| {
        format!(
            r#"
    .section .text.sq,"axG",@progbits,sq,comdat
    .weak sq
    .type sq,@function
sq:
    .cfi_startproc
    movl %edi, %eax
    imull %edi, %eax
    ret
    .cfi_endproc
    .text
    .globl {caller}
    .type {caller},@function
{caller}:
    jmp sq
"#
        )
    };
    let (Some(a), Some(b)) = (
        assemble("comdat_a", &source("fa")),
        assemble("comdat_b", &source("fb")),
    ) else {
        return;
    };
    let run = dry_run(
        &[("a.o".into(), a), ("b.o".into(), b)],
        DryRunAddresses::default(),
    )
    .expect("the second copy is dropped, its FDE follows the kept one");
    let (sq_code, _) = run.entries["sq"];
    for object in 0..2 {
        let (eh_at, eh) = &run.sections[&(object, ".eh_frame".to_string())];
        let fde = 4 + u32::from_le_bytes(eh[0..4].try_into().unwrap()) as usize;
        let pc_begin = (eh_at + fde as u64 + 8) as i64 + i32_at(eh, fde + 8);
        assert_eq!(
            pc_begin as u64, sq_code,
            "object {object}'s FDE describes the kept sq"
        );
    }
    assert!(
        !run.sections.contains_key(&(1, ".text.sq".to_string())),
        "the second copy is not loaded"
    );
}
