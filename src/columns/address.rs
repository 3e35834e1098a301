//! Address columns: MACs and IP addresses as readable strings (formatted straight into the
//! string builder's buffer) or as compact binary, per [`AddressFormat`].

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, FixedSizeBinaryBuilder, StringBuilder};
use arrow_array::ArrayRef;

use super::FinishArray;
use crate::decode::IpAddr;
use crate::schema::AddressFormat;

const HEX: &[u8; 16] = b"0123456789abcdef";

pub(crate) enum MacBuilder {
    Str(StringBuilder),
    Bin(FixedSizeBinaryBuilder),
}

impl MacBuilder {
    pub(crate) fn new(addresses: AddressFormat, n: usize) -> Self {
        match addresses {
            AddressFormat::String => MacBuilder::Str(StringBuilder::with_capacity(n, n * 17)),
            AddressFormat::Binary => MacBuilder::Bin(FixedSizeBinaryBuilder::with_capacity(n, 6)),
        }
    }

    #[inline]
    pub(crate) fn append(&mut self, mac: Option<[u8; 6]>) {
        match (self, mac) {
            (MacBuilder::Str(b), Some(m)) => {
                let mut s = [b':'; 17];
                for (i, byte) in m.iter().enumerate() {
                    s[i * 3] = HEX[usize::from(byte >> 4)];
                    s[i * 3 + 1] = HEX[usize::from(byte & 0xf)];
                }
                b.append_value(ascii(&s));
            }
            (MacBuilder::Bin(b), Some(m)) => {
                // The builder's width is 6 and so is the value's: this cannot fail.
                let _ = b.append_value(m);
            }
            (MacBuilder::Str(b), None) => b.append_null(),
            (MacBuilder::Bin(b), None) => b.append_null(),
        }
    }
}

impl FinishArray for MacBuilder {
    fn finish_array(&mut self) -> ArrayRef {
        match self {
            MacBuilder::Str(b) => Arc::new(b.finish()),
            MacBuilder::Bin(b) => Arc::new(b.finish()),
        }
    }
}

pub(crate) enum IpBuilder {
    Str(StringBuilder),
    Bin(BinaryBuilder),
}

impl IpBuilder {
    pub(crate) fn new(addresses: AddressFormat, n: usize) -> Self {
        match addresses {
            AddressFormat::String => IpBuilder::Str(StringBuilder::with_capacity(n, n * 15)),
            AddressFormat::Binary => IpBuilder::Bin(BinaryBuilder::with_capacity(n, n * 4)),
        }
    }

    #[inline]
    pub(crate) fn append(&mut self, ip: Option<IpAddr>) {
        match (self, ip) {
            (IpBuilder::Str(b), Some(IpAddr::V4(a))) => {
                let mut s = [0u8; 15];
                let n = format_ipv4(a, &mut s);
                b.append_value(ascii(&s[..n]));
            }
            (IpBuilder::Str(b), Some(IpAddr::V6(a))) => {
                let mut s = [0u8; 39];
                match format_ipv6(&a, &mut s) {
                    Some(n) => b.append_value(ascii(&s[..n])),
                    None => {
                        // Rare special forms (IPv4-mapped): std's RFC 5952 Display. StringBuilder
                        // implements fmt::Write into the pending value; append_value("") ends it.
                        let _ = write!(b, "{}", std::net::Ipv6Addr::from(a));
                        b.append_value("");
                    }
                }
            }
            (IpBuilder::Bin(b), Some(a)) => b.append_value(a.octets()),
            (IpBuilder::Str(b), None) => b.append_null(),
            (IpBuilder::Bin(b), None) => b.append_null(),
        }
    }
}

impl FinishArray for IpBuilder {
    fn finish_array(&mut self) -> ArrayRef {
        match self {
            IpBuilder::Str(b) => Arc::new(b.finish()),
            IpBuilder::Bin(b) => Arc::new(b.finish()),
        }
    }
}

