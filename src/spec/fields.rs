//! The field names of a serde struct, read from its `Deserialize` impl.
//!
//! Validation lists every unknown key at once with a did-you-mean, so it
//! needs each config struct's field names. Reading them from the derive
//! keeps a single source of truth: a renamed field cannot drift from a
//! hand-written list.

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The keys `T` accepts (its serde field names, after renames).
pub fn field_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut probe = Probe { fields: None };
    let _ = T::deserialize(&mut probe);
    probe.fields.unwrap_or(&[])
}

struct Probe {
    fields: Option<&'static [&'static str]>,
}

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field probe")
    }
}
impl std::error::Error for Stop {}
impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for &mut Probe {
    type Error = Stop;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        self.fields = Some(fields);
        Err(Stop)
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_renamed_fields() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct S {
            a: u32,
            #[serde(rename = "bee")]
            b: String,
        }
        assert_eq!(super::field_names::<S>(), &["a", "bee"]);
    }
}
