//! The one `wit_bindgen::generate!` site: Rust types and ABI glue for the WIT
//! world `postern:mta/plugin` (`wit/postern.wit`).
//!
//! In: the WIT package. Out: the record types (re-exported at the crate root),
//! the raw import functions (wrapped by `dns`, `log`, `kv`, `clock` and
//! `Message`), the `Guest` traits (implemented once, in `adapter`) and the
//! export macro (expanded by `register!` in the plugin's own crate).
//!
//! Nothing else in the SDK may call the raw imports directly: every import a
//! component calls becomes a capability it needs, so each one is reached only
//! from the public function a plugin calls on purpose.

wit_bindgen::generate!({
    world: "plugin",
    path: "../wit",
    // `register!` expands the export macro in the plugin's crate, so it must be
    // `#[macro_export]`ed, and the paths it emits must not assume the plugin
    // depends on `wit-bindgen` itself.
    pub_export_macro: true,
    export_macro_name: "__postern_export_plugin",
    default_bindings_module: "postern_plugin_sdk::__private::bindings",
    // Must point at `wit_bindgen::rt`, not the crate root ("cannot find
    // function `run_ctors_once`" otherwise).
    runtime_path: "postern_plugin_sdk::__private::wit_bindgen::rt",
    // Plugin tests compare outcomes with `assert_eq!`.
    additional_derives: [PartialEq, Eq],
});
