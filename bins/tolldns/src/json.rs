//! Strict reading of JSON input objects, with the JSON path of every field in error messages.

use std::fmt::Display;

use serde_json::{Map, Value};

use crate::error::CliError;

/// The fields of one JSON object, read one by one; [`Fields::finish`] rejects the rest.
pub(crate) struct Fields<'a> {
    path: String,
    map: &'a Map<String, Value>,
    read: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    /// `value` must be an object; `path` names it in errors (`""` for the root).
    pub(crate) fn new(path: impl Into<String>, value: &'a Value) -> Result<Self, CliError> {
        let path = path.into();
        match value {
            Value::Object(map) => Ok(Self {
                path,
                map,
                read: Vec::new(),
            }),
            _ => Err(CliError::field(
                if path.is_empty() { "input" } else { &path },
                "expected a JSON object",
            )),
        }
    }

    /// The path of field `key` of this object.
    pub(crate) fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Whether field `key` is present (it is not marked as read).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    fn get(&mut self, key: &'static str) -> Result<&'a Value, CliError> {
        self.read.push(key);
        self.map
            .get(key)
            .ok_or_else(|| CliError::field(self.path_of(key), "missing"))
    }

    /// Field `key` if present (marked as read either way).
    pub(crate) fn optional(&mut self, key: &'static str) -> Option<&'a Value> {
        self.read.push(key);
        self.map.get(key)
    }

    /// An unsigned integer given as a JSON number or a decimal string, converted to `T`.
    pub(crate) fn uint<T>(&mut self, key: &'static str) -> Result<T, CliError>
    where
        T: TryFrom<u128> + Display,
    {
        let value = self.get(key)?;
        let path = self.path_of(key);
        let wide = match value {
            Value::Number(n) => n.as_u64().map(u128::from).ok_or_else(|| {
                CliError::field(&path, format!("{n} is not a non-negative integer"))
            })?,
            Value::String(s) => parse_decimal(s)
                .ok_or_else(|| CliError::field(&path, format!("{s:?} is not a decimal integer")))?,
            _ => {
                return Err(CliError::field(
                    path,
                    "expected an integer (a JSON number or a decimal string)",
                ));
            }
        };
        T::try_from(wide).map_err(|_| {
            CliError::field(
                &path,
                format!("{wide} does not fit in {}", short_type_name::<T>()),
            )
        })
    }

    /// A string field.
    pub(crate) fn string(&mut self, key: &'static str) -> Result<&'a str, CliError> {
        let value = self.get(key)?;
        value
            .as_str()
            .ok_or_else(|| CliError::field(self.path_of(key), "expected a string"))
    }

    /// An array field.
    pub(crate) fn array(&mut self, key: &'static str) -> Result<&'a [Value], CliError> {
        let value = self.get(key)?;
        value
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| CliError::field(self.path_of(key), "expected an array"))
    }

    /// An object field, to be read in turn.
    pub(crate) fn object(&mut self, key: &'static str) -> Result<Self, CliError> {
        let value = self.get(key)?;
        Fields::new(self.path_of(key), value)
    }

    /// Rejects any field that was not read.
    pub(crate) fn finish(self) -> Result<(), CliError> {
        match self.map.keys().find(|k| !self.read.contains(&k.as_str())) {
            Some(unknown) => Err(CliError::field(self.path_of(unknown), "unknown field")),
            None => Ok(()),
        }
    }
}

/// A non-empty string of ASCII digits as a `u128` (no sign, no spaces, no exponent).
fn parse_decimal(s: &str) -> Option<u128> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn short_type_name<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    name.rsplit("::").next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_as_numbers_or_strings() {
        let v = json!({"a": 7, "b": "340282366920938463463374607431768211455", "c": "+1",
                       "d": -1, "e": 1.5, "f": 70000, "g": true, "h": ""});
        let mut f = Fields::new("x", &v).unwrap();
        assert_eq!(f.uint::<u16>("a").unwrap(), 7);
        assert_eq!(f.uint::<u128>("b").unwrap(), u128::MAX);
        let msg = |e: CliError| e.to_string();
        assert_eq!(
            msg(f.uint::<u64>("c").unwrap_err()),
            "x.c: \"+1\" is not a decimal integer"
        );
        assert_eq!(
            msg(f.uint::<u64>("d").unwrap_err()),
            "x.d: -1 is not a non-negative integer"
        );
        assert_eq!(
            msg(f.uint::<u64>("e").unwrap_err()),
            "x.e: 1.5 is not a non-negative integer"
        );
        assert_eq!(
            msg(f.uint::<u16>("f").unwrap_err()),
            "x.f: 70000 does not fit in u16"
        );
        assert!(msg(f.uint::<u16>("g").unwrap_err()).starts_with("x.g: expected an integer"));
        assert!(f.uint::<u16>("h").is_err());
        assert_eq!(msg(f.uint::<u16>("zz").unwrap_err()), "x.zz: missing");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let v = json!({"a": 1, "b": 2});
        let mut f = Fields::new("", &v).unwrap();
        f.uint::<u8>("a").unwrap();
        assert_eq!(f.finish().unwrap_err().to_string(), "b: unknown field");
        assert_eq!(
            Fields::new("", &json!([1])).err().unwrap().to_string(),
            "input: expected a JSON object"
        );
    }
}
