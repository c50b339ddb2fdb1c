//! The checks after every op (symbol tables, counts, stub liveness, no
//! unexpected failed call) and the clean-up of a case.

use crate::*;

impl Harness {
    /// Checks after every op: symbol tables, materialization counts, stub
    /// liveness and that no call failed unexpectedly.
    pub(crate) fn check_invariants(&self) -> Check {
        for (index, inst) in self.instances.iter().enumerate() {
            for n in Name::all() {
                let real = inst.handle.contains(&self.name(n));
                let model = inst.alive && inst.syms[n.index()].is_some();
                if real != model {
                    return Err(format!(
                        "{}{}: contains({n:?}) is {real}, model says {model}",
                        inst.name,
                        if inst.alive { "" } else { " (removed)" }
                    ));
                }
            }
            let found = self.session.jit_dylib(&inst.name);
            let current = self.slots.iter().any(|s| s.instance == index);
            if inst.alive != found.is_some() || (found.is_some() && !current) {
                return Err(format!(
                    "session.jit_dylib({}) is {found:?}, alive: {}",
                    inst.name, inst.alive
                ));
            }
            for (i, def) in inst.syms.iter().enumerate() {
                if let Some(Def {
                    kind: Kind::Entry { stub: Some(s), .. },
                    ..
                }) = def
                    && !live_entry(*s)
                {
                    return Err(format!(
                        "stub {s:#x} of defined e{i} in {} is not a live runtime entry",
                        inst.name
                    ));
                }
            }
        }
        for (stub, name) in &self.dead_stubs {
            if live_entry(*stub) {
                return Err(format!(
                    "stub {stub:#x} of removed {name} is still a live runtime entry"
                ));
            }
        }
        let real = lock(&self.materialized).clone();
        for (def, (&count, &model)) in real.iter().zip(&self.model_materialized).enumerate() {
            if count != usize::from(model) {
                return Err(format!(
                    "implementation definition #{def} materialized {count} times, model says {}",
                    usize::from(model)
                ));
            }
        }
        let created = self.counts.created.load(Ordering::SeqCst);
        if created != self.model_created {
            return Err(format!(
                "{created} entries created, model says {}",
                self.model_created
            ));
        }
        let first_calls = self.counts.first_called.load(Ordering::SeqCst);
        if first_calls != self.model_first_calls {
            return Err(format!(
                "{first_calls} first calls, model says {}",
                self.model_first_calls
            ));
        }
        let seen = self.take_failures();
        if !seen.is_empty() {
            return Err(format!("unexpected failed calls: {seen:?}"));
        }
        Ok(())
    }
}

impl Drop for Harness {
    /// Frees this case's stubs (the runtime is process-wide).
    fn drop(&mut self) {
        for inst in &self.instances {
            if inst.alive {
                let _ = inst.handle.clear();
            }
        }
        self.quiesce();
    }
}
