//! Materialization units: what a JITDylib holds for symbols that do not
//! exist yet, and the built-in ones (closures, aliases and reexports).

use std::borrow::Cow;

use smallvec::SmallVec;

use crate::dylib::JitDylib;
use crate::responsibility::MaterializationResponsibility;
use crate::session::{LookupFlags, RequiredState};
use crate::symbol::{SymbolFlags, SymbolName};

/// A custom compiler of symbols. Defined in a JITDylib, it is materialized
/// the first time any of its symbols is looked up, at most once.
pub trait MaterializationUnit: Send {
    /// A name for diagnostics.
    fn name(&self) -> &str;

    /// The symbols it provides, with flags. Called once, at definition.
    fn symbols(&self) -> Vec<(SymbolName, SymbolFlags)>;

    /// Produces the symbols: resolve and emit them through `responsibility`
    /// (now, or later from any thread), or fail it.
    fn materialize(self: Box<Self>, responsibility: MaterializationResponsibility);

    /// `symbol` (weak) lost to a strong definition and must not be provided.
    /// Runs under the session lock: it must not call back into the session.
    fn discard(&mut self, dylib: &JitDylib, symbol: &SymbolName) {
        let _ = (dylib, symbol);
    }
}

/// A unit made of a symbol list and a closure.
///
/// ```
/// use lazyrt::{ExecutorAddr, FnUnit, RequiredState, Session, SymbolFlags};
/// let session = Session::new();
/// let jd = session.create_jit_dylib("main")?;
/// let f = session.intern("f");
/// let name = f.clone();
/// jd.define(FnUnit::new("compile f", [(f.clone(), SymbolFlags::exported_callable())],
///     move |mut r| {
///         r.notify_resolved([(name.clone(), ExecutorAddr::new(0x1000))]).unwrap();
///         r.notify_emitted(&[]).unwrap();
///     }))?;
/// assert_eq!(jd.lookup(&[f.clone()], RequiredState::Ready)?[&f].address, ExecutorAddr::new(0x1000));
/// # Ok::<(), lazyrt::Error>(())
/// ```
pub struct FnUnit<F> {
    /// Borrowed when static (a literal): no allocation per unit.
    name: Cow<'static, str>,
    /// Inline for one symbol: no allocation besides the unit's box.
    symbols: SmallVec<[(SymbolName, SymbolFlags); 1]>,
    materialize: F,
}

impl<F> FnUnit<F>
where
    F: FnOnce(MaterializationResponsibility) + Send + 'static,
{
    /// A unit called `name` (a literal or an owned `String`) providing
    /// `symbols` by running `materialize`.
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        symbols: impl IntoIterator<Item = (SymbolName, SymbolFlags)>,
        materialize: F,
    ) -> Self {
        Self {
            name: name.into(),
            symbols: symbols.into_iter().collect(),
            materialize,
        }
    }
}

impl<F> MaterializationUnit for FnUnit<F>
where
    F: FnOnce(MaterializationResponsibility) + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn symbols(&self) -> Vec<(SymbolName, SymbolFlags)> {
        self.symbols.to_vec()
    }

    fn materialize(self: Box<Self>, responsibility: MaterializationResponsibility) {
        (self.materialize)(responsibility)
    }
}

/// Aliases `name -> (target, flags)`, where targets are looked up in a
/// source JITDylib (the defining one for [`aliases`], another for
/// [`reexports`]). An alias resolves to its target's address.
pub struct ReexportsUnit {
    source: Option<JitDylib>,
    aliases: Vec<(SymbolName, SymbolName, SymbolFlags)>,
}

/// Aliases within the JITDylib they are defined in.
pub fn aliases(
    aliases: impl IntoIterator<Item = (SymbolName, (SymbolName, SymbolFlags))>,
) -> ReexportsUnit {
    ReexportsUnit {
        source: None,
        aliases: aliases.into_iter().map(|(a, (t, f))| (a, t, f)).collect(),
    }
}

/// Reexports of symbols of `source` (its exported symbols only).
pub fn reexports(
    source: &JitDylib,
    aliases: impl IntoIterator<Item = (SymbolName, (SymbolName, SymbolFlags))>,
) -> ReexportsUnit {
    ReexportsUnit {
        source: Some(source.clone()),
        aliases: aliases.into_iter().map(|(a, (t, f))| (a, t, f)).collect(),
    }
}

impl MaterializationUnit for ReexportsUnit {
    fn name(&self) -> &str {
        "reexports"
    }

    fn symbols(&self) -> Vec<(SymbolName, SymbolFlags)> {
        self.aliases
            .iter()
            .map(|(a, _, f)| (a.clone(), *f))
            .collect()
    }

    fn materialize(self: Box<Self>, mut responsibility: MaterializationResponsibility) {
        let target_dylib = responsibility.target_dylib().clone();
        let (source, flags) = match &self.source {
            Some(source) => (source.clone(), LookupFlags::MatchExportedSymbolsOnly),
            None => (target_dylib, LookupFlags::MatchAllSymbols),
        };
        let targets: Vec<SymbolName> = self.aliases.iter().map(|(_, t, _)| t.clone()).collect();
        let session = match responsibility.session() {
            Ok(session) => session,
            Err(ended) => return responsibility.fail(ended),
        };
        let source_for_deps = source.clone();
        session.lookup(
            &[(source, flags)],
            targets,
            RequiredState::Resolved,
            move |result| match result {
                Ok(found) => {
                    let addresses = self
                        .aliases
                        .iter()
                        .map(|(alias, target, _)| (alias.clone(), found[target].address));
                    let deps: Vec<(JitDylib, SymbolName)> = self
                        .aliases
                        .iter()
                        .map(|(_, t, _)| (source_for_deps.clone(), t.clone()))
                        .collect();
                    let done = responsibility
                        .notify_resolved(addresses)
                        .and_then(|()| responsibility.notify_emitted(&deps));
                    if let Err(e) = done {
                        responsibility.fail(e);
                    }
                }
                Err(e) => responsibility.fail(e),
            },
        );
    }
}