/// The formatters below only ever write ASCII digits, hex letters, `.` and `:`.
#[inline]
fn ascii(bytes: &[u8]) -> &str {
    debug_assert!(bytes.is_ascii());
    // SAFETY: every caller passes bytes written by this module's formatters, which are ASCII
    // (checked above in debug builds), and ASCII is valid UTF-8.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

/// Dotted-quad formatting without `fmt` machinery (the hottest string in the schema).
pub(crate) fn format_ipv4(a: [u8; 4], out: &mut [u8; 15]) -> usize {
    let mut n = 0;
    for (i, &octet) in a.iter().enumerate() {
        if i > 0 {
            out[n] = b'.';
            n += 1;
        }
        if octet >= 100 {
            out[n] = b'0' + octet / 100;
            n += 1;
        }
        if octet >= 10 {
            out[n] = b'0' + (octet / 10) % 10;
            n += 1;
        }
        out[n] = b'0' + octet % 10;
        n += 1;
    }
    n
}

/// RFC 5952 text (lower-case hex, no leading zeros, the longest run of two or more zero groups,
/// the first on a tie, as `::`). Returns `None` for IPv4-mapped addresses, which have their own form.
pub(crate) fn format_ipv6(a: &[u8; 16], out: &mut [u8; 39]) -> Option<usize> {
    let mut groups = [0u16; 8];
    for (i, g) in groups.iter_mut().enumerate() {
        *g = u16::from_be_bytes([a[2 * i], a[2 * i + 1]]);
    }
    if groups[..5] == [0; 5] && groups[5] == 0xffff {
        return None;
    }
    let (mut best_start, mut best_len) = (8, 0);
    let mut i = 0;
    while i < 8 {
        if groups[i] == 0 {
            let start = i;
            while i < 8 && groups[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                (best_start, best_len) = (start, i - start);
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best_start = 8;
    }
    let mut n = 0;
    let mut i = 0;
    while i < 8 {
        if i == best_start {
            out[n] = b':';
            out[n + 1] = b':';
            n += 2;
            i += best_len;
            continue;
        }
        if i > 0 && i != best_start + best_len {
            out[n] = b':';
            n += 1;
        }
        let g = groups[i];
        let mut started = false;
        for shift in [12u32, 8, 4, 0] {
            let nibble = (g >> shift) & 0xf;
            if nibble != 0 || started || shift == 0 {
                out[n] = HEX[usize::from(nibble)];
                n += 1;
                started = true;
            }
        }
        i += 1;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v6(a: [u8; 16]) -> String {
        let mut s = [0u8; 39];
        match format_ipv6(&a, &mut s) {
            Some(n) => String::from_utf8(s[..n].to_vec()).unwrap(),
            None => std::net::Ipv6Addr::from(a).to_string(),
        }
    }

    #[test]
    fn ipv6_special_cases() {
        let parse = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
        for s in ["::", "::1", "1::", "2001:db8::1", "2001:db8:0:1:1:1:1:1", "fe80::1:0:0:1", "1:0:0:1::", "::ffff:1.2.3.4"] {
            assert_eq!(v6(parse(s)), s);
        }
    }

    proptest! {
        #[test]
        fn ipv4_formatting_matches_std(a in any::<[u8; 4]>()) {
            let mut s = [0u8; 15];
            let n = format_ipv4(a, &mut s);
            prop_assert_eq!(std::str::from_utf8(&s[..n]).unwrap(), std::net::Ipv4Addr::from(a).to_string());
        }

        #[test]
        fn ipv6_formatting_matches_std(groups in any::<[u8; 8]>(), mask in any::<u8>()) {
            // Zero groups are what make formatting interesting: zero out the groups `mask` selects.
            let mut a = [0u8; 16];
            for i in 0..8 {
                if mask & (1 << i) == 0 {
                    a[2 * i] = groups[i];
                    a[2 * i + 1] = groups[i].wrapping_mul(7);
                }
            }
            prop_assert_eq!(v6(a), std::net::Ipv6Addr::from(a).to_string());
        }
    }
}
