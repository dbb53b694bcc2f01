//! uWSGI's RPC packets (`modifier1 = 173`), as uWSGI 2.0.21's rpc plugin and `uwsgi_do_rpc`
//! write and read them (SPEC §10.2; `tests/golden/rpc/rpc_vectors.json`).
//!
//! Request: header `173, pktsize, modifier2`, then an array of `u16le len, bytes` items: the
//! function name, then the arguments. The server skips zero-length items (so an empty argument
//! never arrives), wants at least 3 bytes wherever an item starts, and refuses an item that runs
//! past the block. Reply for `modifier2 = 0`: header `173, len, 0` and the value when it fits in
//! 16 bits, else header `173, len(dict), 5`, a vars block `{CONTENT_LENGTH: "<decimal>"}` and the
//! value; for `modifier2 = 1` the value alone. No reply at all (the server closes) means "no
//! result": unknown function, empty or non-bytes result, a handler that raised.
//!
//! Invariants: decoding never panics and never allocates more than its input; every request
//! this module encodes decodes to the same name and arguments (empty arguments aside, which the
//! encoder refuses because the server would drop them).

use crate::proto::packet::{self, HEADER_LEN, Header};

/// `modifier1` of an RPC request and of its framed reply.
pub const RPC_MODIFIER1: u8 = 173;
/// `modifier2` of a request that wants a framed reply (header + value).
pub const REPLY_FRAMED: u8 = 0;
/// `modifier2` of a request that wants the raw value, delimited by the server's close.
pub const REPLY_RAW: u8 = 1;
/// `modifier2` of a reply whose value follows a `CONTENT_LENGTH` vars block (over 65535 bytes).
pub const REPLY_DICT: u8 = 5;
/// Longest function name: uWSGI keeps names in 256-byte slots, NUL included.
pub const MAX_NAME_LEN: usize = 255;
/// Most arguments a call carries (uWSGI counts them in a `u8`).
pub const MAX_ARGS: usize = 255;
/// Largest array a request carries (its `pktsize` is 16 bits).
pub const MAX_REQUEST_BLOCK: usize = u16::MAX as usize;
/// Key of the reply dict that gives the length of a long value.
pub const CONTENT_LENGTH: &[u8] = b"CONTENT_LENGTH";

/// Why an RPC packet could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    #[error("rpc function name cannot be empty")]
    EmptyName,
    #[error("rpc function name is {len} bytes, the limit is 255")]
    NameTooLong { len: usize },
    #[error("rpc call has {count} arguments, the limit is 255")]
    TooManyArgs { count: usize },
    #[error("rpc argument {index} is empty: the uwsgi protocol drops empty items")]
    EmptyArg { index: usize },
    #[error("rpc request is {size} bytes of name and arguments, the limit is 65535")]
    RequestTooLarge { size: usize },
    #[error("packet too short: {len} bytes, a header needs 4")]
    ShortHeader { len: usize },
    #[error("modifier1 {modifier1} is not an rpc packet (173)")]
    NotRpc { modifier1: u8 },
    #[error("packet truncated: header says {expected} bytes, {got} present")]
    Truncated { expected: usize, got: usize },
    #[error("invalid uwsgi array at offset {offset}")]
    BadArray { offset: usize },
    #[error("rpc request names no function")]
    NoName,
    #[error("rpc request has more than 256 items (a name and 255 arguments)")]
    TooManyItems,
    #[error("rpc reply dict is malformed or has no CONTENT_LENGTH")]
    BadReplyDict,
}

/// A decoded request. Borrowing keeps the server's parse allocation-free until dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// The reply format asked for ([`REPLY_FRAMED`], [`REPLY_RAW`], or another value).
    pub modifier2: u8,
    /// The function name as sent.
    pub name: &'a [u8],
    /// The arguments (never empty items: the server skips those).
    pub args: Vec<&'a [u8]>,
}

/// Check a call's name and arguments against uWSGI's limits; returns the array's size.
pub fn request_size<A: AsRef<[u8]>>(name: &[u8], args: &[A]) -> Result<usize, RpcError> {
    if name.is_empty() {
        return Err(RpcError::EmptyName);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(RpcError::NameTooLong { len: name.len() });
    }
    if args.len() > MAX_ARGS {
        return Err(RpcError::TooManyArgs { count: args.len() });
    }
    let mut size = 2 + name.len();
    for (index, a) in args.iter().enumerate() {
        let a = a.as_ref();
        if a.is_empty() {
            return Err(RpcError::EmptyArg { index });
        }
        size = size.saturating_add(2 + a.len());
    }
    if size > MAX_REQUEST_BLOCK {
        return Err(RpcError::RequestTooLarge { size });
    }
    Ok(size)
}

