//! Libcalls: the runtime functions Cranelift's code may call (`ceil`,
//! `floor`, `fma`, ... on targets without an instruction for them; `memcpy`
//! and friends), found in the executor: its bootstrap symbols first (the
//! floating-point ones it provides itself), then its process symbols.

use std::collections::HashMap;
use std::sync::Mutex;

use cranelift_codegen::ir::LibCall;
use lazyrt::ExecutorProcess;

/// The C name of a libcall.
pub(crate) fn libcall_name(libcall: LibCall) -> Option<&'static str> {
    Some(match libcall {
        LibCall::CeilF32 => "ceilf",
        LibCall::CeilF64 => "ceil",
        LibCall::FloorF32 => "floorf",
        LibCall::FloorF64 => "floor",
        LibCall::TruncF32 => "truncf",
        LibCall::TruncF64 => "trunc",
        LibCall::NearestF32 => "nearbyintf",
        LibCall::NearestF64 => "nearbyint",
        LibCall::FmaF32 => "fmaf",
        LibCall::FmaF64 => "fma",
        LibCall::Memcpy => "memcpy",
        LibCall::Memset => "memset",
        LibCall::Memmove => "memmove",
        LibCall::Memcmp => "memcmp",
        _ => return None,
    })
}

/// Libcall addresses already looked up in the executor.
#[derive(Default)]
pub(crate) struct LibcallTable {
    found: Mutex<HashMap<&'static str, u64>>,
}

impl LibcallTable {
    /// The executor address of `libcall`.
    pub(crate) fn address(
        &self,
        executor: &dyn ExecutorProcess,
        libcall: LibCall,
    ) -> Result<u64, String> {
        let name = libcall_name(libcall).ok_or_else(|| format!("unsupported libcall {libcall}"))?;
        if let Some(address) = self
            .found
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(*address);
        }
        let address = match executor.info().bootstrap.get(name) {
            Some(address) => address.value(),
            None => executor
                .lookup_symbols(&[name])
                .map_err(|e| format!("looking up libcall {name}: {e}"))?
                .first()
                .copied()
                .flatten()
                .ok_or_else(|| format!("libcall {name} is not defined in the executor"))?
                .value(),
        };
        self.found
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, address);
        Ok(address)
    }
}
