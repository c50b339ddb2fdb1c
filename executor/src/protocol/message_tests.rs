use super::*;
use crate::protocol::Hello;

#[test]
fn requests_round_trip() {
    let all = [
        Request::Ping,
        Request::Reserve { bytes: 1 << 20 },
        Request::Finalize {
            segments: vec![Segment {
                address: 0x1000,
                protection: Protection::ReadExecute,
                bytes: vec![0xc3],
            }],
        },
        Request::Release { address: 0x1000 },
        Request::CreateEntries {
            batch: 3,
            first_tag: 0,
            names: ["a", "b"].into_iter().collect(),
        },
        Request::Redirect {
            moves: vec![(1, 0x2000)],
        },
        Request::FreeEntries {
            entries: vec![1, 2],
        },
        Request::ResolveEntry { entry: 9 },
        Request::LookupSymbols {
            names: vec!["puts".into()],
        },
        Request::Call {
            address: 0x3000,
            arg_sets: vec![vec![1, 2], vec![]],
        },
        Request::ResolveImplementation {
            batch: 1,
            tag: 2,
            entry: 3,
        },
        Request::DescribeEntries {
            entries: vec![4, 5],
        },
        Request::EnableDebugOutputs { outputs: 0b1011 },
        Request::RegisterCode {
            unit: CodeUnit {
                symbols: vec![lazyrt_jit_debug::CodeSymbol {
                    name: "f$stub".into(),
                    kind: lazyrt_jit_debug::CodeKind::Stub,
                    address: lazyrt_runtime::ExecutorAddr::new(0x4000),
                    size: 8,
                }],
                eh_frame: Some((lazyrt_runtime::ExecutorAddr::new(0x5000), 64)),
                lines: vec![lazyrt_jit_debug::SourceLine {
                    address: lazyrt_runtime::ExecutorAddr::new(0x4004),
                    file: "toy.src".into(),
                    line: 9,
                }],
            },
        },
        Request::DeregisterCode { id: 7 },
        Request::ReserveCode { bytes: 1 << 24 },
        Request::WriteCode {
            writes: vec![
                CodeBytes {
                    address: 0x6000,
                    bytes: vec![0xb8, 1, 0, 0, 0, 0xc3],
                },
                CodeBytes {
                    address: 0x6010,
                    bytes: vec![0xc3],
                },
            ],
        },
        Request::PatchCode {
            patches: vec![WordPatch {
                address: 0x6001,
                expected: 1,
                new: 2,
            }],
        },
    ];
    for request in all {
        assert_eq!(Request::decode(&request.encode()).unwrap(), request);
    }
}

#[test]
fn huge_counts_are_refused_before_allocating() {
    // Opcode 5, batch, first tag, then a name count of u32::MAX with
    // no bytes.
    let mut w = WireWriter::new();
    w.u8(5).u64(0).u64(0).u32(u32::MAX);
    assert!(matches!(
        Request::decode(&w.into_bytes()),
        Err(DecodeError::CountTooLarge { .. })
    ));
}

#[test]
fn truncated_code_requests_are_refused() {
    for request in [
        Request::ReserveCode { bytes: 4096 },
        Request::WriteCode {
            writes: vec![CodeBytes {
                address: 0x6000,
                bytes: vec![0xc3; 3],
            }],
        },
        Request::PatchCode {
            patches: vec![WordPatch {
                address: 0x6001,
                expected: 1,
                new: 2,
            }],
        },
    ] {
        let bytes = request.encode();
        for len in 0..bytes.len() {
            assert!(
                Request::decode(&bytes[..len]).is_err(),
                "{request:?} cut at {len}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(
            Request::decode(&longer).is_err(),
            "{request:?} with a byte more"
        );
    }
    // A count of patches the payload cannot hold is refused before
    // anything is allocated.
    let mut w = WireWriter::new();
    w.u8(18).u32(u32::MAX);
    assert!(matches!(
        Request::decode(&w.into_bytes()),
        Err(DecodeError::CountTooLarge { .. })
    ));
}

#[test]
fn write_execute_segments_are_refused() {
    let mut w = WireWriter::new();
    w.u8(3).u32(1).u64(0x1000).u8(7).bytes(&[0xc3]);
    let e = Request::decode(&w.into_bytes()).unwrap_err();
    assert!(e.to_string().contains("W^X"), "{e}");
}

#[test]
fn responses_round_trip() {
    for response in [
        Ok(Reply::Unit),
        Ok(Reply::Address(5)),
        Ok(Reply::Entries(vec![(1, 2)])),
        Ok(Reply::Addresses(vec![0, 1])),
        Ok(Reply::Values(vec![7])),
        Ok(Reply::Unresolved {
            reason: "symbols not found: [f$impl]".to_string(),
            retry: true,
        }),
        Ok(Reply::Unresolved {
            reason: "JITDylib main was removed".to_string(),
            retry: false,
        }),
        Err("no".to_string()),
    ] {
        let bytes = Reply::encode_response(&response);
        assert_eq!(Reply::decode_response(&bytes).unwrap(), response);
    }
    // A retry flag other than 0 or 1 is malformed.
    let mut bytes = Reply::encode_response(&Ok(Reply::Unresolved {
        reason: String::new(),
        retry: true,
    }));
    *bytes.last_mut().unwrap() = 2;
    assert!(Reply::decode_response(&bytes).is_err());
}

#[test]
fn hello_round_trips_and_refuses_what_is_not_a_feature_name() {
    let hello = Hello {
        triple: "x86_64-unknown-linux-gnu".to_string(),
        page_size: 4096,
        pid: 7,
        bootstrap: vec![("memcpy".to_string(), 0x1000)],
        cpu_features: vec!["avx2".to_string(), "sse4.1".to_string()],
    };
    assert_eq!(Hello::decode(&hello.encode()).unwrap(), hello);
    for bad in ["", "avx2 ; rm", "\u{e9}", &"x".repeat(65)] {
        let bytes = Hello {
            cpu_features: vec![bad.to_string()],
            ..hello.clone()
        }
        .encode();
        let e = Hello::decode(&bytes).unwrap_err().to_string();
        assert!(e.contains("hello.cpu_features"), "{bad:?}: {e}");
    }
    // A version-1 hello (no feature list) is cut short.
    let mut old = hello.encode();
    old.truncate(old.len() - (4 + 4 + "avx2".len() + 4 + "sse4.1".len()));
    assert!(Hello::decode(&old).is_err());
}
