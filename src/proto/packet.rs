//! The uwsgi packet, the one codec of the crate: a 4-byte [`Header`] (`modifier1`, `pktsize`
//! u16 little-endian, `modifier2`), then `pktsize` bytes, then (for a spool file) the body.
//!
//! A spool file is `modifier1 = 17`, `modifier2 = 0`, a vars block (repeated `u16le keylen, key,
//! u16le vallen, value`, no count and no terminator) and the body (everything after
//! `4 + pktsize` bytes). RPC (`modifier1 = 173`, [`crate::proto::rpc`]) carries an array of
//! `u16le len, bytes` items instead of vars, and its replies a vars block with
//! `CONTENT_LENGTH` when the value is too long for `pktsize`. Lengths are always little-endian.
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

/// The 4-byte header every uwsgi packet starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Which handler the packet is for (17: spool, 173: RPC, 0: WSGI request...).
    pub modifier1: u8,
    /// Length of the block after the header (vars or array), body excluded.
    pub size: u16,
    /// A per-handler flag (RPC: the reply format).
    pub modifier2: u8,
}

impl Header {
    /// The header's bytes.
    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let [lo, hi] = self.size.to_le_bytes();
        [self.modifier1, lo, hi, self.modifier2]
    }

    /// Read a header from the first 4 bytes of `data` (None when shorter).
    pub fn parse(data: &[u8]) -> Option<Header> {
        match data {
            [m1, lo, hi, m2, ..] => Some(Header {
                modifier1: *m1,
                size: u16::from_le_bytes([*lo, *hi]),
                modifier2: *m2,
            }),
            _ => None,
        }
    }
}

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
    out.extend_from_slice(
        &Header {
            modifier1: SPOOL_MODIFIER1,
            size: size as u16,
            modifier2: 0,
        }
        .to_bytes(),
    );
    encode_vars_unchecked(vars, out);
    out.extend_from_slice(body);
    Ok(())
}

/// Append a vars block whose limits [`vars_size`] already checked.
pub fn encode_vars_unchecked<K: AsRef<[u8]>, V: AsRef<[u8]>>(vars: &[(K, V)], out: &mut Vec<u8>) {
    for (k, v) in vars {
        let (k, v) = (k.as_ref(), v.as_ref());
        out.extend_from_slice(&(k.len() as u16).to_le_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&(v.len() as u16).to_le_bytes());
        out.extend_from_slice(v);
    }
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
    Header::parse(data)
        .map(|h| h.size as usize)
        .ok_or(PacketError::ShortHeader { len: data.len() })
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
    fn header_bytes() {
        let h = Header {
            modifier1: 173,
            size: 0x1234,
            modifier2: 5,
        };
        assert_eq!(h.to_bytes(), [173, 0x34, 0x12, 5]);
        assert_eq!(Header::parse(&[173, 0x34, 0x12, 5, 9]), Some(h));
        assert_eq!(Header::parse(&[173, 0x34, 0x12]), None);
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
