//! Target `args`: the TEXT argument language (PROTOCOL.md §8) that every internal command and
//! every text-form async command reads: the tokeniser, key lookup, the typed getters, the
//! builder and the data-constraint validators applied to values.
//!
//! The input is read as UTF-8 (lossily), which lets the fuzzer work in the characters that
//! matter (quotes, backslashes, dashes, spaces); it is also sent through the UTF-16 TEXT
//! encoding that the wire uses.
//!
//! Invariant checked: nothing panics; lookups agree with one another (case-insensitive keys,
//! the typed getters with plain decimal parsing); every string given to the builder, the
//! whole input, its `|`-separated parts and each of its tokens, parses back unchanged; and
//! the text-form async commands and GEN_FILE arguments round-trip.

use mrci_proto::{
    args::{Args, ArgsBuilder, quote, tokenize},
    async_id::AsyncId,
    constraints, text,
};

use super::proto;

/// At most this many builder values per input, to keep each run short.
const MAX_VALUES: usize = 24;

/// See the module doc.
pub fn args(data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    let parsed = Args::parse(&line);
    assert_eq!(parsed.tokens(), &tokenize(&line)[..]);
    for token in parsed.tokens() {
        assert!(!token.text.is_empty(), "an empty token in {line:?}");
        if token.is_key() {
            lookups(&parsed, &token.text);
        }
        validators(&token.text);
    }
    round_trips(&parsed, &line);
    let wire = text::encode(&line);
    assert_eq!(
        Args::parse(&text::decode(&wire)),
        parsed,
        "TEXT changed the line"
    );
    for id in (1..=u8::MAX).map(AsyncId).filter(|id| id.is_defined()) {
        proto::async_cmd(id, &wire);
    }
    proto::gen_file_args(&wire);
}

fn lookups(args: &Args, key: &str) {
    let value = args.value(key).expect("a key that is present has a value");
    assert!(args.has(key));
    assert_eq!(
        args.value(&key.to_ascii_uppercase()),
        Some(value),
        "{key} upper"
    );
    assert_eq!(
        args.value(&key.to_ascii_lowercase()),
        Some(value),
        "{key} lower"
    );
    assert_eq!(args.required(key).is_ok(), !value.is_empty());
    let plain = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    match args.u64_opt(key) {
        Ok(Some(n)) => {
            assert!(plain, "{value:?} read as the number {n}");
            assert_eq!(value.parse::<u64>().ok(), Some(n));
            assert_eq!(args.u32_opt(key).ok().flatten(), u32::try_from(n).ok());
            assert_eq!(args.u8_opt(key).ok().flatten(), u8::try_from(n).ok());
            assert_eq!(args.u64(key).ok(), Some(n));
        }
        Ok(None) => panic!("{key} is present but u64_opt says absent"),
        Err(_) => {
            assert!(!plain || value.parse::<u64>().is_err(), "{value:?} refused");
            assert!(args.u32_opt(key).is_err() && args.u8_opt(key).is_err());
        }
    }
}

fn validators(s: &str) {
    let checks: [fn(&str) -> bool; 13] = [
        |s| constraints::user_name(s).is_ok(),
        |s| constraints::email(s).is_ok(),
        |s| constraints::password(s).is_ok(),
        |s| constraints::command_name(s).is_ok(),
        |s| constraints::common_name(s).is_ok(),
        |s| constraints::display_name(s).is_ok(),
        |s| constraints::group_name(s).is_ok(),
        |s| constraints::channel_name(s).is_ok(),
        |s| constraints::client_app(s).is_ok(),
        |s| constraints::module_path(s).is_ok(),
        |s| constraints::ip_address(s).is_ok(),
        |s| constraints::channel_id(s).is_ok(),
        |s| constraints::level(s, true).is_ok(),
    ];
    for check in checks {
        check(s);
    }
    let plain = s.bytes().all(|b| b.is_ascii_digit());
    if let Ok(n) = constraints::host_rank(s) {
        assert!(plain && s.parse() == Ok(n), "host rank {s:?} read as {n}");
    }
    if let Ok(n) = constraints::sub_channel_id(s) {
        assert!(
            plain && s.parse() == Ok(n),
            "sub-channel id {s:?} read as {n}"
        );
    }
}

fn round_trips(parsed: &Args, line: &str) {
    let values: Vec<&str> = std::iter::once(line)
        .chain(line.split('|'))
        .chain(parsed.tokens().iter().map(|t| t.text.as_str()))
        .take(MAX_VALUES)
        .collect();
    let number = line.len() as u64 * 7919;
    let mut builder = ArgsBuilder::new();
    for (i, value) in values.iter().enumerate() {
        builder = builder.arg(&format!("-v{i}"), *value);
    }
    let built = builder.arg("-n", number).flag("-flag").build();
    let back = Args::parse(&built);
    for (i, value) in values.iter().enumerate() {
        assert_eq!(
            back.value(&format!("-v{i}")),
            Some(*value),
            "value {i} did not survive {built:?}"
        );
        let alone = tokenize(&quote(value));
        let texts: Vec<&str> = alone.iter().map(|t| t.text.as_str()).collect();
        let expected: &[&str] = if value.is_empty() { &[] } else { &[value] };
        assert_eq!(texts, expected, "quote({value:?})");
        assert!(
            alone.iter().all(|t| !t.is_key()),
            "a quoted value became a key"
        );
    }
    assert_eq!(back.u64("-n").ok(), Some(number));
    assert!(back.has("-flag"));
}
