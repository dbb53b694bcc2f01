//! The uwsgi packet as a spool file stores it: a 4-byte header, the vars block, the body.
//!
//! Header: `modifier1 = 17`, `pktsize` (u16 little-endian, the vars block's length only),
//! `modifier2 = 0`. Vars: repeated `u16le keylen, key, u16le vallen, value`, no count and no
//! terminator. Body: everything after `4 + pktsize` bytes. Lengths are always little-endian.
//!
//! uWSGI truncates a value over 65535 bytes to `len & 0xffff` without a word; the encoder here
//! refuses instead ([`PacketError::ValueTooLong`]), so no task is ever stored corrupted.

use std::fmt;

/// `modifier1` of a spool file.
pub const SPOOL_MODIFIER1: u8 = 17;
/// The largest vars block (and so the largest key or value) a packet can carry.
pub const MAX_VARS_SIZE: usize = u16::MAX as usize;
/// Header length in bytes.
pub const HEADER_LEN: usize = 4;

/// One key/value pair as stored: arbitrary bytes on both sides.
pub type Var = (Vec<u8>, Vec<u8>);

/// Why a packet could not be encoded or decoded. Offsets are from the start of the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error(
        "spool file too short: {len} bytes, a header needs 4 (what a writer killed between \
         creating and filling the file leaves)"
    )]
    ShortHeader { len: usize },
    #[error("spool file truncated: header says {pktsize} bytes of vars, only {available} present")]
    TruncatedVars { pktsize: usize, available: usize },
    #[error("malformed vars at offset {offset}: {fault}")]
    Malformed { offset: usize, fault: VarFault },
    #[error("spool vars block is {size} bytes, the limit is 65535: put big values in the body")]
    VarsTooLarge { size: usize },
    #[error("spool key is {len} bytes, the limit is 65535")]
    KeyTooLong { len: usize },
    #[error(
        "spool value of key {key:?} is {len} bytes, the limit is 65535: put big values in the body"
    )]
    ValueTooLong { key: String, len: usize },
    #[error("spool key cannot be empty")]
    EmptyKey,
}

/// What is wrong inside a vars block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarFault {
    /// One or two bytes left where a key length (and at least one key byte) was expected.
    DanglingBytes,
    /// A key of length zero (uWSGI's reader rejects it too).
    EmptyKey,
    /// A key runs past the end of the vars block.
    KeyOverrun,
    /// A value length or the value itself runs past the end of the vars block.
    ValueOverrun,
}

impl fmt::Display for VarFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VarFault::DanglingBytes => "dangling bytes where a key was expected",
            VarFault::EmptyKey => "zero-length key",
            VarFault::KeyOverrun => "key runs past the vars block",
            VarFault::ValueOverrun => "value runs past the vars block",
        })
    }
}

/// A decoded spool file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Packet {
    /// Vars in file order; duplicates are kept as they appear.
    pub vars: Vec<Var>,
    /// The body (possibly empty).
    pub body: Vec<u8>,
}

/// Size of the vars block that `vars` encode to, checking every limit.
pub fn vars_size<K: AsRef<[u8]>, V: AsRef<[u8]>>(vars: &[(K, V)]) -> Result<usize, PacketError> {
    let mut size = 0usize;
    for (k, v) in vars {
        let (k, v) = (k.as_ref(), v.as_ref());
        if k.is_empty() {
            return Err(PacketError::EmptyKey);
        }
        if k.len() > MAX_VARS_SIZE {
            return Err(PacketError::KeyTooLong { len: k.len() });
        }
        if v.len() > MAX_VARS_SIZE {
            return Err(PacketError::ValueTooLong {
                key: String::from_utf8_lossy(k).into_owned(),
                len: v.len(),
            });
        }
        size += 4 + k.len() + v.len();
    }
    if size > MAX_VARS_SIZE {
        return Err(PacketError::VarsTooLarge { size });
    }
    Ok(size)
}

/// Encode vars and body into the bytes of one spool file, appending to `out`.
pub fn encode_into<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    vars: &[(K, V)],
    body: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), PacketError> {
    let size = vars_size(vars)?;
    out.reserve(HEADER_LEN + size + body.len());
    out.push(SPOOL_MODIFIER1);
    out.extend_from_slice(&(size as u16).to_le_bytes());
    out.push(0);
    for (k, v) in vars {
        let (k, v) = (k.as_ref(), v.as_ref());
        out.extend_from_slice(&(k.len() as u16).to_le_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&(v.len() as u16).to_le_bytes());
        out.extend_from_slice(v);
    }
    out.extend_from_slice(body);
    Ok(())
}

/// Encode vars and body into the bytes of one spool file.
pub fn encode<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    vars: &[(K, V)],
    body: &[u8],
) -> Result<Vec<u8>, PacketError> {
    let mut out = Vec::new();
    encode_into(vars, body, &mut out)?;
    Ok(out)
}

/// Read the header: the vars block length. Like uWSGI's reader, the modifiers are not checked.
pub fn decode_header(data: &[u8]) -> Result<usize, PacketError> {
    if data.len() < HEADER_LEN {
        return Err(PacketError::ShortHeader { len: data.len() });
    }
    Ok(u16::from_le_bytes([data[1], data[2]]) as usize)
}

