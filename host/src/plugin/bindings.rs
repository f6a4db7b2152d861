//! The one `bindgen!` site: Rust types and traits generated from `wit/`.
//!
//! Imports are trappable (resource-table errors become traps, never panics);
//! the ones that wait on I/O (`dns`, `kv`, `home`) are async, the others
//! plain functions (no future per call). The exports are called through
//! `exports` (async, so a slow plugin yields to the runtime at every epoch
//! tick, or synchronously when nothing in the plugin can wait: see
//! `plugin::call`), which checks their types once per component instead of
//! once per instance; only the generated types are used from them.

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
    imports: {
        "postern:mta/dns": async | trappable,
        "postern:mta/kv": async | trappable,
        "postern:mta/home": async | trappable,
        default: trappable,
    },
    exports: { default: async },
    with: {
        "postern:mta/context.context": super::caps::context::CallContext,
        "postern:mta/message.message": super::caps::message::MessageBody,
    },
});
