//! Compiles `csrc/gdb_jit.c`: the GDB JIT interface's symbols must be C
//! symbols with exactly these names, defined weak so JITs share them.

fn main() {
    println!("cargo:rerun-if-changed=csrc/gdb_jit.c");
    cc::Build::new()
        .file("csrc/gdb_jit.c")
        // The function must stay a real, separate function.
        .flag_if_supported("-fno-inline")
        .compile("lazyrt_gdb_jit");
}
