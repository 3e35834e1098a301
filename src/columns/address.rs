//! Address columns: MACs and IP addresses as readable strings ([`format`](super::format)ted
//! straight into the column's bytes) or as compact binary, per [`AddressFormat`].

use arrow_array::ArrayRef;
use arrow_schema::ArrowError;

use super::chunk::{Accumulate, Bytes, Fixed, Put, Text};
use super::format::{format_ipv4, format_ipv6, format_mac, MAC_LEN};
use crate::decode::IpAddr;
use crate::schema::AddressFormat;

/// An address column: readable text, or the compact binary builder `B`.
// Clippy cannot size the generic `B` (which is as large as `Text` in practice); boxing either
// variant would add an indirection to every append.
#[allow(clippy::large_enum_variant)]
pub(crate) enum AddressColumn<B> {
    Text(Text),
    Binary(B),
}

/// `eth_src`/`eth_dst`: `Utf8` (`aa:bb:cc:dd:ee:ff`) or `FixedSizeBinary(6)`.
pub(crate) type MacColumn = AddressColumn<Fixed<6>>;

/// IP address columns: `Utf8` (dotted quad / RFC 5952) or 4- or 16-byte `Binary`.
pub(crate) type IpColumn = AddressColumn<Bytes>;

impl MacColumn {
    pub(crate) fn new(addresses: AddressFormat, capacity: usize) -> Self {
        match addresses {
            AddressFormat::String => AddressColumn::Text(Text::new(capacity, MAC_LEN)),
            AddressFormat::Binary => AddressColumn::Binary(Fixed::new(capacity)),
        }
    }
}

impl IpColumn {
    pub(crate) fn new(addresses: AddressFormat, capacity: usize) -> Self {
        match addresses {
            AddressFormat::String => AddressColumn::Text(Text::new(capacity, 15)),
            AddressFormat::Binary => AddressColumn::Binary(Bytes::new(capacity, 4)),
        }
    }
}

impl<B: Accumulate> Accumulate for AddressColumn<B> {
    #[inline]
    fn flush(&mut self) {
        match self {
            AddressColumn::Text(b) => b.flush(),
            AddressColumn::Binary(b) => b.flush(),
        }
    }

    fn finish(&mut self, partial: usize) -> Result<ArrayRef, ArrowError> {
        match self {
            AddressColumn::Text(b) => b.finish(partial),
            AddressColumn::Binary(b) => b.finish(partial),
        }
    }
}

impl Put<Option<[u8; 6]>> for MacColumn {
    #[inline]
    fn put(&mut self, i: usize, mac: Option<[u8; 6]>) {
        match (self, mac) {
            (AddressColumn::Text(b), Some(m)) => put_mac(b, i, m),
            (AddressColumn::Text(b), None) => b.null(i),
            (AddressColumn::Binary(b), mac) => b.put(i, mac),
        }
    }
}

#[inline(never)]
fn put_mac(b: &mut Text, i: usize, m: [u8; 6]) {
    b.push_fixed(i, format_mac(m), MAC_LEN);
}

impl Put<Option<IpAddr>> for IpColumn {
    /// Nulls (most outer addresses, say) stay inline; formatting is out of line, the two
    /// versions apart, so neither pays for the other's registers.
    #[inline]
    fn put(&mut self, i: usize, ip: Option<IpAddr>) {
        match (self, ip) {
            (AddressColumn::Text(b), None) => b.null(i),
            (AddressColumn::Binary(b), None) => b.null(i),
            (AddressColumn::Binary(b), Some(a)) => b.push(i, a.octets()),
            (AddressColumn::Text(b), Some(IpAddr::V4(a))) => put_ipv4(b, i, a),
            (AddressColumn::Text(b), Some(IpAddr::V6(a))) => put_ipv6(b, i, &a),
        }
    }
}

#[inline(never)]
fn put_ipv4(b: &mut Text, i: usize, a: [u8; 4]) {
    let (text, len) = format_ipv4(a);
    b.push_fixed(i, text, len);
}

#[inline(never)]
fn put_ipv6(b: &mut Text, i: usize, a: &[u8; 16]) {
    match format_ipv6(a) {
        Some((words, trim)) => b.push_words(i, words, trim),
        // Rare special forms (IPv4-mapped): std's RFC 5952 Display.
        None => b.push_str(i, &std::net::Ipv6Addr::from(*a).to_string()),
    }
}
