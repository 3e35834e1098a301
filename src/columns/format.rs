//! Text forms of addresses, without `fmt` machinery: these are the hottest strings in the schema.
//!
//! The formatters return the text as little-endian 8-byte words, which
//! [`Text`](super::chunk::Text) stores straight into the column: fixed layouts (MAC, IPv4) as
//! words and a length, IPv6 as [`Words`], each with how many of its bytes count. Building text
//! in registers matters: writing a stack buffer piecewise and then copying it out made every
//! address wait on failed store-to-load forwarding. Lookup tables turn a byte into its digits in
//! one load, and only ASCII digits, hex letters, `.`, `:` and zero padding are ever produced.

/// Text as little-endian words, each with the number of its leading bytes that belong to the text.
pub(crate) type Words<const K: usize> = [(u64, usize); K];

/// Two lower-case hex digits for every byte value, as little-endian `u16`s (first digit in the
/// low byte), so they can be shifted into place in a word.
const HEX2: [u16; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [0; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = u16::from_le_bytes([HEX[i >> 4], HEX[i & 15]]);
        i += 1;
    }
    t
};

/// For every octet value: its decimal digits followed by `.`, as a little-endian word, and how
/// many bytes that is.
const DEC: [(u32, u8); 256] = {
    let mut t = [(0, 0); 256];
    let mut i = 0;
    while i < 256 {
        let v = i as u8;
        t[i] = if v >= 100 {
            (u32::from_le_bytes([b'0' + v / 100, b'0' + v / 10 % 10, b'0' + v % 10, b'.']), 4)
        } else if v >= 10 {
            (u32::from_le_bytes([b'0' + v / 10, b'0' + v % 10, b'.', 0]), 3)
        } else {
            (u32::from_le_bytes([b'0' + v, b'.', 0, 0]), 2)
        };
        i += 1;
    }
    t
};

/// Length of a MAC's text.
pub(crate) const MAC_LEN: usize = 17;

/// `aa:bb:cc:dd:ee:ff`: bytes 0-7, 8-15 and the last digit.
#[inline]
pub(crate) fn format_mac(m: [u8; 6]) -> [u64; 3] {
    let hex = |i: usize| u64::from(HEX2[usize::from(m[i])]);
    let colon = u64::from(b':');
    let lo = hex(0) | colon << 16 | hex(1) << 24 | colon << 40 | hex(2) << 48;
    let hi = colon | hex(3) << 8 | colon << 24 | hex(4) << 32 | colon << 48 | hex(5) << 56;
    [lo, hi, hex(5) >> 8]
}

/// Dotted quad (at most 15 bytes) and its length: two octets per word, then joined.
#[inline]
pub(crate) fn format_ipv4(a: [u8; 4]) -> ([u64; 2], usize) {
    let [(d0, l0), (d1, l1), (d2, l2), (d3, l3)] = a.map(|octet| {
        let (digits, len) = DEC[usize::from(octet)];
        (u64::from(digits), u32::from(len))
    });
    // Each pair is at most 8 bytes; the first is 4 to 8 of them, so the shift is 32 to 64 bits.
    let first = d0 | d1 << (8 * l0);
    let text = u128::from(first) | u128::from(d2 | d3 << (8 * l2)) << (8 * (l0 + l1));
    // Without the last dot.
    ([text as u64, (text >> 64) as u64], (l0 + l1 + l2 + l3 - 1) as usize)
}

/// For every 8-bit mask of zero groups: where the `::` goes, as (first group, number of groups):
/// the longest run of two or more zero groups, the first of equal ones; `(8, 0)` if there is none.
const ZERO_RUN: [(u8, u8); 256] = {
    let mut t = [(8, 0); 256];
    let mut mask = 0;
    while mask < 256 {
        let (mut i, mut run) = (0, 0);
        while i < 8 {
            if mask & (1 << i) != 0 {
                run += 1;
                if run >= 2 && run > t[mask].1 {
                    t[mask] = (i + 1 - run, run);
                }
            } else {
                run = 0;
            }
            i += 1;
        }
        mask += 1;
    }
    t
};

/// RFC 5952 text (lower-case hex, no leading zeros, the longest run of two or more zero groups,
/// the first on a tie, as `::`), and how many trailing bytes to drop (a group's `:` after the
/// last group). `None` for IPv4-mapped addresses, which have their own form (std formats those).
///
/// Every group becomes a word of its digits and a `:` without branches; then the run's words
/// are emptied and its first one replaced by a lone `:` (a leading run gets one more, in front).
#[inline]
pub(crate) fn format_ipv6(a: &[u8; 16]) -> Option<(Words<9>, usize)> {
    if u128::from_be_bytes(*a) >> 32 == 0xffff {
        return None;
    }
    let colon = u64::from(b':');
    let mut words = [(colon, 0); 9];
    let mut zeros = 0u8;
    for i in 0..8 {
        let (hi, lo) = (a[2 * i], a[2 * i + 1]);
        let g = u16::from_be_bytes([hi, lo]);
        zeros |= u8::from(g == 0) << i;
        let hex = u64::from(HEX2[usize::from(hi)]) | u64::from(HEX2[usize::from(lo)]) << 16;
        // Significant hex digits (at least one): drop the leading zero digits by shifting.
        let digits = 4 - (g | 1).leading_zeros() as usize / 4;
        words[i + 1] = (hex >> (8 * (4 - digits)) | colon << (8 * digits), digits + 1);
    }
    let (start, len) = ZERO_RUN[usize::from(zeros)];
    let (start, end) = (usize::from(start), usize::from(start + len));
    if len == 0 {
        return Some((words, 1));
    }
    words[0].1 = usize::from(start == 0);
    words[start + 1] = (colon, 1);
    for word in &mut words[start + 2..end + 1] {
        word.1 = 0;
    }
    // The last group's `:` belongs to the text only when the address ends in the run.
    Some((words, usize::from(end < 8)))
}

