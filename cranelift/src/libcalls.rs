//! Libcall resolution: the addresses of the runtime functions Cranelift's
//! code may call (`ceil`, `floor`, `fma`, ...) on targets without an
//! instruction for them.

use cranelift_codegen::ir::LibCall;

extern "C" fn ceil_f32(x: f32) -> f32 {
    x.ceil()
}
extern "C" fn ceil_f64(x: f64) -> f64 {
    x.ceil()
}
extern "C" fn floor_f32(x: f32) -> f32 {
    x.floor()
}
extern "C" fn floor_f64(x: f64) -> f64 {
    x.floor()
}
extern "C" fn trunc_f32(x: f32) -> f32 {
    x.trunc()
}
extern "C" fn trunc_f64(x: f64) -> f64 {
    x.trunc()
}
extern "C" fn nearest_f32(x: f32) -> f32 {
    x.round_ties_even()
}
extern "C" fn nearest_f64(x: f64) -> f64 {
    x.round_ties_even()
}
extern "C" fn fma_f32(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}
extern "C" fn fma_f64(a: f64, b: f64, c: f64) -> f64 {
    a.mul_add(b, c)
}

pub(crate) fn libcall_address(libcall: LibCall) -> Result<u64, String> {
    let address = match libcall {
        LibCall::CeilF32 => ceil_f32 as extern "C" fn(f32) -> f32 as usize,
        LibCall::CeilF64 => ceil_f64 as extern "C" fn(f64) -> f64 as usize,
        LibCall::FloorF32 => floor_f32 as extern "C" fn(f32) -> f32 as usize,
        LibCall::FloorF64 => floor_f64 as extern "C" fn(f64) -> f64 as usize,
        LibCall::TruncF32 => trunc_f32 as extern "C" fn(f32) -> f32 as usize,
        LibCall::TruncF64 => trunc_f64 as extern "C" fn(f64) -> f64 as usize,
        LibCall::NearestF32 => nearest_f32 as extern "C" fn(f32) -> f32 as usize,
        LibCall::NearestF64 => nearest_f64 as extern "C" fn(f64) -> f64 as usize,
        LibCall::FmaF32 => fma_f32 as extern "C" fn(f32, f32, f32) -> f32 as usize,
        LibCall::FmaF64 => fma_f64 as extern "C" fn(f64, f64, f64) -> f64 as usize,
        other => return Err(format!("unsupported libcall {other}")),
    };
    Ok(address as u64)
}
