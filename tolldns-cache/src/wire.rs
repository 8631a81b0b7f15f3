//! Minimal, non-allocating walking of DNS wire messages (RFC 1035 §4.1).
//!
//! Used on the query side (building a [`CacheKey`](crate::CacheKey) without a full parse) and
//! at insert time (locating each record's TTL field). Every read is bounds-checked and returns
//! `None` on truncated or malformed input.

use core::ops::Range;

/// Length of the fixed DNS header.
pub(crate) const HEADER_LEN: usize = 12;
/// Longest name in wire form (RFC 1035 §3.1).
pub(crate) const MAX_NAME_LEN: usize = 255;
/// Record type of the EDNS(0) pseudo-record (RFC 6891).
pub(crate) const TYPE_OPT: u16 = 41;
/// Record type SOA.
pub(crate) const TYPE_SOA: u16 = 6;
/// Query type ANY (`*`).
pub(crate) const TYPE_ANY: u16 = 255;

/// Header flag: this message is a response.
pub(crate) const FLAG_QR: u16 = 0x8000;
/// Header flag: the message was truncated.
pub(crate) const FLAG_TC: u16 = 0x0200;
/// Header flag: checking disabled (RFC 4035).
pub(crate) const FLAG_CD: u16 = 0x0010;
/// Mask of the OPCODE field.
pub(crate) const OPCODE_MASK: u16 = 0x7800;

pub(crate) fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
}

pub(crate) fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Some(u32::from_be_bytes(a))
}

/// The fixed header fields this crate uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) id: u16,
    pub(crate) flags: u16,
    pub(crate) qdcount: u16,
    pub(crate) ancount: u16,
    pub(crate) nscount: u16,
    pub(crate) arcount: u16,
}

impl Header {
    pub(crate) fn parse(b: &[u8]) -> Option<Self> {
        Some(Self {
            id: read_u16(b, 0)?,
            flags: read_u16(b, 2)?,
            qdcount: read_u16(b, 4)?,
            ancount: read_u16(b, 6)?,
            nscount: read_u16(b, 8)?,
            arcount: read_u16(b, 10)?,
        })
    }

    pub(crate) fn opcode(&self) -> u8 {
        // Four bits after the shift: always fits.
        ((self.flags & OPCODE_MASK) >> 11) as u8
    }
}

/// Skips a name that may end in a compression pointer; returns the offset just after it.
pub(crate) fn skip_name(b: &[u8], at: usize) -> Option<usize> {
    let mut pos = at;
    let mut total = 0usize;
    loop {
        let len = *b.get(pos)?;
        match len & 0xC0 {
            0x00 if len == 0 => return pos.checked_add(1),
            0x00 => {
                total = total.checked_add(usize::from(len) + 1)?;
                if total >= MAX_NAME_LEN {
                    return None;
                }
                pos = pos.checked_add(usize::from(len) + 1)?;
            }
            0xC0 => {
                // The second pointer byte must exist.
                b.get(pos.checked_add(1)?)?;
                return pos.checked_add(2);
            }
            _ => return None,
        }
    }
}

/// Why an uncompressed name could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameFault {
    /// The message ends inside the name.
    Truncated,
    /// A compression pointer where only a plain name is allowed.
    Compressed,
    /// A reserved label type, or a name longer than 255 octets.
    Invalid,
}

/// Reads an uncompressed name at `at` into `out`, lowercasing ASCII letters.
///
/// Returns the offset just after the name and the name's wire length.
pub(crate) fn read_plain_name(
    b: &[u8],
    at: usize,
    out: &mut [u8; MAX_NAME_LEN],
) -> Result<(usize, usize), NameFault> {
    let mut pos = at;
    let mut n = 0usize;
    loop {
        let len = *b.get(pos).ok_or(NameFault::Truncated)?;
        match len & 0xC0 {
            0x00 => {
                let seg_len = usize::from(len) + 1;
                let seg = b.get(pos..pos + seg_len).ok_or(NameFault::Truncated)?;
                let dst = out.get_mut(n..n + seg_len).ok_or(NameFault::Invalid)?;
                dst.copy_from_slice(seg);
                dst.make_ascii_lowercase();
                n += seg_len;
                pos += seg_len;
                if len == 0 {
                    return Ok((pos, n));
                }
            }
            0xC0 => return Err(NameFault::Compressed),
            _ => return Err(NameFault::Invalid),
        }
    }
}

/// Where a resource record's fields sit in the message.
#[derive(Debug, Clone)]
pub(crate) struct RecordInfo {
    pub(crate) rtype: u16,
    pub(crate) ttl_offset: usize,
    pub(crate) ttl: u32,
    pub(crate) rdata: Range<usize>,
}

/// Reads the resource record at `at`; returns it and the offset of the next one.
pub(crate) fn read_record(b: &[u8], at: usize) -> Option<(RecordInfo, usize)> {
    let after_name = skip_name(b, at)?;
    let rtype = read_u16(b, after_name)?;
    let ttl_offset = after_name.checked_add(4)?;
    let ttl = read_u32(b, ttl_offset)?;
    let rdlen = usize::from(read_u16(b, ttl_offset.checked_add(4)?)?);
    let start = ttl_offset.checked_add(6)?;
    let end = start.checked_add(rdlen)?;
    if end > b.len() {
        return None;
    }
    Some((
        RecordInfo {
            rtype,
            ttl_offset,
            ttl,
            rdata: start..end,
        },
        end,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_name_handles_labels_pointers_and_faults() {
        let b = [3, b'w', b'w', b'w', 0, 0xC0, 0x00, 0x40];
        assert_eq!(skip_name(&b, 0), Some(5));
        assert_eq!(skip_name(&b, 5), Some(7));
        assert_eq!(skip_name(&b, 7), None, "label type 0x40 is reserved");
        assert_eq!(skip_name(&b[..3], 0), None, "truncated");
        assert_eq!(skip_name(&[0xC0], 0), None, "half a pointer");
    }

    #[test]
    fn read_plain_name_lowercases_and_rejects_pointers() {
        let mut out = [0u8; MAX_NAME_LEN];
        let b = [2, b'A', b'b', 1, b'C', 0, 9];
        assert_eq!(read_plain_name(&b, 0, &mut out), Ok((6, 6)));
        assert_eq!(&out[..6], &[2, b'a', b'b', 1, b'c', 0]);
        assert_eq!(
            read_plain_name(&[0xC0, 0], 0, &mut out),
            Err(NameFault::Compressed)
        );
        assert_eq!(
            read_plain_name(&[3, b'a'], 0, &mut out),
            Err(NameFault::Truncated)
        );
        // 5 labels of 63 octets: 320 octets, over the 255 limit.
        let mut long = Vec::new();
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'x'; 63]);
        }
        long.push(0);
        assert_eq!(read_plain_name(&long, 0, &mut out), Err(NameFault::Invalid));
    }

    #[test]
    fn read_record_finds_ttl_and_rdata() {
        // name = root, type A, class IN, ttl 300, rdlen 4, 192.0.2.1
        let b = [0, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 1];
        let (rr, next) = read_record(&b, 0).expect("well-formed record");
        assert_eq!(rr.rtype, 1);
        assert_eq!(rr.ttl_offset, 5);
        assert_eq!(rr.ttl, 300);
        assert_eq!(rr.rdata, 11..15);
        assert_eq!(next, 15);
        assert!(
            read_record(&b[..14], 0).is_none(),
            "rdata runs past the end"
        );
    }
}
