//! The ops with most to check: defining units, lookups, resolving and
//! calling entries (first and later calls, failures), redirects.

use crate::*;

impl Harness {
    pub(crate) fn impl_unit(
        &self,
        i: usize,
        def: usize,
        behaviour: Behaviour,
    ) -> impl lazyrt::MaterializationUnit + 'static {
        let name = self.name(Name::Impl(i));
        let counter = self.materialized.clone();
        let symbol = name.clone();
        FnUnit::new(
            "model implementation",
            [(name, SymbolFlags::exported_callable())],
            move |mut r: MaterializationResponsibility| {
                lock(&counter)[def] += 1;
                match behaviour {
                    Behaviour::Ok(k) => {
                        r.notify_resolved([(symbol, fn_addr(KNOWN[k]))]).unwrap();
                        r.notify_emitted(&[]).unwrap();
                    }
                    Behaviour::Null => {
                        r.notify_resolved([(symbol, ExecutorAddr::NULL)]).unwrap();
                        r.notify_emitted(&[]).unwrap();
                    }
                    Behaviour::Fail => r.fail(format!("model: compile error in {symbol}")),
                    Behaviour::Drop => drop(r),
                    Behaviour::Panic => {
                        let _dropped_while_unwinding = r;
                        std::panic::panic_any(PANIC_MESSAGE);
                    }
                }
            },
        )
    }

    /// Shared by both defines: the tracker, dylib and duplicate rules.
    pub(crate) fn define(
        &mut self,
        jd: usize,
        name: Name,
        tracker: usize,
        make: impl FnOnce(&mut Self) -> (Box<dyn lazyrt::MaterializationUnit>, Kind),
    ) -> Check {
        let instance = self.slots[jd].instance;
        let uid = self.slots[jd].trackers[tracker];
        let (unit, kind) = make(self);
        let handle = self.instances[instance].handle.clone();
        let got = if tracker == 0 {
            handle.define_boxed(unit)
        } else {
            handle.define_with(BoxedUnit(unit), &self.trackers[uid].handle)
        };
        let dylib = self.instances[instance].name.clone();
        let what = format!("define {name:?} in {dylib}");
        if tracker != 0 && !self.tracker_alive(uid) {
            return expect(&what, got, Err(&removed_tracker(&dylib)));
        }
        if !self.instances[instance].alive {
            return expect(&what, got, Err(&removed_dylib(&dylib)));
        }
        if self.instances[instance].syms[name.index()].is_some() {
            let want = format!("duplicate definition of {name:?} in JITDylib {dylib}");
            return expect(&what, got, Err(&want));
        }
        self.instances[instance].syms[name.index()] = Some(Def { tracker: uid, kind });
        expect(&what, got, Ok(()))
    }

    pub(crate) fn lookup(&mut self, jd: usize, names: &[Name]) -> Check {
        let instance = self.slots[jd].instance;
        let symbols: Vec<SymbolName> = names.iter().map(|&n| self.name(n)).collect();
        let got = self.instances[instance]
            .handle
            .lookup(&symbols, RequiredState::Ready);
        let what = format!("lookup {names:?} in {}", self.instances[instance].name);
        let defined = |n: &Name| {
            self.instances[instance].alive && self.instances[instance].syms[n.index()].is_some()
        };
        if !self.instances[instance].alive {
            // A removed JITDylib's handle refuses lookups.
            let dylib = &self.instances[instance].name;
            return expect(&what, got, Err(&removed_dylib(dylib)));
        }
        let missing: Vec<Name> = names.iter().filter(|n| !defined(n)).copied().collect();
        if !missing.is_empty() {
            let dylib = &self.instances[instance].name;
            return expect(&what, got, Err(&not_found(&missing, dylib)));
        }
        // A failed symbol fails the lookup before anything starts.
        for n in names {
            if let Some(Def {
                kind:
                    Kind::Impl {
                        state: ImplState::Failed(msg),
                        ..
                    },
                ..
            }) = &self.instances[instance].syms[n.index()]
            {
                let msg = msg.clone();
                return expect(&what, got, Err(&msg));
            }
        }
        // Everything pending materializes, in order.
        let mut errors = Vec::new();
        for &n in names {
            match n {
                Name::Entry(i) => self.materialize_entry(instance, i),
                Name::Impl(i) => {
                    if let Some(Def {
                        kind:
                            Kind::Impl {
                                state: ImplState::Pending,
                                ..
                            },
                        ..
                    }) = &self.instances[instance].syms[N + i]
                        && let ImplState::Failed(msg) = self.materialize_impl(instance, i)
                    {
                        errors.push(msg);
                    }
                }
            }
        }
        if !errors.is_empty() {
            // In place, units run one after the other in order: the first
            // failure fails the lookup. With a pool, the blocking lookup's
            // own thread runs one unit while workers run the others, so any
            // of them may fail it first.
            if self.dispatch == Dispatch::InPlace {
                errors.truncate(1);
            }
            return match got {
                Err(e) if errors.contains(&e.to_string()) => Ok(()),
                _ => Err(format!("{what}: got {got:?}, want one of {errors:?}")),
            };
        }
        let found = got.map_err(|e| format!("{what}: got {e}, want success"))?;
        if found.len() != names.len() {
            return Err(format!("{what}: got {found:?}"));
        }
        for &n in names {
            let address = found[&self.name(n)].address;
            match n {
                Name::Entry(i) => self.observe_stub(instance, i, address)?,
                Name::Impl(i) => {
                    let Some(Def {
                        kind:
                            Kind::Impl {
                                state: ImplState::Ready(k),
                                ..
                            },
                        ..
                    }) = &self.instances[instance].syms[N + i]
                    else {
                        unreachable!("a successful lookup leaves implementations ready");
                    };
                    let want = k.map_or(ExecutorAddr::NULL, |k| fn_addr(KNOWN[k]));
                    if address != want {
                        return Err(format!("{what}: {n:?} at {address:#x}, want {want:#x}"));
                    }
                }
            }
        }
        Ok(())
    }

    /// The model's first call of an unresolved entry: looks the
    /// implementation up in the source instance.
    pub(crate) fn resolve(&mut self, source: usize, i: usize) -> Result<usize, String> {
        let src = &self.instances[source];
        let dylib = src.name.clone();
        let state = match &src.syms[N + i] {
            Some(Def {
                kind: Kind::Impl { state, .. },
                ..
            }) if src.alive => state.clone(),
            _ => return Err(not_found(&[Name::Impl(i)], &dylib)),
        };
        let state = match state {
            ImplState::Pending => self.materialize_impl(source, i),
            state => state,
        };
        match state {
            ImplState::Ready(Some(k)) => Ok(k),
            ImplState::Ready(None) => Err(format!(
                "e{i}$impl in JITDylib {dylib} resolved to address 0"
            )),
            ImplState::Failed(msg) => Err(msg),
            ImplState::Pending => unreachable!("just materialized"),
        }
    }

    pub(crate) fn call_entry(&mut self, jd: usize, i: usize, arg: u64) -> Check {
        let instance = self.slots[jd].instance;
        let entry = self.name(Name::Entry(i));
        let got = self.instances[instance]
            .handle
            .lookup(std::slice::from_ref(&entry), RequiredState::Ready);
        let what = format!("call e{i} of {}", self.instances[instance].name);
        let defined = self.instances[instance].alive
            && matches!(
                self.instances[instance].syms[i],
                Some(Def {
                    kind: Kind::Entry { .. },
                    ..
                })
            );
        if !self.instances[instance].alive {
            let dylib = &self.instances[instance].name;
            return expect(&what, got, Err(&removed_dylib(dylib)));
        }
        if !defined {
            let dylib = &self.instances[instance].name;
            return expect(&what, got, Err(&not_found(&[Name::Entry(i)], dylib)));
        }
        self.materialize_entry(instance, i);
        let stub = got.map_err(|e| format!("{what}: looking the entry up: {e}"))?[&entry].address;
        self.observe_stub(instance, i, stub)?;
        let first_calls = self.counts.first_called.load(Ordering::SeqCst);
        let result = call(stub, arg);
        let seen = self.take_failures();
        let Some(Def {
            kind: Kind::Entry { source, rt, .. },
            ..
        }) = &self.instances[instance].syms[i]
        else {
            unreachable!("checked above");
        };
        let (source, rt) = (*source, rt.clone());
        let outcome = match rt.clone() {
            EntryRt::Target(k) => Ok(k),
            EntryRt::Unresolved => {
                self.model_first_calls += 1;
                let outcome = self.resolve(source, i);
                let Some(Def {
                    kind: Kind::Entry { rt, .. },
                    ..
                }) = &mut self.instances[instance].syms[i]
                else {
                    unreachable!("checked above");
                };
                // A failure does not stick (every failure here may go
                // away: a missing, failed or null implementation): the next
                // call looks the implementation up again.
                if let Ok(k) = &outcome {
                    *rt = EntryRt::Target(*k);
                }
                outcome
            }
        };
        let new_first_calls = self.counts.first_called.load(Ordering::SeqCst) - first_calls;
        let want_first_calls = usize::from(rt == EntryRt::Unresolved);
        if new_first_calls != want_first_calls {
            return Err(format!(
                "{what}: {new_first_calls} implementation lookups, want {want_first_calls} (entry was {rt:?})"
            ));
        }
        match outcome {
            Ok(k) => {
                let want = KNOWN[k](arg);
                if result != want || !seen.is_empty() {
                    return Err(format!(
                        "{what}({arg}): got {result:#x} with failures {seen:?}, want {want:#x} (KNOWN[{k}])"
                    ));
                }
            }
            Err(msg) => {
                let want = vec![format!("lazyrt: cannot resolve e{i}: {msg}")];
                if result != FALLBACK || seen != want {
                    return Err(format!(
                        "{what}({arg}): got {result:#x} with failures {seen:?}, want the fallback with {want:?}"
                    ));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn redirect(&mut self, jd: usize, i: usize, k: usize, impl_symbol: bool) -> Check {
        let instance = self.slots[jd].instance;
        let name = if impl_symbol {
            Name::Impl(i)
        } else {
            Name::Entry(i)
        };
        let handle = self.instances[instance].handle.clone();
        let got = self
            .manager
            .redirect(&handle, &self.name(name), fn_addr(KNOWN[k]));
        let dylib = self.instances[instance].name.clone();
        let what = format!("redirect {name:?} of {dylib} to KNOWN[{k}]");
        if !self.instances[instance].alive || self.instances[instance].syms[name.index()].is_none()
        {
            return expect(&what, got, Err(&not_found(&[name], &dylib)));
        }
        if impl_symbol {
            let state = match &self.instances[instance].syms[N + i] {
                Some(Def {
                    kind: Kind::Impl { state, .. },
                    ..
                }) => state.clone(),
                _ => unreachable!("checked above"),
            };
            let state = match state {
                ImplState::Pending => self.materialize_impl(instance, i),
                state => state,
            };
            let want = match state {
                ImplState::Failed(msg) => msg,
                _ => {
                    format!("e{i}$impl in JITDylib {dylib} is not a lazy reexport of this manager")
                }
            };
            return expect(&what, got, Err(&want));
        }
        self.materialize_entry(instance, i);
        if let Some(Def {
            kind: Kind::Entry { rt, .. },
            ..
        }) = &mut self.instances[instance].syms[i]
        {
            *rt = EntryRt::Target(k);
        }
        expect(&what, got, Ok(()))
    }
}