/// Encode a request for `name(*args)` asking for reply format `modifier2`.
pub fn encode_request<A: AsRef<[u8]>>(
    name: &[u8],
    args: &[A],
    modifier2: u8,
) -> Result<Vec<u8>, RpcError> {
    let size = request_size(name, args)?;
    let mut out = Vec::with_capacity(HEADER_LEN + size);
    out.extend_from_slice(
        &Header {
            modifier1: RPC_MODIFIER1,
            size: size as u16,
            modifier2,
        }
        .to_bytes(),
    );
    for item in std::iter::once(name).chain(args.iter().map(AsRef::as_ref)) {
        out.extend_from_slice(&(item.len() as u16).to_le_bytes());
        out.extend_from_slice(item);
    }
    Ok(out)
}

/// Parse an array block as uWSGI's server does: zero-length items skipped, at least 3 bytes
/// where an item starts, no item past the end. At most `max` items; more is an error here
/// (uWSGI ignores the rest, which would drop arguments without a word).
pub fn parse_array(block: &[u8], max: usize) -> Result<Vec<&[u8]>, RpcError> {
    let mut items = Vec::new();
    let mut pos = 0usize;
    while pos < block.len() {
        if block.len() - pos < 3 {
            return Err(RpcError::BadArray { offset: pos });
        }
        let len = u16::from_le_bytes([block[pos], block[pos + 1]]) as usize;
        pos += 2;
        if len == 0 {
            continue;
        }
        let Some(item) = block.get(pos..pos + len) else {
            return Err(RpcError::BadArray { offset: pos - 2 });
        };
        if items.len() == max {
            return Err(RpcError::TooManyItems);
        }
        items.push(item);
        pos += len;
    }
    Ok(items)
}

/// Decode one whole request packet (header and exactly `pktsize` bytes).
pub fn decode_request(packet: &[u8]) -> Result<Request<'_>, RpcError> {
    let header = Header::parse(packet).ok_or(RpcError::ShortHeader { len: packet.len() })?;
    if header.modifier1 != RPC_MODIFIER1 {
        return Err(RpcError::NotRpc {
            modifier1: header.modifier1,
        });
    }
    let block = &packet[HEADER_LEN..];
    if block.len() != header.size as usize {
        return Err(RpcError::Truncated {
            expected: header.size as usize,
            got: block.len(),
        });
    }
    let mut items = parse_array(block, MAX_ARGS + 1)?;
    if items.is_empty() {
        return Err(RpcError::NoName);
    }
    let name = items.remove(0);
    Ok(Request {
        modifier2: header.modifier2,
        name,
        args: items,
    })
}

/// The reply for `value` (not empty: an empty result gets no reply) to a request that asked
/// for `modifier2`: framed for 0 (with the `CONTENT_LENGTH` dict past 65535 bytes), the raw
/// value otherwise, as uWSGI's rpc plugin answers.
pub fn encode_reply(value: &[u8], modifier2: u8) -> Vec<u8> {
    if modifier2 != REPLY_FRAMED {
        return value.to_vec();
    }
    let mut out;
    if value.len() <= u16::MAX as usize {
        out = Vec::with_capacity(HEADER_LEN + value.len());
        out.extend_from_slice(&reply_header(value.len() as u16, REPLY_FRAMED));
    } else {
        let len = value.len().to_string();
        let dict = [(CONTENT_LENGTH, len.as_bytes())];
        let size = 4 + CONTENT_LENGTH.len() + len.len();
        out = Vec::with_capacity(HEADER_LEN + size + value.len());
        out.extend_from_slice(&reply_header(size as u16, REPLY_DICT));
        packet::encode_vars_unchecked(&dict, &mut out);
    }
    out.extend_from_slice(value);
    out
}

fn reply_header(size: u16, modifier2: u8) -> [u8; HEADER_LEN] {
    Header {
        modifier1: RPC_MODIFIER1,
        size,
        modifier2,
    }
    .to_bytes()
}

