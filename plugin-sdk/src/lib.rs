//! The postern plugin SDK: what a plugin author writes against.
//!
//! The plugin interface (WIT package `postern:mta`), the `Filter` trait and the
//! `register!` macro arrive with the plugin runtime; until then this crate is
//! intentionally empty.
