//! Erlang terms as the Python side sees them, and back (uWSGI's `pyerl` mapping carried over to
//! Python 3: its Python 2 `str` was bytes, its `unicode` an atom).
//!
//! Invariants:
//! - decoding never loses data silently: a term without a Python form (port, fun, bitstring,
//!   improper list) is an [`Error::Unsupported`] naming it, never a `None` (uWSGI skipped it);
//! - `Value -> Term -> bytes -> Term -> Value` is the identity for every value [`encode`] accepts
//!   (property-tested below), except that Erlang cannot tell a binary sent as a string from one
//!   sent as a binary: both arrive as [`Value::Bytes`].

use std::collections::HashMap;

use erl_dist::term::{
    Atom, BigInteger, Binary, FixInteger, Float, List, Map, Pid, Reference, Term, Tuple,
};
use num_bigint::BigInt;

/// The largest atom Erlang accepts, in characters.
pub const MAX_ATOM_CHARS: usize = 255;

/// A term with a Python form.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Any integer (Python `int`).
    Int(BigInt),
    /// A finite float (Python `float`).
    Float(f64),
    /// An atom (Python `str`; Python `True`/`False` are sent as the atoms `true`/`false`).
    Atom(String),
    /// A binary, or an Erlang string (a list of bytes; Python `bytes`).
    Bytes(Vec<u8>),
    /// A tuple (Python `tuple`).
    Tuple(Vec<Value>),
    /// A proper list (Python `list`; Python `None` is sent as `[]`).
    List(Vec<Value>),
    /// A map (Python `dict`), in no particular order.
    Map(Vec<(Value, Value)>),
    /// A process id (Python `ErlangPid`).
    Pid(Pid),
    /// A reference (Python `ErlangRef`).
    Ref(Reference),
}

/// Why a term or a value cannot cross.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// An Erlang term with no Python form.
    #[error("an Erlang {0} has no Python form")]
    Unsupported(&'static str),
    /// An atom over 255 characters.
    #[error("an atom is at most 255 characters, this one has {0}")]
    AtomTooLong(usize),
    /// NaN or an infinity: Erlang floats are finite.
    #[error("Erlang floats are finite, got {0}")]
    NotFinite(f64),
    /// Bytes that are not a term in the external term format.
    #[error("not an Erlang external term: {0}")]
    Decode(String),
    /// The encoder failed (a value the format cannot hold).
    #[error("cannot encode the term: {0}")]
    Encode(String),
}

/// Converts a decoded term into a [`Value`].
pub fn to_value(term: Term) -> Result<Value, Error> {
    Ok(match term {
        Term::Atom(a) => Value::Atom(a.name),
        Term::FixInteger(i) => Value::Int(BigInt::from(i.value)),
        Term::BigInteger(i) => Value::Int(i.value),
        Term::Float(f) => Value::Float(f.value),
        Term::Pid(p) => Value::Pid(p),
        Term::Reference(r) => Value::Ref(*r),
        Term::Binary(b) => Value::Bytes(b.bytes),
        Term::ByteList(b) => Value::Bytes(b.bytes),
        Term::List(l) => Value::List(
            l.elements
                .into_iter()
                .map(to_value)
                .collect::<Result<_, _>>()?,
        ),
        Term::Tuple(t) => Value::Tuple(
            t.elements
                .into_iter()
                .map(to_value)
                .collect::<Result<_, _>>()?,
        ),
        Term::Map(m) => Value::Map(
            m.map
                .into_iter()
                .map(|(k, v)| Ok((to_value(k)?, to_value(v)?)))
                .collect::<Result<_, Error>>()?,
        ),
        Term::Port(_) => return Err(Error::Unsupported("port")),
        Term::ExternalFun(_) | Term::InternalFun(_) => return Err(Error::Unsupported("fun")),
        Term::BitBinary(_) => return Err(Error::Unsupported("bitstring")),
        Term::ImproperList(_) => return Err(Error::Unsupported("improper list")),
    })
}

/// Converts a [`Value`] into a term, checking what Erlang would refuse.
pub fn to_term(value: &Value) -> Result<Term, Error> {
    Ok(match value {
        Value::Int(i) => match i32::try_from(i) {
            Ok(small) => Term::FixInteger(FixInteger::from(small)),
            Err(_) => Term::BigInteger(BigInteger { value: i.clone() }),
        },
        Value::Float(f) => {
            if !f.is_finite() {
                return Err(Error::NotFinite(*f));
            }
            Term::Float(Float { value: *f })
        }
        Value::Atom(name) => {
            let chars = name.chars().count();
            if chars > MAX_ATOM_CHARS {
                return Err(Error::AtomTooLong(chars));
            }
            Term::Atom(Atom::from(name.as_str()))
        }
        Value::Bytes(b) => Term::Binary(Binary::from(b.clone())),
        Value::Tuple(items) => Term::Tuple(Tuple::from(
            items.iter().map(to_term).collect::<Result<Vec<_>, _>>()?,
        )),
        Value::List(items) => Term::List(List::from(
            items.iter().map(to_term).collect::<Result<Vec<_>, _>>()?,
        )),
        Value::Map(pairs) => {
            let mut map = HashMap::with_capacity(pairs.len());
            for (k, v) in pairs {
                map.insert(to_term(k)?, to_term(v)?);
            }
            Term::Map(Map::from(map))
        }
        Value::Pid(p) => Term::Pid(p.clone()),
        Value::Ref(r) => Term::Reference(Box::new(r.clone())),
    })
}

