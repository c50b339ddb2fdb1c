//! The entries a controller created and has not freed: a bit set by entry
//! id (the runtime hands out dense, reused ids), so a batch of 100,000
//! costs a few kilobytes and no hashing.

/// A set of entry ids.
#[derive(Debug, Default)]
pub(crate) struct LiveEntries {
    bits: Vec<u64>,
    count: usize,
}

impl LiveEntries {
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    pub(crate) fn contains(&self, id: &u32) -> bool {
        self.bits
            .get(*id as usize / 64)
            .is_some_and(|word| word >> (id % 64) & 1 == 1)
    }

    pub(crate) fn insert(&mut self, id: u32) {
        let word = id as usize / 64;
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        let bit = 1u64 << (id % 64);
        if self.bits[word] & bit == 0 {
            self.bits[word] |= bit;
            self.count += 1;
        }
    }

    pub(crate) fn remove(&mut self, id: &u32) -> bool {
        let bit = 1u64 << (id % 64);
        match self.bits.get_mut(*id as usize / 64) {
            Some(word) if *word & bit != 0 => {
                *word &= !bit;
                self.count -= 1;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn extend(&mut self, ids: impl IntoIterator<Item = u32>) {
        for id in ids {
            self.insert(id);
        }
    }

    /// Empties the set, returning its ids.
    pub(crate) fn drain(&mut self) -> Vec<u32> {
        let mut ids = Vec::with_capacity(self.count);
        for (w, word) in self.bits.iter().enumerate() {
            let mut word = *word;
            while word != 0 {
                let bit = word.trailing_zeros();
                ids.push((w * 64) as u32 + bit);
                word &= word - 1;
            }
        }
        self.bits.clear();
        self.count = 0;
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_set() {
        let mut live = LiveEntries::default();
        live.extend([3, 64, 3, 1000]);
        assert_eq!(live.len(), 3);
        assert!(live.contains(&64) && !live.contains(&65) && !live.contains(&5000));
        assert!(live.remove(&64) && !live.remove(&64));
        assert_eq!(live.drain(), vec![3, 1000]);
        assert_eq!(live.len(), 0);
    }
}
