//! The executor's hello and [`NameList`], the many-names buffer of
//! [`Request::CreateEntries`](super::Request::CreateEntries).

use super::wire::{DecodeError, WireReader, WireWriter};

/// The executor's first frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The executor's target, e.g. `x86_64-unknown-linux-gnu`.
    pub triple: String,
    /// Its page size.
    pub page_size: u64,
    /// Its process id.
    pub pid: u32,
    /// Symbols the executor publishes without a lookup (its runtime's entry
    /// points, the libcalls it provides): `(name, address)`.
    pub bootstrap: Vec<(String, u64)>,
    /// Its CPU's features, by their Rust target-feature names (see
    /// [`crate::cpu_features`]): what code for it may use beyond the
    /// triple's baseline.
    pub cpu_features: Vec<String>,
}

impl Hello {
    /// Encodes the payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = WireWriter::new();
        w.string(&self.triple).u64(self.page_size).u32(self.pid);
        w.count(self.bootstrap.len());
        for (name, address) in &self.bootstrap {
            w.string(name).u64(*address);
        }
        w.count(self.cpu_features.len());
        for feature in &self.cpu_features {
            w.string(feature);
        }
        w.into_bytes()
    }

    /// Decodes a payload.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = WireReader::new(bytes);
        let triple = r.string("hello.triple")?;
        let page_size = r.u64("hello.page_size")?;
        if !page_size.is_power_of_two() {
            return Err(DecodeError::Invalid {
                field: "hello.page_size",
                reason: format!("{page_size} is not a power of two"),
            });
        }
        let pid = r.u32("hello.pid")?;
        let n = r.count("hello.bootstrap", 12)?;
        let mut bootstrap = Vec::with_capacity(n);
        for _ in 0..n {
            bootstrap.push((r.string("hello.bootstrap")?, r.u64("hello.bootstrap")?));
        }
        let n = r.count("hello.cpu_features", 4)?;
        let mut cpu_features = Vec::with_capacity(n);
        for _ in 0..n {
            let feature = r.string("hello.cpu_features")?;
            if feature.is_empty()
                || feature.len() > 64
                || !feature
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
            {
                return Err(DecodeError::Invalid {
                    field: "hello.cpu_features",
                    reason: format!("{feature:?} is not a feature name"),
                });
            }
            cpu_features.push(feature);
        }
        r.finish("hello")?;
        Ok(Self {
            triple,
            page_size,
            pid,
            bootstrap,
            cpu_features,
        })
    }
}

/// Many names in one buffer (a batch of entries' names costs two
/// allocations, not one per name). On the wire, a list of strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameList {
    text: String,
    /// End offset of each name in `text`.
    ends: Vec<u32>,
}

impl NameList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a name.
    pub fn push(&mut self, name: &str) {
        self.text.push_str(name);
        self.ends
            .push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
    }

    /// How many names.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of all names.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// The names in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + Clone + '_ {
        (0..self.ends.len()).map(move |i| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            &self.text[start as usize..self.ends[i] as usize]
        })
    }

    pub(super) fn decode(r: &mut WireReader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        let n = r.count(field, 4)?;
        let mut list = NameList {
            text: String::new(),
            ends: Vec::with_capacity(n),
        };
        for _ in 0..n {
            let bytes = r.bytes(field)?;
            let name = std::str::from_utf8(bytes).map_err(|_| DecodeError::NotUtf8 { field })?;
            list.push(name);
        }
        Ok(list)
    }
}

impl<'a> FromIterator<&'a str> for NameList {
    fn from_iter<I: IntoIterator<Item = &'a str>>(names: I) -> Self {
        let mut list = NameList::new();
        for name in names {
            list.push(name);
        }
        list
    }
}
