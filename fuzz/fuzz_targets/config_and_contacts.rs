//! Fuzzes what reads the files a user writes by hand: the configuration
//! (`config.toml`) and the contacts book (`contacts.toml`, and vCards
//! imported into it). Beyond not panicking: a book that parses prints as
//! TOML that parses back to the same book, an import's result does too, and
//! dialling by name (any query) answers without panicking.
#![no_main]

use ipphone::config::Config;
use ipphone::contacts::{self, Book};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = Config::parse(&text);
    if let Ok(book) = Book::parse(&text) {
        round_trips(&book);
        // A query made of the input's first line.
        let query = text.lines().next().unwrap_or_default();
        let _ = contacts::resolve(&book, query);
        let _ = contacts::name_for(&book, query);
    }
    let mut imported = Book::default();
    let _ = imported.import_vcards(data);
    round_trips(&imported);
    let _ = imported.to_vcards();
});

fn round_trips(book: &Book) {
    let printed = book.to_toml();
    match Book::parse(&printed) {
        Ok(again) => assert_eq!(&again, book, "{printed}"),
        Err(e) => panic!("{e:#}\n{printed}"),
    }
}
