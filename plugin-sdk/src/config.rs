//! [`Config`]: a plugin's settings.
//!
//! In: the plugin's table from `postern.toml`, which the host passes to
//! `configure` as JSON. Out: typed values, or an error message naming the
//! setting, which the host shows the operator as is.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::prelude::*;

/// The plugin's table from `postern.toml`.
///
/// The required accessors ([`str`](Config::str), [`u64`](Config::u64),
/// [`bool`](Config::bool), [`strings`](Config::strings)) fail when the
/// setting is missing; the `_or` ones fall back to a default. Both fail when
/// the setting has the wrong type, with a message that names it, so that
/// `configure` can simply use `?`:
///
/// ```
/// # use postern_plugin_sdk::Config;
/// let config = Config::from_json(r#"{"zones": ["zen.test"], "score": 3}"#)?;
/// assert_eq!(config.strings("zones")?, ["zen.test"]);
/// assert_eq!(config.u64_or("max", 10)?, 10);
/// assert_eq!(config.str("zone").unwrap_err(), "missing setting `zone`");
/// assert_eq!(config.bool("score").unwrap_err(), "setting `score` must be true or false");
/// # Ok::<(), String>(())
/// ```
///
/// For anything richer, [`deserialize`](Config::deserialize) into your own
/// type; without a `serde` dependency of your own, derive through the SDK's:
///
/// ```
/// use postern_plugin_sdk::{Config, serde::Deserialize};
///
/// #[derive(Deserialize)]
/// #[serde(crate = "postern_plugin_sdk::serde", deny_unknown_fields)]
/// struct Settings {
///     zones: Vec<String>,
///     #[serde(default)]
///     verbose: bool,
/// }
///
/// let settings: Settings = Config::from_json(r#"{"zones": ["zen.test"]}"#)?.deserialize()?;
/// assert_eq!((settings.zones.len(), settings.verbose), (1, false));
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    table: Map<String, Value>,
}

impl Config {
    /// Parses the JSON the host passes to `configure`. Empty input and `null`
    /// are an empty table; anything but an object is an error.
    pub fn from_json(json: &str) -> Result<Config, String> {
        if json.trim().is_empty() {
            return Ok(Config::default());
        }
        match serde_json::from_str(json) {
            Ok(Value::Object(table)) => Ok(Config { table }),
            Ok(Value::Null) => Ok(Config::default()),
            Ok(_) => Err("configuration must be a table".to_owned()),
            Err(e) => Err(format!("configuration is not JSON: {e}")),
        }
    }

    /// The raw value of a setting.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.table.get(key)
    }

    /// Whether the setting is present.
    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// The whole table.
    pub fn table(&self) -> &Map<String, Value> {
        &self.table
    }

    /// A required string.
    pub fn str(&self, key: &str) -> Result<&str, String> {
        self.required(key).and_then(|v| as_str(key, v))
    }

    /// A string, or `default` when absent.
    pub fn str_or<'a>(&'a self, key: &str, default: &'a str) -> Result<&'a str, String> {
        self.get(key).map_or(Ok(default), |v| as_str(key, v))
    }

    /// A required non-negative integer.
    pub fn u64(&self, key: &str) -> Result<u64, String> {
        self.required(key).and_then(|v| as_u64(key, v))
    }

    /// A non-negative integer, or `default` when absent.
    pub fn u64_or(&self, key: &str, default: u64) -> Result<u64, String> {
        self.get(key).map_or(Ok(default), |v| as_u64(key, v))
    }

    /// A required boolean.
    pub fn bool(&self, key: &str) -> Result<bool, String> {
        self.required(key).and_then(|v| as_bool(key, v))
    }

    /// A boolean, or `default` when absent.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, String> {
        self.get(key).map_or(Ok(default), |v| as_bool(key, v))
    }

    /// A required list of strings; a single string is a list of one.
    pub fn strings(&self, key: &str) -> Result<Vec<String>, String> {
        self.required(key).and_then(|v| as_strings(key, v))
    }

    /// A list of strings (a single string is a list of one), or `default`
    /// when absent.
    pub fn strings_or(&self, key: &str, default: &[&str]) -> Result<Vec<String>, String> {
        match self.get(key) {
            Some(v) => as_strings(key, v),
            None => Ok(default.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    /// The whole table as `T`; the error names the offending setting.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, String> {
        T::deserialize(&Value::Object(self.table.clone()))
            .map_err(|e| format!("bad configuration: {e}"))
    }

    fn required(&self, key: &str) -> Result<&Value, String> {
        self.get(key)
            .ok_or_else(|| format!("missing setting `{key}`"))
    }
}

fn as_str<'a>(key: &str, value: &'a Value) -> Result<&'a str, String> {
    value
        .as_str()
        .ok_or_else(|| format!("setting `{key}` must be a string"))
}

