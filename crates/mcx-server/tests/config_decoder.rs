//! Property tests of the configuration decoder (outside input: an operator's file): it
//! never panics on random or mutated text, and a configuration it accepts writes out as
//! TOML that it accepts again as the same configuration.
//!
//! Bounded in CI (256 cases each, or `PROPTEST_CASES`); run longer with e.g.
//! `PROPTEST_CASES=200000 cargo test --release -p mcx-server --test config_decoder`.

use std::path::Path;

use mcx_server::Config;
use proptest::prelude::*;

fn accepts_again(text: &str) {
    if let Ok(config) = Config::parse(text, Path::new("fuzz.toml")) {
        let written = toml::to_string(&config).expect("an accepted configuration writes out");
        let again = Config::parse(&written, Path::new("fuzz.toml"))
            .unwrap_or_else(|e| panic!("written configuration refused: {e}\n{written}"));
        assert_eq!(
            toml::to_string(&again).expect("writes out"),
            written,
            "the configuration changed on the way through TOML"
        );
    }
}

fn mutate(seed: &str, edits: &[(usize, u8, u8)]) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for (at, kind, byte) in edits {
        let at = at % (bytes.len() + 1);
        match kind % 3 {
            0 if at < bytes.len() => bytes[at] = *byte,
            1 => bytes.insert(at, *byte),
            _ if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn the_example_is_accepted_again() {
    accepts_again(Config::example_text());
    assert!(Config::parse(Config::example_text(), Path::new("x.toml")).is_ok());
}

proptest! {
    #[test]
    fn random_text_never_panics(text in "\\PC{0,400}") {
        accepts_again(&text);
    }

    #[test]
    fn mutated_examples_never_panic_and_round_trip(
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), 32u8..127), 1..8),
    ) {
        accepts_again(&mutate(Config::example_text(), &edits));
    }
}
