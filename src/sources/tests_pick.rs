//! `pick` reads what a parsed `Value` would give, on any text: duplicate keys, escaped keys,
//! NULs, surrogates, numbers out of range, trailing bytes and documents that are not objects.

use super::pick::Fields;
use crate::event::text_at;
use proptest::prelude::*;
use serde_json::Value;

const KEYS: &[&str] = &[
    "\"action\"",
    "\"label\"",
    "\"name\"",
    "\"issue\"",
    "\"labels\"",
    "\"0\"",
    "\"number\"",
    "\"pull_request\"",
    "\"head\"",
    "\"sha\"",
    "\"repository\"",
    "\"full_name\"",
    "\"after\"",
    "\"event\"",
    "\"id\"",
    "\"event_type\"",
    "\"data\"",
    "\"type\"",
    "\"incident\"",
    "\"content\"",
    "\"service\"",
    "\"summary\"",
    "\"value\"",
    "\"sys_id\"",
    "\"category\"",
    "\"na\\u006de\"",
    "\"a\\u0000\"",
    "\"\"",
];

const LEAVES: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "42",
    "-7",
    "1.5",
    "1e3",
    "18446744073709551616",
    "1e400",
    "\"\"",
    "\"x\"",
    "\"incident\"",
    "\"[aap-bridge] x\"",
    "\"a\\u0000b\"",
    "\"\\\\u0000\"",
    "\"\\ud83d\\ude00\"",
    "\"\\ud800\"",
    "\"q\\\"uote\"",
    "\"é\"",
    "\"01\"",
];

fn text() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(LEAVES).prop_map(String::from);
    let doc = leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                let pairs: Vec<String> = kv.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", pairs.join(","))
            }),
        ]
    });
    (doc, prop::sample::select(vec!["", " ", "x", "}", " {}"]))
        .prop_map(|(d, tail)| format!("{d}{tail}"))
}

fn contains_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(contains_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

fn agree(pointers: &[&str], text: &str) -> Result<(), TestCaseError> {
    let fields = Fields::new(pointers);
    let picked = fields.pick(text.as_bytes());
    let parsed = serde_json::from_slice::<Value>(text.as_bytes())
        .map_err(|e| format!("body is not valid JSON: {e}"))
        .and_then(|v| match v.is_object() {
            true => Ok(v),
            false => Err("body must be a JSON object".to_string()),
        });
    match (picked, parsed) {
        (Ok(p), Ok(v)) => {
            // Pick also sees a NUL under a key a later duplicate replaces: the stored text has
            // it all the same, so it is refused too.
            prop_assert!(p.nul || !contains_nul(&v), "nul missed in {}", text);
            for (i, ptr) in pointers.iter().enumerate() {
                prop_assert_eq!(p.text(i), text_at(&v, ptr), "{} in {}", ptr, text);
                let s = v.pointer(ptr).and_then(Value::as_str);
                prop_assert_eq!(p.str(i), s, "{} as str in {}", ptr, text);
            }
        }
        (Err(a), Err(b)) => prop_assert_eq!(a, b, "errors differ on {}", text),
        (a, b) => prop_assert!(false, "{text}: pick {a:?}, parse {b:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn pick_reads_what_a_parsed_value_gives(text in text()) {
        let sn: Vec<String> = super::servicenow::FIELD_NAMES.iter().map(|k| format!("/{k}")).collect();
        let sn: Vec<&str> = sn.iter().map(String::as_str).collect();
        for pointers in [super::github::POINTERS, super::pagerduty::POINTERS, &sn] {
            agree(pointers, &text)?;
        }
    }
}

#[test]
fn a_pointer_that_extends_another_is_refused_at_build() {
    let r = std::panic::catch_unwind(|| Fields::new(&["/a", "/a/b"]));
    assert!(r.is_err());
}

#[test]
fn a_nul_under_a_replaced_duplicate_key_is_found() {
    let f = Fields::new(&["/a"]);
    let p = f.pick(br#"{"b":{"c":"x\u0000"},"b":1}"#).unwrap();
    assert!(p.nul);
}

#[test]
fn the_last_of_duplicate_keys_counts_as_in_a_value() {
    let f = Fields::new(&["/issue/number", "/issue/title"]);
    let p = f
        .pick(br#"{"issue":{"number":1,"title":"a"},"issue":{"title":"b"}}"#)
        .unwrap();
    assert_eq!((p.text(0), p.text(1)), (None, Some("b".into())));
}
