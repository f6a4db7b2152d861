//! Feeds arbitrary bytes to every sans-IO SMTP receiver: command framing and
//! parsing, DATA (split at an arbitrary point, checking that the split does not
//! change the outcome), and BDAT normalisation. Run with
//! `cargo +nightly fuzz run smtp_proto` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern::smtp::proto::{BdatNormalizer, DataReceiver, DataStatus, Line, command, next_line};

fn receive(input: &[u8], split: usize, reject: bool) -> (Vec<u8>, Option<usize>, bool) {
    let mut rx = DataReceiver::new(4096, reject);
    let mut out = Vec::new();
    match rx.feed(&input[..split], &mut out) {
        DataStatus::Done { consumed } => return (out, Some(consumed), false),
        DataStatus::BareLf => return (out, None, true),
        DataStatus::NeedMore => {}
    }
    match rx.feed(&input[split..], &mut out) {
        DataStatus::Done { consumed } => (out, Some(split + consumed), false),
        DataStatus::BareLf => (out, None, true),
        DataStatus::NeedMore => (out, None, false),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Line::Complete { len, .. } = next_line(data) {
        let _ = command::parse(&data[..len]);
    }
    let split = data.first().map_or(0, |&b| usize::from(b) % (data.len() + 1));
    for reject in [false, true] {
        let whole = receive(data, data.len(), reject);
        let parts = receive(data, split, reject);
        assert_eq!(whole, parts, "feeding in two parts changed the result");
        let (content, end, _) = whole;
        // Stored content never has a bare LF, and the end is a real CRLF.CRLF.
        assert!(content.first() != Some(&b'\n'));
        assert!(content.windows(2).all(|w| w[1] != b'\n' || w[0] == b'\r'));
        if let Some(end) = end {
            assert!(end >= 3 && &data[end - 3..end] == b".\r\n");
        }
    }
    let mut n = BdatNormalizer::new(false);
    let mut out = Vec::new();
    n.push(data, &mut out, 1 << 16);
});
