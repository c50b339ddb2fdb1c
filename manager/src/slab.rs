//! A slab: values addressed by `u32` ids, freed ids reused (the pending
//! units of the symbol tables).

/// Slots addressed by `u32` ids; freed ids are reused.
pub(crate) struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Slab<T> {
    pub(crate) fn new() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    pub(crate) fn insert(&mut self, value: T) -> u32 {
        match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(value);
                id
            }
            None => {
                self.slots.push(Some(value));
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Takes an id for a value [`Slab::fill`] puts in later (empty until
    /// then: `get` sees nothing).
    pub(crate) fn insert_reserved(&mut self) -> u32 {
        match self.free.pop() {
            Some(id) => id,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Puts `value` at an id from [`Slab::insert_reserved`].
    pub(crate) fn fill(&mut self, id: u32, value: T) {
        debug_assert!(self.slots[id as usize].is_none());
        self.slots[id as usize] = Some(value);
    }

    /// Gives back an id from [`Slab::insert_reserved`] never filled.
    pub(crate) fn unreserve(&mut self, id: u32) {
        debug_assert!(self.slots[id as usize].is_none());
        self.free.push(id);
    }

    pub(crate) fn get(&self, id: u32) -> Option<&T> {
        self.slots.get(id as usize)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        self.slots.get_mut(id as usize)?.as_mut()
    }

    /// Takes every value out, leaving the slab empty.
    pub(crate) fn take_all(&mut self) -> Vec<T> {
        self.free.clear();
        std::mem::take(&mut self.slots)
            .into_iter()
            .flatten()
            .collect()
    }

    pub(crate) fn remove(&mut self, id: u32) -> Option<T> {
        let value = self.slots.get_mut(id as usize)?.take();
        if value.is_some() {
            self.free.push(id);
        }
        value
    }
}
