//! The redactor's tests: which names look secret, masking by value and by
//! fingerprint, digests and what a record keeps of a secret.

use super::*;

const TOKEN: &str = "tok-3f9a2c";
const PASSWORD: &str = "pw\"with\\quote\n";

fn both() -> Redactor {
    Redactor::new([TOKEN, PASSWORD])
}

#[test]
fn names_that_look_secret() {
    for name in [
        "DB_PASSWORD",
        "api_token",
        "SECRET",
        "AWS_ACCESS_KEY_ID",
        "apikey",
    ] {
        assert!(looks_secret(name), "{name}");
    }
    for name in ["HEAP_SIZE", "PATH", "BUILD_COMMIT", ""] {
        assert!(!looks_secret(name), "{name}");
    }
}

#[test]
fn values_are_masked_wherever_they_are() {
    let r = both();
    let cases = [
        (format!("--token={TOKEN}"), "--token=<masked>".to_owned()),
        (format!("{TOKEN}{TOKEN}"), "<masked><masked>".to_owned()),
        (
            format!("a {TOKEN} b {TOKEN}"),
            "a <masked> b <masked>".to_owned(),
        ),
        ("nothing secret".to_owned(), "nothing secret".to_owned()),
        // The forms the value takes in JSON and in a debug print.
        (
            serde_json::to_string(&format!("x{PASSWORD}y")).unwrap(),
            "\"x<masked>y\"".to_owned(),
        ),
        (format!("{:?}", vec![PASSWORD]), "[\"<masked>\"]".to_owned()),
        (format!("{:?}", [TOKEN]), "[\"<masked>\"]".to_owned()),
    ];
    for (text, want) in cases {
        assert_eq!(r.mask(&text), want, "{text}");
    }
}

#[test]
fn the_longest_value_is_masked_first() {
    let r = Redactor::new(["abcdef", "abcdefghij"]);
    assert_eq!(r.mask("x abcdefghij y abcdef"), "x <masked> y <masked>");
    // Where two overlap, no part of either shows.
    let r = Redactor::new(["abcdefghij", "ghijklmnop"]);
    assert_eq!(r.mask("x abcdefghijklmnop y"), "x <masked> y");
    let r = Redactor::new(["aaaaaa"]);
    assert_eq!(r.mask("aaaaaaa b"), "<masked> b");
}

/// A 1-character value would mask that letter in every line; `true` or
/// `main` telefig's own words. Short values are not looked for.
#[test]
fn empty_and_short_values_are_not_looked_for() {
    let r = Redactor::new(["", "1", "true", "main", "12345"]);
    assert!(r.is_empty());
    let text = "role main, restarts 1, ok true, port 12345";
    assert_eq!(r.mask(text), text);
    assert!(Redactor::new(["123456"]).mask(text).contains("12345"));
    assert_eq!(Redactor::new(["123456"]).mask("a123456b"), "a<masked>b");
}

#[test]
fn fingerprints_find_what_the_values_find() {
    let by_value = both();
    let by_fingerprint = Redactor::from_fingerprints(&by_value.fingerprints());
    assert_eq!(by_fingerprint.values().count(), 0);
    assert_eq!(by_value, by_fingerprint);
    for text in [
        format!("--token={TOKEN} and again {TOKEN}."),
        TOKEN.to_owned(),
        format!("é{TOKEN}ü — {TOKEN}"),
        serde_json::to_string(&vec![format!("x{PASSWORD}"), TOKEN.to_owned()]).unwrap(),
        format!("{:?}", (PASSWORD, 7)),
        "tok-3f9a2 (one short) tok-3f9a2cX".to_owned(),
        format!("{TOKEN}{TOKEN}"),
        String::new(),
    ] {
        assert_eq!(by_fingerprint.mask(&text), by_value.mask(&text), "{text}");
    }
    assert_eq!(by_fingerprint.mask(TOKEN), MASK);
}

#[test]
fn fingerprints_keep_no_value() {
    let text = serde_json::to_string(&both().fingerprints()).unwrap();
    assert!(!text.contains(TOKEN), "{text}");
    assert!(!text.contains("with"), "{text}");
    assert!(!format!("{:?}", both()).contains(TOKEN));
}

#[test]
fn merging_keeps_both() {
    let a = Redactor::new(["aaaaaa-1"]);
    let b = Redactor::from_fingerprints(&Redactor::new(["bbbbbb-2"]).fingerprints());
    let m = a.merged(&b);
    assert_eq!(m.mask("aaaaaa-1 bbbbbb-2"), "<masked> <masked>");
    // A fingerprint a value now finds is looked for by value only.
    let again = m.with_values(["bbbbbb-2"]);
    assert_eq!(again.0.known.len(), 0);
    assert_eq!(again.mask("bbbbbb-2"), MASK);
}

#[test]
fn json_strings_and_keys_are_masked() {
    let mut v = serde_json::json!({
        "Cmd": ["sh", "-c", format!("echo {TOKEN}")],
        "Labels": {TOKEN: "x", "y": TOKEN},
        "Port": 8080,
    });
    let mut values_only = v.clone();
    both().mask_json(&mut v, true);
    assert_eq!(
        v,
        serde_json::json!({
            "Cmd": ["sh", "-c", "echo <masked>"],
            "Labels": {"<masked>": "x", "y": "<masked>"},
            "Port": 8080,
        })
    );
    both().mask_json(&mut values_only, false);
    assert_eq!(values_only["Labels"][TOKEN], "x");
    assert_eq!(values_only["Labels"]["y"], MASK);
}

#[test]
fn concealed_values_are_restored_by_digest() {
    let r = both();
    let text = format!("curl -H 'X: {TOKEN}' -u u:{PASSWORD}");
    let concealed = r.conceal(&text);
    assert!(!concealed.contains(TOKEN) && !concealed.contains("quote"));
    assert!(has_placeholder(&concealed));
    assert_eq!(concealed.matches("<secret:sha256:").count(), 2);
    // Concealing again changes nothing, even where a value could be read
    // inside a digest's hex.
    assert_eq!(r.conceal(&concealed), concealed);
    let hexy = Redactor::new([&digest(TOKEN)[7..13]]);
    assert_eq!(hexy.conceal(&concealed), concealed);
    let lookup = |d: &str| [TOKEN, PASSWORD].into_iter().find(|v| digest(v) == d);
    assert_eq!(restore(&concealed, lookup).unwrap(), text);
    let only_token = |d: &str| (digest(TOKEN) == d).then_some(TOKEN);
    assert_eq!(
        restore(&concealed, only_token).unwrap_err(),
        [digest(PASSWORD)]
    );
    assert_eq!(
        restore("no placeholder", only_token).unwrap(),
        "no placeholder"
    );
    // Text that only looks like the start of one is left alone.
    for text in ["<secret:", "<secret:sha256:12>", "a <secret:x> b"] {
        assert!(!has_placeholder(text), "{text}");
        assert_eq!(restore(text, only_token).unwrap(), text);
    }
}

#[test]
fn digests() {
    assert!(is_digest(&digest("x")));
    assert!(!is_digest("sha256:abc"));
    assert!(!is_digest(&format!("sha256:{}", "g".repeat(64))));
}

#[test]
fn the_writer_masks_with_what_the_process_learned() {
    let value = "writer-secret-5b1e";
    learn(&Redactor::new([value]));
    let mut out = Writer(Vec::new());
    std::io::Write::write_all(&mut out, format!("a {value} b\n").as_bytes()).unwrap();
    assert_eq!(String::from_utf8(out.0).unwrap(), "a <masked> b\n");
    assert_eq!(current().mask(value), MASK);
}
