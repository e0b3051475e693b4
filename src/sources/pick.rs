//! Reading a handful of fields out of a JSON body without building the document.
//!
//! Normalization reads about ten values of a GitHub payload that has hundreds. Building a
//! `serde_json::Value` of all of them was the largest single cost of a delivery; this walks the
//! body once with `deserialize_any` (so it is checked exactly as strictly as a `Value` parse:
//! syntax, escapes, surrogates, nesting depth) but allocates only for the fields asked for.
//! It also finds NUL characters, which Postgres refuses, on the way.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// The JSON pointers one kind of sender reads, compiled once into a tree.
#[derive(Debug, Default)]
pub struct Fields {
    root: Node,
    len: usize,
}

#[derive(Debug, Default)]
struct Node {
    /// A handful each: a scan beats hashing every key of the body.
    children: Vec<(String, Node)>,
    /// The index of the pointer that ends here.
    leaf: Option<usize>,
    /// Every pointer that ends here or below: reset when the walk enters this node again (a
    /// duplicate key), because a `Value` keeps only the last of duplicate keys.
    below: Vec<usize>,
}

/// What the walk found at each pointer, by index.
#[derive(Debug)]
pub struct Picked {
    values: Vec<Option<Found>>,
    /// A string or key holds NUL.
    pub nul: bool,
}

#[derive(Debug, Clone)]
enum Found {
    Str(String),
    Number(String),
    /// An object, with the text of its `value` key.
    Object(Option<String>),
}

impl Picked {
    /// The text at the `i`th pointer given to `Fields::new`, as `event::text_at` reads it: a
    /// non-empty string, a number, or an object's `value`.
    pub fn text(&self, i: usize) -> Option<String> {
        match self.values.get(i)?.as_ref()? {
            Found::Str(s) if !s.is_empty() => Some(s.clone()),
            Found::Number(n) => Some(n.clone()),
            Found::Object(v) => v.clone(),
            Found::Str(_) => None,
        }
    }

    /// The first of these pointers that has text.
    pub fn first(&self, pointers: &[usize]) -> Option<String> {
        pointers.iter().find_map(|&i| self.text(i))
    }

