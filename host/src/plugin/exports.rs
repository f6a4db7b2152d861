//! The functions a plugin exports: found once per component, their types
//! checked once per load, and called on every instance without checking again.
//!
//! The generated bindings check an export's whole signature (every record,
//! variant and field name) each time an instance's exports are looked up; with
//! a fresh instance per transaction that was several microseconds of every
//! message for a chain of four plugins. Here each export is a typed
//! [`Export<S>`]: the first lookup checks it against its [`Signature`], later
//! ones take the checked function as it is.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::Store;
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, Instance, Lift, Lower, Resource, TypedFunc,
};

use super::bindings::postern::mta::types as wit;
use super::caps::context::CallContext;
use super::caps::message::MessageBody;

/// One exported function's interface, name and types.
pub(super) trait Signature {
    /// The parameters, as the host passes them.
    type Params<'a>: ComponentNamedList + Lower + Send + Sync;
    /// The results.
    type Results: ComponentNamedList + Lift + Send + Sync + 'static;
    /// The exported interface.
    const INTERFACE: &'static str;
    /// The function in it.
    const NAME: &'static str;
}

macro_rules! signatures {
    ($($ty:ident = $iface:literal $name:literal ($($p:ty),*) -> $r:ty;)*) => {$(
        #[doc = concat!("`", $iface, "#", $name, "`.")]
        pub(super) enum $ty {}
        impl Signature for $ty {
            type Params<'a> = ($($p,)*);
            type Results = ($r,);
            const INTERFACE: &'static str = $iface;
            const NAME: &'static str = $name;
        }
    )*};
}

signatures! {
    Configure = "postern:mta/lifecycle@0.1.0" "configure"
        (&'a str) -> Result<(), String>;
    OnConnect = "postern:mta/session-filter@0.1.0" "on-connect"
        (Resource<CallContext>) -> wit::Outcome;
    OnHelo = "postern:mta/session-filter@0.1.0" "on-helo"
        (Resource<CallContext>, &'a str) -> wit::Outcome;
    OnMail = "postern:mta/session-filter@0.1.0" "on-mail"
        (Resource<CallContext>, &'a str) -> wit::Outcome;
    OnRcpt = "postern:mta/session-filter@0.1.0" "on-rcpt"
        (Resource<CallContext>, &'a str) -> wit::Outcome;
    OnData = "postern:mta/message-filter@0.1.0" "on-data"
        (Resource<CallContext>, Resource<MessageBody>) -> wit::Outcome;
    OnDeliver = "postern:mta/delivery-filter@0.1.0" "on-deliver"
        (Resource<CallContext>, &'a wit::Delivery, Resource<MessageBody>) -> wit::Outcome;
}

/// An exported function of one component.
pub(super) struct Export<S> {
    index: ComponentExportIndex,
    /// Set once an instance of this component passed the type check.
    checked: AtomicBool,
    _signature: PhantomData<fn() -> S>,
}

impl<S: Signature> Export<S> {
    /// Finds the export in `component`.
    fn find(component: &Component) -> Option<Self> {
        let iface = component.get_export_index(None, S::INTERFACE)?;
        Some(Export {
            index: component.get_export_index(Some(&iface), S::NAME)?,
            checked: AtomicBool::new(false),
            _signature: PhantomData,
        })
    }

    /// Checks the function's type in `instance` (an instance of the component
    /// it was found in) against `S`.
    fn check<T>(&self, store: &mut Store<T>, instance: &Instance) -> wasmtime::Result<()> {
        instance
            .get_typed_func::<S::Params<'_>, S::Results>(&mut *store, &self.index)
            .map_err(|e| e.context(format!("export `{}#{}`", S::INTERFACE, S::NAME)))?;
        self.checked.store(true, Ordering::Release);
        Ok(())
    }

    /// The function in `instance`, an instance of the component it was found
    /// in; checked against `S` the first time.
    pub(super) fn typed<'a, T>(
        &self,
        store: &mut Store<T>,
        instance: &Instance,
    ) -> wasmtime::Result<TypedFunc<S::Params<'a>, S::Results>> {
        if !self.checked.load(Ordering::Acquire) {
            self.check(store, instance)?;
        }
        let func = instance
            .get_func(&mut *store, self.index)
            .ok_or_else(|| wasmtime::format_err!("`{}` is not exported", S::NAME))?;
        // SAFETY: `checked` is set only after `get_typed_func::<S::Params,
        // S::Results>` accepted this export on an instance of the same
        // component, and every instance of a component has the same export
        // types. `S` fixes the types here as it did there; lifetimes do not
        // take part in the check.
        #[allow(unsafe_code)]
        Ok(unsafe { TypedFunc::new_unchecked(func) })
    }
}

/// The session stage's four hooks: a component exports all or none.
pub(super) struct Session {
    pub connect: Export<OnConnect>,
    pub helo: Export<OnHelo>,
    pub mail: Export<OnMail>,
    pub rcpt: Export<OnRcpt>,
}

/// Everything postern calls in one component.
pub(super) struct Exports {
    pub configure: Export<Configure>,
    pub session: Option<Session>,
    pub data: Option<Export<OnData>>,
    pub deliver: Option<Export<OnDeliver>>,
}

impl Exports {
    /// Finds the exports in `component`; `None` without `configure`.
    pub(super) fn find(component: &Component) -> Option<Self> {
        let session = match (
            Export::find(component),
            Export::find(component),
            Export::find(component),
            Export::find(component),
        ) {
            (Some(connect), Some(helo), Some(mail), Some(rcpt)) => Some(Session {
                connect,
                helo,
                mail,
                rcpt,
            }),
            _ => None,
        };
        Some(Exports {
            configure: Export::find(component)?,
            session,
            data: Export::find(component),
            deliver: Export::find(component),
        })
    }

    /// Checks every export's type on `instance`, so that a plugin built
    /// against another interface is refused when it loads, not when a hook
    /// is first called.
    pub(super) fn check<T>(
        &self,
        store: &mut Store<T>,
        instance: &Instance,
    ) -> wasmtime::Result<()> {
        self.configure.check(store, instance)?;
        if let Some(s) = &self.session {
            s.connect.check(store, instance)?;
            s.helo.check(store, instance)?;
            s.mail.check(store, instance)?;
            s.rcpt.check(store, instance)?;
        }
        if let Some(e) = &self.data {
            e.check(store, instance)?;
        }
        if let Some(e) = &self.deliver {
            e.check(store, instance)?;
        }
        Ok(())
    }
}
