//! Known-answer tests from `test-vectors/names.json`.

use serde::Deserialize;
use tolldns_core::{NameError, NameKey, NormalizedName};

#[derive(Deserialize)]
struct Vectors {
    name_key_hex: String,
    valid: Vec<Valid>,
    invalid: Vec<Invalid>,
}

#[derive(Deserialize)]
struct Valid {
    input: String,
    canonical: String,
    name_hash_hex: String,
    comment: String,
}

#[derive(Deserialize)]
struct Invalid {
    input: String,
    error: String,
    comment: String,
}

fn error_name(e: NameError) -> &'static str {
    match e {
        NameError::Empty => "Empty",
        NameError::TooLong { .. } => "TooLong",
        NameError::EmptyLabel { .. } => "EmptyLabel",
        NameError::LabelTooLong { .. } => "LabelTooLong",
        NameError::InvalidCharacter { .. } => "InvalidCharacter",
        NameError::InvalidUtf8 => "InvalidUtf8",
        NameError::NonAscii => "NonAscii",
        NameError::Idna => "Idna",
        _ => "Unknown",
    }
}

#[test]
fn name_vectors() {
    let text = include_str!("../../test-vectors/names.json");
    let v: Vectors = serde_json::from_str(text).expect("names.json parses");
    let key: [u8; 32] = hex::decode(&v.name_key_hex).unwrap().try_into().unwrap();
    let key = NameKey(key);
    assert!(v.valid.len() >= 10 && v.invalid.len() >= 10);
    for case in &v.valid {
        let name = NormalizedName::new(&case.input)
            .unwrap_or_else(|e| panic!("{:?} ({}): {e}", case.input, case.comment));
        assert_eq!(name.as_str(), case.canonical, "{}", case.comment);
        assert_eq!(
            hex::encode(key.name_hash(&name)),
            case.name_hash_hex,
            "{}",
            case.comment
        );
    }
    for case in &v.invalid {
        let err = NormalizedName::new(&case.input).expect_err(&format!(
            "{:?} must be rejected: {}",
            case.input, case.comment
        ));
        assert_eq!(
            error_name(err),
            case.error,
            "{:?}: {}",
            case.input,
            case.comment
        );
    }
}
