//! The playbook file as types: what may be written where. serde enforces
//! the shape (`deny_unknown_fields`, types); the loader then reads the parts
//! whose order or source matters (vars, target, the checks and their
//! includes) from the located tree.

use super::located::kind_name;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybookFile {
    #[serde(default, deserialize_with = "some")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "some")]
    pub description: Option<String>,
    /// Shape only: the loader reads the entries in order.
    #[serde(default, deserialize_with = "some")]
    #[allow(dead_code)]
    pub target: Option<TargetMap>,
    /// Shape only: the loader reads the entries in order.
    #[serde(default, deserialize_with = "some")]
    #[allow(dead_code)]
    pub vars: Option<VarsMap>,
    #[serde(default, deserialize_with = "some")]
    pub settings: Option<Mapping<SettingsFile>>,
    #[serde(default, deserialize_with = "some")]
    pub phases: Option<Phases>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsFile {
    #[serde(default, deserialize_with = "concurrency")]
    pub concurrency: Option<usize>,
    #[serde(default, deserialize_with = "duration")]
    pub deadline: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub timeout: Option<Duration>,
    #[serde(default, deserialize_with = "flag")]
    pub allow_remote: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseFile {
    #[serde(default, deserialize_with = "text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub description: Option<String>,
    /// Shape only: the loader reads the entries (they may be includes).
    #[serde(default, deserialize_with = "some")]
    #[allow(dead_code)]
    pub checks: Option<Checks>,
}

/// The fields every check has, whatever its kind (`id` and `kind` are read
/// first, by the loader, since the kind decides the other fields).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckHeader {
    #[serde(default, deserialize_with = "text")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub description: Option<String>,
    #[serde(default)]
    pub needs: Option<Needs>,
    #[serde(default, deserialize_with = "duration")]
    pub timeout: Option<Duration>,
    #[serde(default, deserialize_with = "retries")]
    pub retries: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    pub interval: Option<Duration>,
    #[serde(default, deserialize_with = "text")]
    pub root_cause: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub remedy: Option<String>,
}

/// Fields every check has, whatever its kind.
pub const COMMON_KEYS: &[&str] = &[
    "id",
    "kind",
    "title",
    "description",
    "needs",
    "timeout",
    "retries",
    "interval",
    "root_cause",
    "remedy",
];

/// What a mapping type is called in "expected …, found …".
pub trait Shaped {
    const EXPECTING: &'static str;
}

impl Shaped for PlaybookFile {
    const EXPECTING: &'static str =
        "a mapping with `name`, `target`, `vars` and `phases` at the top";
}

impl Shaped for SettingsFile {
    const EXPECTING: &'static str = "a mapping";
}

impl Shaped for PhaseFile {
    const EXPECTING: &'static str = "a phase: a mapping with `name` and `checks`";
}

/// A struct that must be written as a mapping: serde's derived structs also
/// accept a list of their fields' values, which a playbook never means.
pub struct Mapping<T>(pub T);

impl<'de, T: Deserialize<'de> + Shaped> Deserialize<'de> for Mapping<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Shaped> Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(T::EXPECTING)
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(a))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData)).map(Mapping)
    }
}

/// A mapping checked for shape only: its entries are read, in order, from
/// the located tree.
struct AnyMap(&'static str);

impl<'de> Visitor<'de> for AnyMap {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

/// `target:`, read in order by the loader.
pub struct TargetMap;

impl<'de> Deserialize<'de> for TargetMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(AnyMap(
            "a mapping such as `base_url: http://localhost:3001`",
        ))?;
        Ok(TargetMap)
    }
}

/// `vars:`, read in order by the loader (each may use the ones above it).
pub struct VarsMap;

impl<'de> Deserialize<'de> for VarsMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(AnyMap("a mapping of names to values"))?;
        Ok(VarsMap)
    }
}

/// `phases:`, a list of [`PhaseFile`].
pub struct Phases(pub Vec<PhaseFile>);

impl<'de> Deserialize<'de> for Phases {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Phases;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of phases")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Phases, A::Error> {
                let mut out = Vec::new();
                while let Some(Mapping(p)) = a.next_element::<Mapping<PhaseFile>>()? {
                    out.push(p);
                }
                Ok(Phases(out))
            }
        }
        d.deserialize_seq(V)
    }
}

/// A phase's `checks:`; each entry is read from the located tree (it may be
/// an `include:`).
pub struct Checks;

impl<'de> Deserialize<'de> for Checks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Checks;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of checks")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Checks, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Checks)
            }
        }
        d.deserialize_seq(V)
    }
}

/// `needs:`, one id or a list of them.
pub struct Needs(pub Vec<String>);

impl<'de> Deserialize<'de> for Needs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Needs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a check id or a list of ids")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Needs, E> {
                Ok(Needs(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Needs, A::Error> {
                let mut out = Vec::new();
                while let Some(id) = a.next_element::<String>()? {
                    out.push(id);
                }
                Ok(Needs(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A present field (`null` is a wrong type, not an absent field).
fn some<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A string, a number or a boolean, as text.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(Some(s)),
        serde_json::Value::Number(n) => Ok(Some(n.to_string())),
        serde_json::Value::Bool(b) => Ok(Some(b.to_string())),
        other => Err(de::Error::custom(format!(
            "expected a string, found {}",
            kind_name(&other)
        ))),
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s,
        serde_json::Value::Number(n) => n.to_string(),
        other => {
            return Err(de::Error::custom(format!(
                "expected a duration such as 5s or 500ms, found {}",
                kind_name(&other)
            )));
        }
    };
    crate::support::duration::parse(&text)
        .map(Some)
        .map_err(de::Error::custom)
}

fn whole<'de, D: Deserializer<'de>>(
    d: D,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    v.as_u64().filter(|n| range.contains(n)).ok_or_else(|| {
        de::Error::custom(format!(
            "expected a whole number from {} to {}",
            range.start(),
            range.end()
        ))
    })
}

fn concurrency<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    whole(d, 1..=256).map(|n| Some(n as usize))
}

fn retries<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    whole(d, 0..=1000).map(|n| Some(n as u32))
}

fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Bool(b) => Ok(Some(b)),
        other => Err(de::Error::custom(format!(
            "expected true or false, found {}",
            kind_name(&other)
        ))),
    }
}