/// An address as text in `buf`, through the formatters above (std's for the rare IPv6 forms
/// they leave out): for builders that take a `&str`, such as the flow columns'. 72 bytes hold the
/// longest IPv6 text's words stored whole.
pub(crate) fn ip_text<'b>(v4: bool, a: &[u8; 16], buf: &'b mut [u8; 72]) -> &'b str {
    let len = if v4 {
        let (words, len) = format_ipv4([a[0], a[1], a[2], a[3]]);
        buf[..8].copy_from_slice(&words[0].to_le_bytes());
        buf[8..16].copy_from_slice(&words[1].to_le_bytes());
        len
    } else if let Some((words, trim)) = format_ipv6(a) {
        let mut n = 0;
        for (word, len) in words {
            buf[n..n + 8].copy_from_slice(&word.to_le_bytes());
            n += len.min(8);
        }
        n.saturating_sub(trim)
    } else {
        use std::io::Write;
        let mut out = std::io::Cursor::new(&mut buf[..]);
        let _ = write!(out, "{}", std::net::Ipv6Addr::from(*a));
        out.position() as usize
    };
    std::str::from_utf8(&buf[..len]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What `Text::push_words` appends.
    fn render<const K: usize>(words: Words<K>, trim: usize) -> String {
        let mut s = Vec::new();
        for (word, len) in words {
            s.extend_from_slice(&word.to_le_bytes()[..len]);
        }
        s.truncate(s.len() - trim);
        String::from_utf8(s).unwrap()
    }

    /// What `Text::push_fixed` appends.
    fn fixed<const K: usize>(words: [u64; K], len: usize) -> String {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        String::from_utf8(bytes[..len].to_vec()).unwrap()
    }

    proptest! {
        #[test]
        fn ip_text_is_std_text(a in any::<[u8; 16]>(), v4 in any::<bool>()) {
            let mut buf = [0u8; 72];
            let want = if v4 {
                std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string()
            } else {
                std::net::Ipv6Addr::from(a).to_string()
            };
            prop_assert_eq!(ip_text(v4, &a, &mut buf), want);
        }
    }

    fn v6(a: [u8; 16]) -> String {
        match format_ipv6(&a) {
            Some((words, trim)) => render(words, trim),
            None => std::net::Ipv6Addr::from(a).to_string(),
        }
    }

    #[test]
    fn ipv6_special_cases() {
        let parse = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
        for s in [
            "::",
            "::1",
            "1::",
            "2001:db8::1",
            "2001:db8:0:1:1:1:1:1",
            "fe80::1:0:0:1",
            "1:0:0:1::",
            "::ffff:1.2.3.4",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "1:0:1:0:1:0:1:0",
            "0:1::",
            "::1:0",
            "abc:de:f:1000:100:10:1:0",
        ] {
            assert_eq!(v6(parse(s)), s);
        }
    }

    #[test]
    fn mac_and_ipv4_edges() {
        assert_eq!(fixed(format_mac([0, 0x0f, 0xf0, 0xff, 0x10, 0x01]), MAC_LEN), "00:0f:f0:ff:10:01");
        let (text, len) = format_ipv4([255, 255, 255, 255]);
        assert_eq!(fixed(text, len), "255.255.255.255");
        let (text, len) = format_ipv4([0, 0, 0, 0]);
        assert_eq!(fixed(text, len), "0.0.0.0");
    }

    proptest! {
        #[test]
        fn ipv4_formatting_matches_std(a in any::<[u8; 4]>()) {
            let (text, len) = format_ipv4(a);
            prop_assert_eq!(fixed(text, len), std::net::Ipv4Addr::from(a).to_string());
        }

        #[test]
        fn mac_formatting_matches_fmt(m in any::<[u8; 6]>()) {
            let expected = m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
            prop_assert_eq!(fixed(format_mac(m), MAC_LEN), expected);
        }

        #[test]
        fn ipv6_formatting_matches_std(groups in any::<[u16; 8]>(), mask in any::<u8>()) {
            // Zero groups are what make formatting interesting: zero out the groups `mask` selects.
            let mut a = [0u8; 16];
            for i in 0..8 {
                if mask & (1 << i) == 0 {
                    a[2 * i..2 * i + 2].copy_from_slice(&groups[i].to_be_bytes());
                }
            }
            prop_assert_eq!(v6(a), std::net::Ipv6Addr::from(a).to_string());
        }
    }
}