/// `term_to_binary(Value)`: the external term format, version byte (131) included.
pub fn encode(value: &Value) -> Result<Vec<u8>, Error> {
    let term = to_term(value)?;
    let mut out = Vec::new();
    term.encode(&mut out)
        .map_err(|e| Error::Encode(e.to_string()))?;
    Ok(out)
}

/// `binary_to_term(Bytes)`: the inverse of [`encode`]; trailing bytes are an error.
pub fn decode(bytes: &[u8]) -> Result<Value, Error> {
    // Sizes first: the decoder trusts declared counts (and would abort the process on one).
    // A compressed term is inflated here (eetf's own inflating left the zlib checksum unread).
    let inflated;
    let bytes = match bytes.split_first() {
        Some((&131, term)) if term.first() == Some(&80) => {
            let mut plain = vec![131];
            plain.extend(super::check::inflate(term).map_err(Error::Decode)?);
            inflated = plain;
            &inflated[..]
        }
        Some((&131, term)) => {
            super::check::term_len(term).map_err(Error::Decode)?;
            bytes
        }
        _ => bytes,
    };
    let mut reader = bytes;
    let term = Term::decode(&mut reader).map_err(|e| Error::Decode(e.to_string()))?;
    if !reader.is_empty() {
        return Err(Error::Decode(format!(
            "{} bytes after the term",
            reader.len()
        )));
    }
    to_value(term)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Terms as `erl` 25 writes them (bytes printed by `term_to_binary/1`).
    #[test]
    fn decodes_what_erlang_writes() {
        // term_to_binary({echo, "hi", <<1,2>>, 7, -300, [a]})
        let bytes = [
            131, 104, 6, 100, 0, 4, 101, 99, 104, 111, 107, 0, 2, 104, 105, 109, 0, 0, 0, 2, 1, 2,
            97, 7, 98, 255, 255, 254, 212, 108, 0, 0, 0, 1, 100, 0, 1, 97, 106,
        ];
        assert_eq!(
            decode(&bytes).unwrap(),
            Value::Tuple(vec![
                Value::Atom("echo".into()),
                Value::Bytes(b"hi".to_vec()),
                Value::Bytes(vec![1, 2]),
                Value::Int(7.into()),
                Value::Int((-300).into()),
                Value::List(vec![Value::Atom("a".into())]),
            ])
        );
        // [] is nil, an empty list (uWSGI gave None)
        assert_eq!(decode(&[131, 106]).unwrap(), Value::List(vec![]));
    }

    #[test]
    fn decodes_a_compressed_term_erlang_wrote() {
        // term_to_binary({lists:seq(1, 60), <<"hello hello hello hello">>}, [compressed])
        let bytes = [
            131, 80, 0, 0, 0, 93, 120, 156, 203, 96, 202, 102, 176, 97, 100, 98, 102, 97, 101, 99,
            231, 224, 228, 226, 230, 225, 229, 227, 23, 16, 20, 18, 22, 17, 21, 19, 151, 144, 148,
            146, 150, 145, 149, 147, 87, 80, 84, 82, 86, 81, 85, 83, 215, 208, 212, 210, 214, 209,
            213, 211, 55, 48, 52, 50, 54, 49, 53, 51, 183, 176, 180, 178, 182, 201, 101, 96, 96,
            16, 207, 72, 205, 201, 201, 87, 192, 32, 1, 51, 196, 17, 108,
        ];
        let v = decode(&bytes).unwrap();
        let Value::Tuple(items) = v else {
            panic!("not a tuple: {v:?}")
        };
        // a list of small integers arrives as an Erlang string, that is bytes
        assert_eq!(items[0], Value::Bytes((1..=60).collect()));
        assert_eq!(items[1], Value::Bytes(b"hello hello hello hello".to_vec()));
        // declaring more than it inflates to, or more than 64 MiB, is an error
        let mut lying = bytes;
        lying[5] = 94;
        assert!(decode(&lying).is_err());
        let mut huge = bytes;
        huge[2] = 0x10;
        assert!(matches!(decode(&huge), Err(Error::Decode(m)) if m.contains("at most")));
    }

    #[test]
    fn a_declared_size_past_the_input_is_an_error_and_deep_nesting_is_bounded() {
        // a list declaring 3,355,805,782 elements: the decoder asked for 100 GB and aborted
        let e = decode(&[131, 108, 0xC8, 0x05, 0x88, 0x56, 106]).unwrap_err();
        assert!(
            matches!(e, Error::Decode(ref m) if m.contains("3355805782 elements")),
            "{e}"
        );
        let nest = |n: usize| {
            let mut b = vec![131];
            b.extend([104, 1].repeat(n));
            b.push(106);
            b
        };
        assert!(decode(&nest(crate::erlang::check::MAX_DEPTH)).is_ok());
        assert!(decode(&nest(crate::erlang::check::MAX_DEPTH + 1)).is_err());
    }

    #[test]
    fn refuses_what_python_cannot_hold() {
        // [a | b]: an improper list
        let bytes = [131, 108, 0, 0, 0, 1, 100, 0, 1, 97, 100, 0, 1, 98];
        assert_eq!(decode(&bytes), Err(Error::Unsupported("improper list")));
        assert_eq!(
            encode(&Value::Atom("x".repeat(256))),
            Err(Error::AtomTooLong(256))
        );
        assert!(matches!(
            encode(&Value::Float(f64::NAN)),
            Err(Error::NotFinite(_))
        ));
        assert!(matches!(decode(&[131, 104]), Err(Error::Decode(_))));
        assert!(matches!(decode(&[131, 106, 0]), Err(Error::Decode(_))));
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(|i| Value::Int(i.into())),
            (0i64..=255).prop_map(|i| Value::Int(i.into())),
            any::<i128>().prop_map(|i| Value::Int(i.into())),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::Float),
            "[a-z_A-Z0-9é]{0,20}".prop_map(Value::Atom),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
            (
                "[a-z]{1,8}@[a-z]{1,8}",
                any::<u32>(),
                any::<u32>(),
                any::<u32>()
            )
                .prop_map(|(node, id, serial, creation)| Value::Pid(Pid::new(
                    node, id, serial, creation
                ))),
            (
                "[a-z]{1,8}@[a-z]{1,8}",
                proptest::collection::vec(any::<u32>(), 1..4),
                any::<u32>()
            )
                .prop_map(|(node, id, creation)| Value::Ref(Reference {
                    node: Atom::from(node),
                    id,
                    creation
                })),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Tuple),
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
                // keys unique by construction: atoms k0..kn
                proptest::collection::vec(inner, 0..5).prop_map(|vs| Value::Map(
                    vs.into_iter()
                        .enumerate()
                        .map(|(i, v)| (Value::Atom(format!("k{i}")), v))
                        .collect()
                )),
            ]
        })
    }

    /// Maps come back in another order: compare them as sorted pairs. A non-empty list of
    /// integers 0-255 is a string to Erlang (its own rule): it comes back as bytes.
    fn canonical(v: Value) -> Value {
        match v {
            Value::Tuple(items) => Value::Tuple(items.into_iter().map(canonical).collect()),
            Value::List(items) => {
                let bytes: Option<Vec<u8>> = items
                    .iter()
                    .map(|x| match x {
                        Value::Int(i) => u8::try_from(i).ok(),
                        _ => None,
                    })
                    .collect();
                match bytes {
                    Some(b) if !b.is_empty() => Value::Bytes(b),
                    _ => Value::List(items.into_iter().map(canonical).collect()),
                }
            }
            Value::Map(pairs) => {
                let mut pairs: Vec<_> = pairs
                    .into_iter()
                    .map(|(k, v)| (canonical(k), canonical(v)))
                    .collect();
                pairs.sort_by_key(|(k, _)| format!("{k:?}"));
                Value::Map(pairs)
            }
            other => other,
        }
    }

    proptest! {
        #[test]
        fn roundtrip(v in value()) {
            let bytes = encode(&v).unwrap();
            prop_assert_eq!(bytes[0], 131);
            prop_assert_eq!(canonical(decode(&bytes).unwrap()), canonical(v));
        }

        #[test]
        fn decoding_garbage_is_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }

        /// Garbage behind the version byte and a container tag: the case that reached the
        /// decoder's allocation one time in ~70 runs of the test above.
        #[test]
        fn garbage_after_a_container_tag_is_an_error_not_an_abort(
            tag in prop::sample::select(vec![104u8, 105, 107, 108, 109, 111, 116, 77, 80, 112, 117]),
            rest in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut bytes = vec![131, tag];
            bytes.extend(rest);
            let _ = decode(&bytes);
        }
    }
}
