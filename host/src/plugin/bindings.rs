//! The one `bindgen!` site: Rust types and traits generated from `wit/`.
//!
//! Imports are async (DNS and kv do real I/O) and trappable (resource-table
//! errors become traps, never panics). The exports are called through
//! `exports` (async, so a slow plugin yields to the runtime at every epoch
//! tick), which checks their types once per component instead of once per
//! instance; only the generated types are used from them.

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "postern:mta/context.context": super::caps::context::CallContext,
        "postern:mta/message.message": super::caps::message::MessageBody,
    },
});