/// What a client reads after a framed reply's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyHead {
    /// The value follows: this many bytes.
    Value(usize),
    /// A vars block of this many bytes follows, whose `CONTENT_LENGTH` gives the value's length.
    Dict(usize),
}

/// Interpret a reply header as uWSGI's client does (`modifier1` is not checked; it is not
/// either; `modifier2 = 5` announces the dict).
pub fn reply_head(header: Header) -> ReplyHead {
    if header.modifier2 == REPLY_DICT {
        ReplyHead::Dict(header.size as usize)
    } else {
        ReplyHead::Value(header.size as usize)
    }
}

/// The value length a reply dict announces.
pub fn content_length(dict: &[u8]) -> Result<usize, RpcError> {
    let vars = packet::decode_vars(dict, HEADER_LEN).map_err(|_| RpcError::BadReplyDict)?;
    let v = packet::lookup(&vars, CONTENT_LENGTH).ok_or(RpcError::BadReplyDict)?;
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(RpcError::BadReplyDict);
    }
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(RpcError::BadReplyDict)
}

/// Decode a whole framed reply (what a client read up to the server's close). `Ok(None)`: the
/// server sent nothing (no result).
pub fn decode_reply(data: &[u8]) -> Result<Option<Vec<u8>>, RpcError> {
    if data.is_empty() {
        return Ok(None);
    }
    let header = Header::parse(data).ok_or(RpcError::ShortHeader { len: data.len() })?;
    let rest = &data[HEADER_LEN..];
    let value = match reply_head(header) {
        ReplyHead::Value(n) => rest.get(..n).ok_or(RpcError::Truncated {
            expected: n,
            got: rest.len(),
        })?,
        ReplyHead::Dict(n) => {
            let dict = rest.get(..n).ok_or(RpcError::Truncated {
                expected: n,
                got: rest.len(),
            })?;
            let len = content_length(dict)?;
            rest[n..].get(..len).ok_or(RpcError::Truncated {
                expected: len,
                got: rest.len() - n,
            })?
        }
    };
    Ok((!value.is_empty()).then(|| value.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn golden_requests() {
        // tests/golden/rpc/rpc_vectors.json, written by real uWSGI's peers.
        let two = hex("ad0e0000050068656c6c6f01006102006263");
        assert_eq!(
            encode_request(b"hello", &[b"a".as_slice(), b"bc"], 0).unwrap(),
            two
        );
        let r = decode_request(&two).unwrap();
        assert_eq!((r.name, r.args), (&b"hello"[..], vec![&b"a"[..], b"bc"]));
        let none: [&[u8]; 0] = [];
        assert_eq!(
            encode_request(b"hello", &none, 0).unwrap(),
            hex("ad070000050068656c6c6f")
        );
        assert_eq!(
            encode_request(b"hello", &[b"x"], 1).unwrap(),
            hex("ad0a0001050068656c6c6f010078")
        );
        // An empty item in the middle is skipped by the server.
        let with_empty = hex("ad0f00000500636f756e740100610000010062");
        let r = decode_request(&with_empty).unwrap();
        assert_eq!(r.args, vec![&b"a"[..], b"b"]);
    }

    #[test]
    fn golden_replies() {
        assert_eq!(
            encode_reply(b"hello:a,bc", 0),
            hex("ad0a000068656c6c6f3a612c6263")
        );
        assert_eq!(encode_reply(b"hello:x", 1), b"hello:x");
        let big = vec![b'B'; 70000];
        let r = encode_reply(&big, 0);
        assert_eq!(r.len(), 70027);
        assert!(r.starts_with(&hex(
            "ad1700050e00434f4e54454e545f4c454e4754480500373030303042"
        )));
        assert_eq!(decode_reply(&r).unwrap(), Some(big));
        assert_eq!(decode_reply(b"").unwrap(), None);
    }

    #[test]
    fn limits() {
        let none: [&[u8]; 0] = [];
        assert_eq!(encode_request(b"", &none, 0), Err(RpcError::EmptyName));
        assert_eq!(
            encode_request(&[b'n'; 256], &none, 0),
            Err(RpcError::NameTooLong { len: 256 })
        );
        assert!(encode_request(&[b'n'; 255], &none, 0).is_ok());
        let many = vec![b"a"; 256];
        assert_eq!(
            encode_request(b"f", &many, 0),
            Err(RpcError::TooManyArgs { count: 256 })
        );
        let most = vec![b"a"; 255];
        let p = encode_request(b"f", &most, 0).unwrap();
        assert_eq!(decode_request(&p).unwrap().args.len(), 255);
        // The largest request: 2 + 1 (name) + 2 + 65530.
        let arg = vec![0u8; 65530];
        let p = encode_request(b"f", &[&arg], 0).unwrap();
        assert_eq!(p.len(), 4 + 65535);
        assert_eq!(decode_request(&p).unwrap().args, vec![&arg[..]]);
        let arg = vec![0u8; 65531];
        assert_eq!(
            encode_request(b"f", &[&arg], 0),
            Err(RpcError::RequestTooLarge { size: 65536 })
        );
        assert_eq!(
            encode_request(b"f", &[b"a".as_slice(), b""], 0),
            Err(RpcError::EmptyArg { index: 1 })
        );
    }

    #[test]
    fn malformed() {
        assert_eq!(
            decode_request(b"\xad\x00"),
            Err(RpcError::ShortHeader { len: 2 })
        );
        assert_eq!(
            decode_request(b"\x00\x00\x00\x00"),
            Err(RpcError::NotRpc { modifier1: 0 })
        );
        assert_eq!(decode_request(b"\xad\x00\x00\x00"), Err(RpcError::NoName));
        assert_eq!(
            decode_request(b"\xad\x05\x00\x00\x01\x00a"),
            Err(RpcError::Truncated {
                expected: 5,
                got: 3
            })
        );
        // A trailing empty item (2 bytes left) is invalid for uWSGI's parser too.
        assert_eq!(
            decode_request(b"\xad\x05\x00\x00\x01\x00a\x00\x00"),
            Err(RpcError::BadArray { offset: 3 })
        );
        assert_eq!(
            decode_request(b"\xad\x04\x00\x00\x05\x00ab"),
            Err(RpcError::BadArray { offset: 0 })
        );
        // Only empty items: no name.
        assert_eq!(
            decode_request(b"\xad\x03\x00\x00\x00\x00a"),
            Err(RpcError::BadArray { offset: 2 })
        );
        assert_eq!(
            content_length(b"\x01\x00a\x01\x00b"),
            Err(RpcError::BadReplyDict)
        );
    }

    fn item() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 1..64)
    }

    proptest! {
        #[test]
        fn request_roundtrip(name in item(), args in proptest::collection::vec(item(), 0..20),
                             m2 in any::<u8>()) {
            let p = encode_request(&name, &args, m2).unwrap();
            let r = decode_request(&p).unwrap();
            prop_assert_eq!(r.modifier2, m2);
            prop_assert_eq!(r.name, &name[..]);
            let got: Vec<Vec<u8>> = r.args.iter().map(|a| a.to_vec()).collect();
            prop_assert_eq!(got, args);
        }

        #[test]
        fn request_truncation_is_an_error(name in item(), args in proptest::collection::vec(item(), 0..8),
                                          cut in any::<prop::sample::Index>()) {
            let p = encode_request(&name, &args, 0).unwrap();
            let cut = cut.index(p.len());
            prop_assert!(decode_request(&p[..cut]).is_err());
        }

        #[test]
        fn reply_roundtrip(value in proptest::collection::vec(any::<u8>(), 1..300), big in any::<bool>()) {
            let value = if big { value.repeat(70000 / value.len() + 1) } else { value };
            let r = encode_reply(&value, 0);
            prop_assert_eq!(decode_reply(&r).unwrap(), Some(value.clone()));
            for cut in [1, 3, r.len() - 1] {
                prop_assert!(decode_reply(&r[..cut]).is_err());
            }
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_request(&data);
            let _ = decode_reply(&data);
            let _ = parse_array(&data, 256);
            let mut d = data.clone();
            if d.len() >= 4 {
                d[0] = RPC_MODIFIER1;
                let n = (d.len() - 4) as u16;
                d[1..3].copy_from_slice(&n.to_le_bytes());
                if let Ok(r) = decode_request(&d) {
                    // What decodes re-encodes to a packet that decodes the same.
                    if let Ok(again) = encode_request(r.name, &r.args, r.modifier2) {
                        prop_assert_eq!(decode_request(&again).unwrap(), r);
                    }
                }
            }
        }
    }
}
