//! A size check of external-term-format bytes, made before the decoder sees them.
//!
//! The decoder reserves room for as many elements as a tuple, list or map declares, and recurses
//! once per nesting level: 64 bytes declaring a list of three billion elements made it ask for
//! 100 GB and abort the process, and a deep enough nesting would overflow its stack. This walk
//! allocates nothing per element: it refuses a count or length larger than the bytes that follow
//! (every element takes at least one byte), nesting deeper than [`MAX_DEPTH`], a compressed term
//! that inflates past [`MAX_INFLATED`], and tags outside the format.

use std::io::Read;

/// Deepest nesting of tuples, lists, maps and the like that a term may have.
pub const MAX_DEPTH: usize = 512;
/// Largest size a compressed term may inflate to.
pub const MAX_INFLATED: usize = 64 << 20;

/// What is still to be read, innermost last.
enum Pending {
    /// This many terms.
    Terms(u64),
    /// This many raw bytes (after a node term: ids, serials, creations).
    Bytes(usize),
}

/// Checks the term that follows the version byte in `input` and returns how many bytes it takes.
pub fn term_len(input: &[u8]) -> Result<usize, String> {
    if input.first() == Some(&80) {
        return inflate(input).map(|_| input.len());
    }
    let mut at = Cursor { input, pos: 0 };
    let mut pending = vec![Pending::Terms(1)];
    let mut depth = 0usize; // open containers (Terms entries beyond the first)
    while let Some(top) = pending.last_mut() {
        match top {
            Pending::Terms(0) => {
                pending.pop();
                depth = depth.saturating_sub(1);
                continue;
            }
            Pending::Terms(n) => *n -= 1,
            Pending::Bytes(k) => {
                let k = *k;
                pending.pop();
                at.skip(k)?;
                continue;
            }
        }
        let tag = at.u8()?;
        // What the tag opens: `declared` elements (as the tag says), `more` terms after them (a
        // list's tail, a fun's fixed fields, a node) and `after` raw bytes behind those terms.
        // Leaves skip their bytes at once and open nothing.
        let (declared, more, after): (u64, u64, usize) = match tag {
            97 => leaf(&mut at, 1)?,  // small integer
            98 => leaf(&mut at, 4)?,  // integer
            70 => leaf(&mut at, 8)?,  // new float
            99 => leaf(&mut at, 31)?, // old float (text)
            106 => continue,          // nil
            100 | 118 | 107 => {
                // atom, utf-8 atom, string (of bytes)
                let n = at.u16()? as usize;
                leaf(&mut at, n)?
            }
            115 | 119 => {
                let n = at.u8()? as usize;
                leaf(&mut at, n)?
            }
            109 => {
                let n = at.u32()? as usize;
                leaf(&mut at, n)?
            }
            77 => {
                let n = at.u32()? as usize;
                leaf(&mut at, n + 1)? // the bits byte, then the bytes
            }
            110 => {
                let n = at.u8()? as usize;
                leaf(&mut at, n + 1)? // sign, then digits
            }
            111 => {
                let n = at.u32()? as usize;
                leaf(&mut at, n + 1)?
            }
            104 => (u64::from(at.u8()?), 0, 0),
            105 => (u64::from(at.u32()?), 0, 0),
            108 => (u64::from(at.u32()?), 1, 0), // the elements, then the tail
            116 => (2 * u64::from(at.u32()?), 0, 0),
            // a node term, then fixed fields
            101 | 102 => (0, 1, 5), // reference, port
            89 => (0, 1, 8),        // new port
            120 => (0, 1, 12),      // v4 port
            103 => (0, 1, 9),       // pid
            88 => (0, 1, 12),       // new pid
            114 | 90 => {
                // new / newer reference: id count, node, creation (1 or 4 bytes), ids
                let ids = at.u16()? as usize;
                (0, 1, if tag == 114 { 1 } else { 4 } + 4 * ids)
            }
            113 => (0, 3, 0), // export: module, function, arity
            112 => {
                // new fun: size, arity, uniq, index, free count, then 4 terms and the free ones
                at.skip(4 + 1 + 16 + 4)?;
                (u64::from(at.u32()?), 4, 0)
            }
            // old fun: free count, then pid, module, index, uniq and the free ones
            117 => (u64::from(at.u32()?), 4, 0),
            80 => return Err("a compressed term inside a term".to_owned()),
            other => return Err(format!("unknown tag {other}")),
        };
        let count = declared + more;
        if count == 0 {
            continue; // a leaf (or an empty container)
        }
        // Each term takes at least one byte.
        if count > at.left() as u64 {
            return Err(format!(
                "tag {tag} declares {declared} elements, only {} bytes follow",
                at.left()
            ));
        }
        depth += 1;
        if depth > MAX_DEPTH {
            return Err(format!("terms nested deeper than {MAX_DEPTH}"));
        }
        if after > 0 {
            pending.push(Pending::Bytes(after)); // read once the terms above it are
        }
        pending.push(Pending::Terms(count));
    }
    Ok(at.pos)
}

