//! Code writes and patches as wire requests for [`super::RemoteExecutor`]:
//! split so every frame stays under the payload cap.

use lazyrt_executor::protocol::{CodeBytes, Request, WordPatch};

use super::{CodePatch, CodeWrite, ExecutorError};
use crate::error::Error;

/// Bytes a write costs on the wire besides its contents (address, length).
const WRITE_OVERHEAD: usize = 12;
/// Bytes a patch costs on the wire.
const PATCH_BYTES: usize = 16;

/// `WriteCode` requests carrying `writes`, each at most about `chunk`
/// bytes (a longer range is split into consecutive pieces).
pub(super) fn writes(writes: &[CodeWrite<'_>], chunk: usize) -> impl Iterator<Item = Request> {
    let mut requests = Vec::new();
    let mut pending: Vec<CodeBytes> = Vec::new();
    let mut pending_bytes = 0usize;
    for w in writes {
        for (i, piece) in w.bytes.chunks(chunk).enumerate() {
            if pending_bytes + piece.len() + WRITE_OVERHEAD > chunk && !pending.is_empty() {
                requests.push(Request::WriteCode {
                    writes: std::mem::take(&mut pending),
                });
                pending_bytes = 0;
            }
            pending.push(CodeBytes {
                address: w.address.value() + (i * chunk) as u64,
                bytes: piece.to_vec(),
            });
            pending_bytes += piece.len() + WRITE_OVERHEAD;
        }
    }
    if !pending.is_empty() {
        requests.push(Request::WriteCode { writes: pending });
    }
    requests.into_iter()
}

/// One `PatchCode` request (one frame, so all are checked before any is
/// applied), or an error if it would not fit in `chunk` bytes.
pub(super) fn patches(patches: &[CodePatch], chunk: usize) -> Result<Request, Error> {
    if patches.len() * PATCH_BYTES > chunk {
        return Err(Error::Executor(ExecutorError::Refused {
            operation: "patch code",
            reason: format!(
                "{} patches in one batch: at most {}",
                patches.len(),
                chunk / PATCH_BYTES
            ),
        }));
    }
    Ok(Request::PatchCode {
        patches: patches
            .iter()
            .map(|p| WordPatch {
                address: p.address.value(),
                expected: p.expected,
                new: p.new,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::symbol::ExecutorAddr;

    #[test]
    fn long_writes_are_split_under_the_cap() {
        let big = vec![0xc3u8; 100];
        let small = [0x90u8; 3];
        let writes = [
            CodeWrite {
                address: ExecutorAddr::new(0x1000),
                bytes: &big,
            },
            CodeWrite {
                address: ExecutorAddr::new(0x2000),
                bytes: &small,
            },
        ];
        let mut placed = Vec::new();
        for request in super::writes(&writes, 40) {
            let Request::WriteCode { writes } = request else {
                panic!("not a write")
            };
            let size: usize = writes.iter().map(|w| w.bytes.len() + WRITE_OVERHEAD).sum();
            assert!(size <= 40 + WRITE_OVERHEAD, "{size}");
            placed.extend(writes.into_iter().map(|w| (w.address, w.bytes.len())));
        }
        assert_eq!(
            placed,
            [(0x1000, 40), (0x1028, 40), (0x1050, 20), (0x2000, 3)]
        );
        assert!(super::patches(&[], 40).is_ok());
        let p = CodePatch {
            address: ExecutorAddr::new(0x1001),
            expected: 0,
            new: 1,
        };
        assert!(super::patches(&[p; 3], 40).is_err());
    }
}
