//! Test fixture: a plugin built against another shape of the interface.
//!
//! It exports `postern:mta/lifecycle` and `postern:mta/session-filter` under
//! their real names, but its hooks take and return other types, as a plugin
//! built against a different version of the WIT would. postern must refuse it
//! when it loads, naming the export, rather than fail its calls later.

// The generated ABI glue is unsafe code; this crate has no other.
#![allow(unsafe_code)]

wit_bindgen::generate!({
    inline: r#"
        package postern:mta@0.1.0;

        interface lifecycle {
            configure: func(config: string) -> result<_, string>;
        }

        interface session-filter {
            on-connect: func(ip: string, args: list<string>) -> u32;
            on-helo: func(ip: string, helo: string, args: list<string>) -> u32;
            on-mail: func(ip: string, sender: string, args: list<string>) -> u32;
            on-rcpt: func(ip: string, recipient: string, args: list<string>) -> u32;
        }

        world mistyped {
            export lifecycle;
            export session-filter;
        }
    "#,
});

use exports::postern::mta::{lifecycle, session_filter};

/// The fixture.
struct Mistyped;

impl lifecycle::Guest for Mistyped {
    fn configure(_config: String) -> Result<(), String> {
        Ok(())
    }
}

impl session_filter::Guest for Mistyped {
    fn on_connect(_ip: String, _args: Vec<String>) -> u32 {
        0
    }
    fn on_helo(_ip: String, _helo: String, _args: Vec<String>) -> u32 {
        0
    }
    fn on_mail(_ip: String, _sender: String, _args: Vec<String>) -> u32 {
        0
    }
    fn on_rcpt(_ip: String, _recipient: String, _args: Vec<String>) -> u32 {
        0
    }
}

export!(Mistyped);