/// Skips a leaf's `n` bytes: it opens nothing.
fn leaf(at: &mut Cursor<'_>, n: usize) -> Result<(u64, u64, usize), String> {
    at.skip(n)?;
    Ok((0, 0, 0))
}

/// The term a compressed term (`input` from its tag 80) inflates to, checked.
pub fn inflate(input: &[u8]) -> Result<Vec<u8>, String> {
    let mut at = Cursor { input, pos: 1 };
    let size = at.u32()? as usize;
    if size > MAX_INFLATED {
        return Err(format!(
            "a compressed term of {size} bytes (at most {MAX_INFLATED})"
        ));
    }
    let mut inflated = Vec::new();
    libflate::zlib::Decoder::new(&input[at.pos..])
        .and_then(|d| d.take(size as u64 + 1).read_to_end(&mut inflated))
        .map_err(|e| format!("compressed term: {e}"))?;
    if inflated.len() != size {
        return Err(format!(
            "a compressed term declared {size} bytes and inflated to {}",
            inflated.len()
        ));
    }
    let used = term_len(&inflated)?;
    if used != size {
        return Err(format!("{} bytes after the compressed term", size - used));
    }
    Ok(inflated)
}

struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn left(&self) -> usize {
        self.input.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if n > self.left() {
            return Err(format!(
                "{n} bytes declared at offset {}, only {} follow",
                self.pos,
                self.left()
            ));
        }
        let s = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn skip(&mut self, n: usize) -> Result<(), String> {
        self.take(n).map(|_| ())
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_declared_count_is_refused_before_any_allocation() {
        // LIST_EXT of 3,355,805,782 elements in 6 bytes: what made the decoder ask for 100 GB
        let e = term_len(&[108, 0xC8, 0x05, 0x88, 0x56, 106]).unwrap_err();
        assert!(e.contains("3355805782 elements"), "{e}");
        assert!(term_len(&[105, 0xFF, 0xFF, 0xFF, 0xFF]).is_err());
        assert!(term_len(&[116, 0x80, 0, 0, 0, 106, 106]).is_err());
        assert!(term_len(&[109, 0xFF, 0xFF, 0xFF, 0xFF, 1]).is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        let ok: Vec<u8> = [104, 1]
            .repeat(MAX_DEPTH)
            .into_iter()
            .chain([106])
            .collect();
        assert_eq!(term_len(&ok).unwrap(), ok.len());
        let deep: Vec<u8> = [104, 1]
            .repeat(MAX_DEPTH + 1)
            .into_iter()
            .chain([106])
            .collect();
        assert!(term_len(&deep).unwrap_err().contains("nested deeper"));
        // a long list of small terms is wide, not deep
        let mut wide = vec![108, 0, 0, 39, 16]; // 10,000 elements
        wide.extend([97, 1].repeat(10_000));
        wide.push(106);
        assert_eq!(term_len(&wide).unwrap(), wide.len());
    }

    #[test]
    fn sizes_of_what_erlang_writes() {
        // {echo, "hi", <<1,2>>, 7, -300, [a]} without its version byte
        let t = [
            104, 6, 100, 0, 4, 101, 99, 104, 111, 107, 0, 2, 104, 105, 109, 0, 0, 0, 2, 1, 2, 97,
            7, 98, 255, 255, 254, 212, 108, 0, 0, 0, 1, 100, 0, 1, 97, 106,
        ];
        assert_eq!(term_len(&t).unwrap(), t.len());
        assert!(term_len(&t[..t.len() - 1]).is_err());
    }
}