    /// The string at the `i`th pointer, empty or not (`Value::as_str`).
    pub fn str(&self, i: usize) -> Option<&str> {
        match self.values.get(i)?.as_ref()? {
            Found::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl Fields {
    /// Panics on a pointer that is a prefix of another: the kinds' pointers are constants.
    pub fn new(pointers: &[&str]) -> Self {
        let mut root = Node::default();
        for (i, p) in pointers.iter().enumerate() {
            let mut node = &mut root;
            for part in p.split('/').skip(1) {
                assert!(node.leaf.is_none(), "pointer `{p}` extends another");
                node.below.push(i);
                let at = match node.children.iter().position(|(k, _)| k == part) {
                    Some(at) => at,
                    None => {
                        node.children.push((part.to_string(), Node::default()));
                        node.children.len() - 1
                    }
                };
                node = &mut node.children[at].1;
            }
            assert!(
                node.children.is_empty(),
                "pointer `{p}` is a prefix of another"
            );
            node.leaf = Some(i);
            node.below.push(i);
        }
        Fields {
            root,
            len: pointers.len(),
        }
    }

    /// Walks `body`, which must be a JSON object.
    pub fn pick(&self, body: &[u8]) -> Result<Picked, String> {
        // Text known to be UTF-8 is read without checking each string again; other bytes fail
        // in the walk with the error a `Value` parse gives.
        match std::str::from_utf8(body) {
            Ok(text) => self.walk(serde_json::Deserializer::from_str(text)),
            Err(_) => self.walk(serde_json::Deserializer::from_slice(body)),
        }
    }

    fn walk<'de, R: serde_json::de::Read<'de>>(
        &self,
        mut de: serde_json::Deserializer<R>,
    ) -> Result<Picked, String> {
        let mut out = Picked {
            values: vec![None; self.len],
            nul: false,
        };
        let walk = Walk {
            at: At::Path(&self.root),
            out: &mut out,
        };
        let is_object = walk
            .deserialize(&mut de)
            .and_then(|o| de.end().map(|()| o))
            .map_err(|e| format!("body is not valid JSON: {e}"))?;
        if !is_object {
            return Err("body must be a JSON object".into());
        }
        Ok(out)
    }
}

/// Where one value of the walk sits among the wanted pointers.
#[derive(Clone, Copy)]
enum At<'a> {
    /// No pointer goes through it: walked only for syntax and NULs.
    Skip,
    /// Pointers go through it.
    Path(&'a Node),
    /// Pointer `i` ends here: a string or number is its text, an object's `value` may be.
    Leaf(usize),
    /// The `value` inside the object at pointer `i`.
    Value(usize),
}

impl<'a> At<'a> {
    fn child(self, key: &str) -> At<'a> {
        match self {
            At::Path(n) => match n.children.iter().find(|(k, _)| k == key) {
                Some((_, c)) => c.leaf.map_or(At::Path(c), At::Leaf),
                None => At::Skip,
            },
            At::Leaf(i) if key == "value" => At::Value(i),
            _ => At::Skip,
        }
    }
}

/// One value of the walk; returns whether it was an object.
struct Walk<'a, 'o> {
    at: At<'a>,
    out: &'o mut Picked,
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Walk<'a, '_> {
    fn found(&mut self, found: impl FnOnce() -> Found) {
        match self.at {
            At::Leaf(i) => self.out.values[i] = Some(found()),
            At::Value(i) => {
                let text = match found() {
                    Found::Str(s) if !s.is_empty() => Some(s),
                    Found::Number(n) => Some(n),
                    _ => None,
                };
                self.out.values[i] = Some(Found::Object(text));
            }
            At::Path(_) | At::Skip => {}
        }
    }

    /// Enters the child at `key`, clearing what an earlier duplicate of it set.
    fn enter(&mut self, key: &str) -> Walk<'a, '_> {
        let at = self.at.child(key);
        match at {
            At::Path(n) => n.below.iter().for_each(|&i| self.out.values[i] = None),
            At::Leaf(i) => self.out.values[i] = None,
            At::Value(i) => self.out.values[i] = Some(Found::Object(None)),
            At::Skip => {}
        }
        Walk { at, out: self.out }
    }
}

impl<'de> Visitor<'de> for Walk<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_u64<E>(mut self, v: u64) -> Result<bool, E> {
        self.found(|| Found::Number(serde_json::Number::from(v).to_string()));
        Ok(false)
    }

    fn visit_i64<E>(mut self, v: i64) -> Result<bool, E> {
        self.found(|| Found::Number(serde_json::Number::from(v).to_string()));
        Ok(false)
    }

    fn visit_f64<E>(mut self, v: f64) -> Result<bool, E> {
        if let Some(n) = serde_json::Number::from_f64(v) {
            self.found(|| Found::Number(n.to_string()));
        }
        Ok(false)
    }

    fn visit_str<E>(mut self, v: &str) -> Result<bool, E> {
        self.out.nul |= v.contains('\0');
        self.found(|| Found::Str(v.to_string()));
        Ok(false)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<bool, A::Error> {
        // Only a path goes on into an array; at a leaf an array has no text.
        let mut i = 0usize;
        loop {
            let key = match self.at {
                At::Path(_) => i.to_string(),
                _ => String::new(),
            };
            let walk = match self.at {
                At::Path(_) => self.enter(&key),
                _ => Walk {
                    at: At::Skip,
                    out: self.out,
                },
            };
            if seq.next_element_seed(walk)?.is_none() {
                return Ok(false);
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<bool, A::Error> {
        match self.at {
            At::Leaf(i) => self.out.values[i] = Some(Found::Object(None)),
            // An object under `value` has no text (the slot says so already).
            At::Value(_) => self.at = At::Skip,
            At::Path(_) | At::Skip => {}
        }
        while let Some(key) = map.next_key_seed(Key)? {
            self.out.nul |= key.contains('\0');
            map.next_value_seed(self.enter(&key))?;
        }
        Ok(true)
    }
}

/// An object key, borrowed from the body unless it has escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
}
