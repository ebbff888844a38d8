//! Just enough DER to find a certificate's issuer and subject names and to re-encode a name
//! canonically: tag-length-value reading and writing, no schema.

/// One TLV: its tag, its content, and the whole encoding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub whole: &'a [u8],
}

/// Reads the TLV at the start of `input`; returns it and what follows.
pub(crate) fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    // Multi-byte tags do not occur in the structures read here.
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    let tlv = Tlv {
        tag,
        content: &rest[..len],
        whole: &input[..header + len],
    };
    Some((tlv, &rest[len..]))
}

/// Every TLV of a constructed value's content, in order; `None` if any is malformed.
pub(crate) fn children(mut content: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (tlv, rest) = read(content)?;
        out.push(tlv);
        content = rest;
    }
    Some(out)
}

/// Appends the DER encoding of `tag` with `content`.
pub(crate) fn write(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    match u8::try_from(content.len()) {
        Ok(len) if len < 0x80 => out.push(len),
        _ => {
            let bytes = content.len().to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            // At most size_of::<usize>() length bytes: 8 fits in the 7 bits.
            let count = u8::try_from(bytes.len() - skip).unwrap_or(0x7f);
            out.push(0x80 | count);
            out.extend_from_slice(&bytes[skip..]);
        }
    }
    out.extend_from_slice(content);
}

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_short_and_long_lengths() {
        for len in [0usize, 1, 127, 128, 255, 256, 70000] {
            let content = vec![7u8; len];
            let mut out = Vec::new();
            write(&mut out, SEQUENCE, &content);
            let (tlv, rest) = read(&out).unwrap();
            assert_eq!((tlv.tag, tlv.content.len(), rest.len()), (SEQUENCE, len, 0));
            assert_eq!(tlv.whole, &out[..]);
        }
        assert!(read(&[0x30, 0x05, 1, 2]).is_none(), "truncated");
        assert!(
            read(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none(),
            "length too long"
        );
    }
}
