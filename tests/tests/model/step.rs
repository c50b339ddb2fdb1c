//! One op applied to the real system and to the model, each result
//! compared.

use crate::*;

impl Harness {
    pub(crate) fn step(&mut self, op: &Op) -> Check {
        match *op {
            Op::DefineImpl {
                jd,
                i,
                behaviour,
                tracker,
            } => self.define(jd, Name::Impl(i), tracker, |h| {
                let def = h.model_materialized.len();
                h.model_materialized.push(false);
                lock(&h.materialized).push(0);
                let unit = h.impl_unit(i, def, behaviour);
                let kind = Kind::Impl {
                    def,
                    behaviour,
                    state: ImplState::Pending,
                };
                (Box::new(unit) as Box<dyn lazyrt::MaterializationUnit>, kind)
            }),
            Op::DefineEntry {
                jd,
                i,
                source,
                tracker,
            } => {
                let source_instance = self.slots[source].instance;
                self.define(jd, Name::Entry(i), tracker, |h| {
                    let alias = [(
                        h.name(Name::Entry(i)),
                        (h.name(Name::Impl(i)), SymbolFlags::exported_callable()),
                    )];
                    let unit = if source == jd {
                        lazy_reexports(&h.manager, alias)
                    } else {
                        lazy_reexports_from(&h.manager, &h.instances[source_instance].handle, alias)
                    };
                    let kind = Kind::Entry {
                        source: source_instance,
                        created: false,
                        stub: None,
                        rt: EntryRt::Unresolved,
                    };
                    (Box::new(unit) as Box<dyn lazyrt::MaterializationUnit>, kind)
                })
            }
            Op::Lookup { jd, ref names } => self.lookup(jd, names),
            Op::Call { jd, i, arg } => self.call_entry(jd, i, arg),
            Op::CallRemoved { pick, arg } => {
                if self.dead_stubs.is_empty() {
                    return Ok(());
                }
                let (stub, name) = self.dead_stubs[pick % self.dead_stubs.len()].clone();
                if live_entry(stub) {
                    return Err(format!("removed stub {stub:#x} of {name} is still live"));
                }
                let got = call(stub, arg);
                let seen = self.take_failures();
                let want = vec![format!("lazyrt: cannot resolve {name}: entry was removed")];
                if got != FALLBACK || seen != want {
                    return Err(format!(
                        "calling removed stub {stub:#x}: got {got:#x} with failures {seen:?}, want the fallback with {want:?}"
                    ));
                }
                Ok(())
            }
            Op::Redirect {
                jd,
                i,
                k,
                impl_symbol,
            } => self.redirect(jd, i, k, impl_symbol),
            Op::RemoveTracker { jd, tracker } => {
                let uid = self.slots[jd].trackers[tracker];
                let got = self.trackers[uid].handle.remove();
                let instance = self.trackers[uid].instance;
                if !self.tracker_alive(uid) {
                    let name = &self.instances[instance].name;
                    return expect("remove tracker", got, Err(&removed_tracker(name)));
                }
                self.model_remove_where(instance, |d| d.tracker == uid);
                if self.trackers[uid].explicit {
                    self.trackers[uid].removed = true;
                }
                expect("remove tracker", got, Ok(()))
            }
            Op::NewTracker { jd, tracker } => {
                let instance = self.slots[jd].instance;
                let got = self.instances[instance].handle.create_resource_tracker();
                if !self.instances[instance].alive {
                    let name = &self.instances[instance].name;
                    return expect("create tracker", got, Err(&removed_dylib(name)));
                }
                let handle = got.map_err(|e| format!("create tracker: {e}"))?;
                let uid = self.trackers.len();
                self.trackers.push(Tracker {
                    instance,
                    explicit: true,
                    removed: false,
                    handle,
                });
                self.slots[jd].trackers[tracker] = uid;
                Ok(())
            }
            Op::Transfer { jd, from, to } => {
                let (f, t) = (self.slots[jd].trackers[from], self.slots[jd].trackers[to]);
                let got = self.trackers[f]
                    .handle
                    .transfer_to(&self.trackers[t].handle);
                if f == t {
                    return expect("transfer to itself", got, Ok(()));
                }
                for uid in [f, t] {
                    if !self.tracker_alive(uid) {
                        let name = &self.instances[self.trackers[uid].instance].name;
                        return expect("transfer", got, Err(&removed_tracker(name)));
                    }
                }
                let instance = self.trackers[f].instance;
                for def in self.instances[instance].syms.iter_mut().flatten() {
                    if def.tracker == f {
                        def.tracker = t;
                    }
                }
                expect("transfer", got, Ok(()))
            }
            Op::Clear { jd } => {
                let instance = self.slots[jd].instance;
                let got = self.instances[instance].handle.clear();
                if !self.instances[instance].alive {
                    let name = &self.instances[instance].name;
                    return expect("clear", got, Err(&removed_dylib(name)));
                }
                self.model_remove_where(instance, |_| true);
                expect("clear", got, Ok(()))
            }
            Op::RemoveJitDylib { jd } => {
                let instance = self.slots[jd].instance;
                let got = self
                    .session
                    .remove_jit_dylib(&self.instances[instance].handle);
                if !self.instances[instance].alive {
                    let name = &self.instances[instance].name;
                    return expect("remove JITDylib", got, Err(&removed_dylib(name)));
                }
                self.model_remove_where(instance, |_| true);
                self.instances[instance].alive = false;
                self.stale[jd].push(instance);
                expect("remove JITDylib", got, Ok(()))?;
                Ok(())
            }
            Op::CreateJitDylib { jd } => {
                let instance = self.slots[jd].instance;
                if self.instances[instance].alive {
                    let name = self.instances[instance].name.clone();
                    let got = self.session.create_jit_dylib(&name);
                    let want = format!("a JITDylib named {name} exists already");
                    return expect("create JITDylib", got, Err(&want));
                }
                let generation = self.slots[jd].generation + 1;
                let (instance, trackers) = self.new_instance(jd, generation);
                self.slots[jd] = Slot {
                    instance,
                    generation,
                    trackers,
                };
                Ok(())
            }
            Op::ProbeStale { jd } => {
                let Some(&instance) = self.stale[jd].last() else {
                    return Ok(());
                };
                let probe = self.session.intern("probe");
                let handle = self.instances[instance].handle.clone();
                let name = self.instances[instance].name.clone();
                let got = handle.define_absolute([(
                    probe,
                    ExecutorSymbol {
                        address: fn_addr(k0),
                        flags: SymbolFlags::exported_callable(),
                    },
                )]);
                expect(
                    &format!("define in removed {name}"),
                    got,
                    Err(&removed_dylib(&name)),
                )?;
                let all: Vec<Name> = Name::all().collect();
                let names: Vec<SymbolName> = all.iter().map(|&n| self.name(n)).collect();
                let got = handle.lookup(&names, RequiredState::Ready);
                expect(
                    &format!("lookup in removed {name}"),
                    got,
                    Err(&removed_dylib(&name)),
                )
            }
        }
    }
}