fn as_u64(key: &str, value: &Value) -> Result<u64, String> {
    value
        .as_u64()
        .ok_or_else(|| format!("setting `{key}` must be a non-negative integer"))
}

fn as_bool(key: &str, value: &Value) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| format!("setting `{key}` must be true or false"))
}

fn as_strings(key: &str, value: &Value) -> Result<Vec<String>, String> {
    let wrong = || format!("setting `{key}` must be a list of strings");
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(wrong))
            .collect(),
        _ => Err(wrong()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Config {
        Config::from_json(json).unwrap()
    }

    #[test]
    fn parses_tables_and_refuses_the_rest() {
        assert_eq!(config(""), Config::default());
        assert_eq!(config(" null "), Config::default());
        assert_eq!(config("{}"), Config::default());
        assert_eq!(
            Config::from_json("[1]").unwrap_err(),
            "configuration must be a table"
        );
        assert!(
            Config::from_json("{")
                .unwrap_err()
                .starts_with("configuration is not JSON: ")
        );
        let c = config(r#"{"a": 1}"#);
        assert!(c.has("a") && !c.has("b"));
        assert_eq!(c.get("a"), Some(&Value::from(1)));
        assert_eq!(c.table().len(), 1);
    }

    #[test]
    fn typed_accessors() {
        let c = config(
            r#"{"s": "x", "n": 42, "neg": -1, "f": 1.5, "b": true, "l": ["a", "b"], "one": "z",
                "mixed": ["a", 1], "empty": []}"#,
        );
        assert_eq!(c.str("s"), Ok("x"));
        assert_eq!(c.str("n"), Err("setting `n` must be a string".into()));
        assert_eq!(c.str("zz"), Err("missing setting `zz`".into()));
        assert_eq!(c.str_or("zz", "d"), Ok("d"));
        assert_eq!(c.str_or("s", "d"), Ok("x"));
        assert_eq!(
            c.str_or("b", "d"),
            Err("setting `b` must be a string".into())
        );

        assert_eq!(c.u64("n"), Ok(42));
        for bad in ["neg", "f", "s"] {
            assert_eq!(
                c.u64(bad),
                Err(format!("setting `{bad}` must be a non-negative integer"))
            );
        }
        assert_eq!(c.u64_or("zz", 7), Ok(7));

        assert_eq!(c.bool("b"), Ok(true));
        assert_eq!(c.bool("s"), Err("setting `s` must be true or false".into()));
        assert_eq!(c.bool_or("zz", false), Ok(false));

        assert_eq!(c.strings("l"), Ok(vec!["a".into(), "b".into()]));
        assert_eq!(c.strings("one"), Ok(vec!["z".into()]));
        assert_eq!(c.strings("empty"), Ok(vec![]));
        assert_eq!(
            c.strings("mixed"),
            Err("setting `mixed` must be a list of strings".into())
        );
        assert_eq!(
            c.strings("n"),
            Err("setting `n` must be a list of strings".into())
        );
        assert_eq!(c.strings("zz"), Err("missing setting `zz`".into()));
        assert_eq!(c.strings_or("zz", &["d"]), Ok(vec!["d".into()]));
    }

    #[test]
    fn deserializes_into_a_type() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        #[serde(deny_unknown_fields)]
        struct Settings {
            zones: Vec<String>,
            #[serde(default)]
            verbose: bool,
        }
        let s: Settings = config(r#"{"zones": ["a"]}"#).deserialize().unwrap();
        assert_eq!(
            s,
            Settings {
                zones: vec!["a".into()],
                verbose: false
            }
        );
        let err = config(r#"{"zones": ["a"], "zone": 1}"#)
            .deserialize::<Settings>()
            .unwrap_err();
        assert!(
            err.starts_with("bad configuration: unknown field `zone`"),
            "{err}"
        );
    }
}
