//! Payload fields: a bounds-checked reader and the matching writer.

/// Why a payload could not be decoded. Always names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The payload ended inside a field.
    #[error("payload truncated reading {field}: needs {needed} bytes, {left} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes left.
        left: usize,
    },
    /// A list claims more elements than the bytes left can hold.
    #[error("{field}: {count} elements claimed, but only {left} payload bytes are left")]
    CountTooLarge {
        /// The list.
        field: &'static str,
        /// The claimed count.
        count: u64,
        /// Bytes left.
        left: usize,
    },
    /// A string field is not UTF-8.
    #[error("{field} is not UTF-8")]
    NotUtf8 {
        /// The field.
        field: &'static str,
    },
    /// A tag or opcode byte is not one this version knows.
    #[error("unknown {field} {value}")]
    UnknownTag {
        /// What the byte selects.
        field: &'static str,
        /// Its value.
        value: u8,
    },
    /// Bytes are left after the last field.
    #[error("{left} bytes left over after {what}")]
    TrailingBytes {
        /// The message decoded.
        what: &'static str,
        /// Bytes left.
        left: usize,
    },
    /// A field's value is out of its range.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Reads fields from a payload, never past its end.
pub struct WireReader<'a> {
    bytes: &'a [u8],
}

impl<'a> WireReader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::Truncated {
                field,
                needed: n,
                left: self.bytes.len(),
            });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    /// A `u8`.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, field)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A `u32` length then that many bytes (borrowed).
    pub fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)? as usize;
        self.take(len, field)
    }

    /// A UTF-8 string.
    pub fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let bytes = self.bytes(field)?;
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| DecodeError::NotUtf8 { field })
    }

    /// A list's count, checked against the bytes left: each element takes at
    /// least `min_element_bytes`, so the count can be used to reserve.
    pub fn count(
        &mut self,
        field: &'static str,
        min_element_bytes: usize,
    ) -> Result<usize, DecodeError> {
        let count = self.u32(field)? as u64;
        let left = self.bytes.len();
        if count.saturating_mul(min_element_bytes.max(1) as u64) > left as u64 {
            return Err(DecodeError::CountTooLarge { field, count, left });
        }
        Ok(count as usize)
    }

    /// A list of `u64`s.
    pub fn u64_list(&mut self, field: &'static str) -> Result<Vec<u64>, DecodeError> {
        let n = self.count(field, 8)?;
        (0..n).map(|_| self.u64(field)).collect()
    }

    /// A list of strings.
    pub fn string_list(&mut self, field: &'static str) -> Result<Vec<String>, DecodeError> {
        let n = self.count(field, 4)?;
        (0..n).map(|_| self.string(field)).collect()
    }

    /// Fails unless every byte was read.
    pub fn finish(self, what: &'static str) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                what,
                left: self.bytes.len(),
            })
        }
    }
}

/// Writes fields into a payload.
#[derive(Default)]
pub struct WireWriter {
    bytes: Vec<u8>,
}

impl WireWriter {
    /// An empty payload.
    pub fn new() -> Self {
        Self::default()
    }

    /// The payload written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// A `u8`.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes.push(v);
        self
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A list's count. Lists and byte strings are bounded by the frame's
    /// 64 MiB cap, far below `u32::MAX`.
    pub fn count(&mut self, n: usize) -> &mut Self {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// A `u32` length then the bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.count(v.len());
        self.bytes.extend_from_slice(v);
        self
    }

    /// A UTF-8 string.
    pub fn string(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// A list of `u64`s.
    pub fn u64_list(&mut self, v: &[u64]) -> &mut Self {
        self.count(v.len());
        for x in v {
            self.u64(*x);
        }
        self
    }

    /// A list of strings.
    pub fn string_list<S: AsRef<str>>(&mut self, v: &[S]) -> &mut Self {
        self.count(v.len());
        for s in v {
            self.string(s.as_ref());
        }
        self
    }
}