/// Parse a vars block (without header). `base` is its offset in the file, for error messages.
pub fn decode_vars(block: &[u8], base: usize) -> Result<Vec<Var>, PacketError> {
    let mut vars = Vec::new();
    let mut pos = 0usize;
    let fail = |pos: usize, fault| PacketError::Malformed {
        offset: base + pos,
        fault,
    };
    while pos < block.len() {
        // uWSGI's reader wants a key length plus at least one more byte.
        if block.len() - pos < 3 {
            return Err(fail(pos, VarFault::DanglingBytes));
        }
        let klen = u16::from_le_bytes([block[pos], block[pos + 1]]) as usize;
        if klen == 0 {
            return Err(fail(pos, VarFault::EmptyKey));
        }
        let kstart = pos + 2;
        if kstart + klen > block.len() {
            return Err(fail(pos, VarFault::KeyOverrun));
        }
        let vlpos = kstart + klen;
        if vlpos + 2 > block.len() {
            return Err(fail(vlpos, VarFault::ValueOverrun));
        }
        let vlen = u16::from_le_bytes([block[vlpos], block[vlpos + 1]]) as usize;
        let vstart = vlpos + 2;
        if vstart + vlen > block.len() {
            return Err(fail(vlpos, VarFault::ValueOverrun));
        }
        vars.push((
            block[kstart..vlpos].to_vec(),
            block[vstart..vstart + vlen].to_vec(),
        ));
        pos = vstart + vlen;
    }
    Ok(vars)
}

/// Decode a whole spool file.
pub fn decode(data: &[u8]) -> Result<Packet, PacketError> {
    let pktsize = decode_header(data)?;
    let available = data.len() - HEADER_LEN;
    if pktsize > available {
        return Err(PacketError::TruncatedVars { pktsize, available });
    }
    let vars = decode_vars(&data[HEADER_LEN..HEADER_LEN + pktsize], HEADER_LEN)?;
    Ok(Packet {
        vars,
        body: data[HEADER_LEN + pktsize..].to_vec(),
    })
}

/// The value of the last var named `key` (the Python plugin keeps the last of duplicates).
pub fn lookup<'a>(vars: &'a [Var], key: &[u8]) -> Option<&'a [u8]> {
    vars.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_dict_is_four_bytes() {
        let none: [(&[u8], &[u8]); 0] = [];
        assert_eq!(encode(&none, b"").unwrap(), vec![0x11, 0, 0, 0]);
    }

    #[test]
    fn minimal() {
        let bytes = encode(&[(b"a", b"1")], b"").unwrap();
        assert_eq!(bytes, vec![0x11, 6, 0, 0, 1, 0, b'a', 1, 0, b'1']);
        let p = decode(&bytes).unwrap();
        assert_eq!(p.vars, vec![(b"a".to_vec(), b"1".to_vec())]);
        assert!(p.body.is_empty());
    }

    #[test]
    fn exact_limit_and_one_over() {
        let v = vec![b'x'; 65530];
        let ok = encode(&[(b"a".as_slice(), v.as_slice())], b"").unwrap();
        assert_eq!(ok.len(), 65539);
        let v = vec![b'x'; 65531];
        assert_eq!(
            encode(&[(b"a".as_slice(), v.as_slice())], b""),
            Err(PacketError::VarsTooLarge { size: 65536 })
        );
        let v = vec![b'y'; 70000];
        assert!(matches!(
            encode(&[(b"big".as_slice(), v.as_slice())], b""),
            Err(PacketError::ValueTooLong { len: 70000, .. })
        ));
    }

    #[test]
    fn reader_faults() {
        assert_eq!(
            decode(b"\x11\x00"),
            Err(PacketError::ShortHeader { len: 2 })
        );
        assert_eq!(
            decode(b"\x11\x05\x00\x00ab"),
            Err(PacketError::TruncatedVars {
                pktsize: 5,
                available: 2
            })
        );
        // zero-length key
        assert!(matches!(
            decode(b"\x11\x04\x00\x00\x00\x00\x00\x00"),
            Err(PacketError::Malformed {
                offset: 4,
                fault: VarFault::EmptyKey
            })
        ));
        // two dangling bytes
        assert!(matches!(
            decode(b"\x11\x02\x00\x00\x01\x00"),
            Err(PacketError::Malformed {
                fault: VarFault::DanglingBytes,
                ..
            })
        ));
    }

    #[test]
    fn empty_value_and_body() {
        let bytes = encode(&[(b"k", b"")], b"BODY").unwrap();
        let p = decode(&bytes).unwrap();
        assert_eq!(p.vars, vec![(b"k".to_vec(), vec![])]);
        assert_eq!(p.body, b"BODY");
    }

    fn var_strategy() -> impl Strategy<Value = Var> {
        (
            proptest::collection::vec(any::<u8>(), 1..40),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
    }

    proptest! {
        #[test]
        fn roundtrip(vars in proptest::collection::vec(var_strategy(), 0..30),
                     body in proptest::collection::vec(any::<u8>(), 0..500)) {
            let bytes = encode(&vars, &body).unwrap();
            let p = decode(&bytes).unwrap();
            prop_assert_eq!(&p.vars, &vars);
            prop_assert_eq!(&p.body, &body);
            prop_assert_eq!(encode(&p.vars, &p.body).unwrap(), bytes);
        }

        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&data);
        }

        #[test]
        fn decode_header_fuzzed(mut data in proptest::collection::vec(any::<u8>(), 4..200)) {
            data[0] = SPOOL_MODIFIER1;
            data[3] = 0;
            if let Ok(p) = decode(&data) {
                // Whatever decodes re-encodes to the same bytes.
                prop_assert_eq!(encode(&p.vars, &p.body).unwrap(), data);
            }
        }
    }
}
