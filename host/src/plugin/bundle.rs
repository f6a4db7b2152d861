//! The default plugins compiled into the binary (see `host/build.rs`): the
//! configuration loads them as `path = "builtin:NAME"`.

include!(concat!(env!("OUT_DIR"), "/bundle.rs"));

/// The prefix of a built-in plugin's path.
pub const PREFIX: &str = "builtin:";

/// The component of the built-in plugin `path` names, if it names one.
/// `Some(Err(..))`: it names one this binary does not have.
pub fn lookup(path: &std::path::Path) -> Option<Result<&'static [u8], String>> {
    let name = path.to_str()?.strip_prefix(PREFIX)?;
    Some(
        BUNDLE
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, bytes)| *bytes)
            .ok_or_else(|| {
                if BUNDLE.is_empty() {
                    format!("`{PREFIX}{name}`: this binary was built without the default plugins")
                } else {
                    let names: Vec<_> = BUNDLE.iter().map(|(n, _)| *n).collect();
                    format!(
                        "`{PREFIX}{name}` is not a built-in plugin (there are: {})",
                        names.join(", ")
                    )
                }
            }),
    )
}

/// The names of the built-in plugins.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUNDLE.iter().map(|(n, _)| *n)
}
