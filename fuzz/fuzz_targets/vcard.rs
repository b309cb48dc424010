//! Fuzzes the vCard parser. Beyond not panicking: every card it reads
//! prints with no line over 75 octets and parses back to the same card,
//! and its values can be read as text and as structured values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::vcard::{self, MAX_LINE_OCTETS};

fuzz_target!(|data: &[u8]| {
    for item in vcard::parse(data) {
        let Ok(card) = item.card else {
            continue;
        };
        for property in &card.properties {
            let _ = property.text();
            let _ = property.components();
            let _ = property.has_type("voice");
        }
        let printed = card.to_string();
        assert!(
            printed
                .split("\r\n")
                .all(|line| line.len() <= MAX_LINE_OCTETS)
        );
        let again = vcard::parse(printed.as_bytes());
        assert_eq!(again.len(), 1, "{printed:?}");
        assert_eq!(again[0].card.as_ref(), Ok(&card), "{printed:?}");
    }
});
