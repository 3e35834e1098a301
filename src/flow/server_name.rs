//! `requested_server_name`: the name a client asked for, from the first packets of a flow — the
//! TLS ClientHello's SNI, the HTTP request's Host header, or the DNS query name — like NFStream's
//! field of that name (which nDPI fills).
//!
//! The decoder reports lengths, not offsets, so the transport payload is found from the end of
//! the frame (it ends the IP packet) and then checked: the transport header must sit right
//! before it with the packet's ports (and, for TCP, a data offset that lands exactly on the
//! payload). Frames cut by the snap length are skipped. A frame trailer of up to 4 bytes (an
//! Ethernet FCS) is allowed for.

use crate::decode::Packet;

/// Packets of a flow examined for a name (NFStream dissects up to 20; the name comes first).
pub const PACKETS: u64 = 10;

/// The longest name kept (nDPI keeps 80 bytes).
const MAX_LEN: usize = 253;

/// The transport payload of `frame`, located and verified as described in the module docs.
pub(crate) fn transport_payload<'a>(frame: &'a [u8], p: &Packet, wirelen: u32) -> Option<&'a [u8]> {
    let len = p.payload_len? as usize;
    let (sp, dp) = (p.src_port?, p.dst_port?);
    if len == 0 || frame.len() as u64 != u64::from(wirelen) {
        return None;
    }
    for trailer in 0..=4usize {
        let Some(start) = frame.len().checked_sub(len + trailer) else { break };
        let header_ok = match p.ip_proto? {
            17 => {
                start >= 8 && {
                    let h = &frame[start - 8..start];
                    be16(h, 0) == sp && be16(h, 2) == dp && usize::from(be16(h, 4)) == len + 8
                }
            }
            6 => (20..=60).step_by(4).any(|hl| {
                start >= hl && {
                    let h = &frame[start - hl..start];
                    be16(h, 0) == sp && be16(h, 2) == dp && usize::from(h[12] >> 4) * 4 == hl
                }
            }),
            _ => false,
        };
        if header_ok {
            return Some(&frame[start..start + len]);
        }
    }
    None
}

fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

/// The server name a payload asks for, if it is a TLS ClientHello, an HTTP request or a DNS
/// query (`dns`: the packet has port 53 on either side).
pub(crate) fn server_name(payload: &[u8], proto: u8, dns: bool) -> Option<String> {
    if dns {
        let body = if proto == 6 { payload.get(2..)? } else { payload };
        return dns_qname(body);
    }
    if proto != 6 {
        return None;
    }
    match payload.first()? {
        0x16 => tls_sni(payload),
        b'A'..=b'Z' => http_host(payload),
        _ => None,
    }
}

fn clean(name: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(name).ok()?;
    (!s.is_empty() && s.len() <= MAX_LEN && s.bytes().all(|b| b.is_ascii_graphic())).then(|| s.to_string())
}

/// A cursor over untrusted bytes: every read is bounds-checked.
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<usize> {
        self.take(1).map(|b| usize::from(b[0]))
    }
    fn u16(&mut self) -> Option<usize> {
        self.take(2).map(|b| usize::from(be16(b, 0)))
    }
}

/// SNI of a TLS ClientHello (in the first record; a hello split over segments is not joined).
fn tls_sni(p: &[u8]) -> Option<String> {
    let mut c = Cur(p);
    let record = c.take(5)?;
    if record[0] != 0x16 || record[1] != 3 {
        return None;
    }
    let hs = c.take(4)?;
    if hs[0] != 1 {
        return None;
    }
    c.take(2 + 32)?;
    let n = c.u8()?;
    c.take(n)?;
    let n = c.u16()?;
    c.take(n)?;
    let n = c.u8()?;
    c.take(n)?;
    let ext_len = c.u16()?;
    let mut ext = Cur(c.take(ext_len.min(c.0.len()))?);
    while let (Some(kind), Some(len)) = (ext.u16(), ext.u16()) {
        let body = ext.take(len)?;
        if kind == 0 {
            let mut s = Cur(body);
            let _list = s.u16()?;
            if s.u8()? != 0 {
                return None;
            }
            let n = s.u16()?;
            return clean(s.take(n)?);
        }
    }
    None
}

/// Host header of an HTTP/1.x request.
fn http_host(p: &[u8]) -> Option<String> {
    const METHODS: [&[u8]; 9] =
        [b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"CONNECT ", b"PATCH ", b"TRACE "];
    if !METHODS.iter().any(|m| p.starts_with(m)) {
        return None;
    }
    for line in p.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.len() > 5 && line[..5].eq_ignore_ascii_case(b"host:") {
            let v = &line[5..];
            let start = v.iter().position(|b| !b.is_ascii_whitespace())?;
            let end = v.iter().rposition(|b| !b.is_ascii_whitespace())? + 1;
            let mut host = &v[start..end];
            // Without the port, as nDPI reports it (an IPv6 literal keeps its brackets).
            if let Some(colon) = host.iter().rposition(|&b| b == b':') {
                if host[colon + 1..].iter().all(u8::is_ascii_digit) && !host.ends_with(b"]") {
                    host = &host[..colon];
                }
            }
            return clean(host);
        }
    }
    None
}

/// First question name of a DNS query (compression pointers are not followed: a query's first
/// name never uses one).
fn dns_qname(p: &[u8]) -> Option<String> {
    let mut c = Cur(p);
    let head = c.take(12)?;
    if head[2] & 0x80 != 0 || be16(head, 4) == 0 {
        return None; // a response, or no question
    }
    let mut name = Vec::new();
    loop {
        let n = c.u8()?;
        if n == 0 {
            break;
        }
        if n > 63 || name.len() + n > MAX_LEN {
            return None;
        }
        if !name.is_empty() {
            name.push(b'.');
        }
        name.extend_from_slice(c.take(n)?);
    }
    clean(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_host_and_dns_qname() {
        let req = b"GET / HTTP/1.1\r\nUser-Agent: x\r\nhost:  example.com:8080 \r\n\r\n";
        assert_eq!(http_host(req).as_deref(), Some("example.com"));
        assert_eq!(http_host(b"HTTP/1.1 200 OK\r\nHost: no\r\n"), None);
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        assert_eq!(dns_qname(&q).as_deref(), Some("www.example.com"));
        q[2] |= 0x80;
        assert_eq!(dns_qname(&q), None);
    }

    #[test]
    fn tls_client_hello_sni() {
        let name = b"pktstream.example";
        let mut sni = vec![0, 0];
        let list_len = (name.len() + 3) as u16;
        sni.extend_from_slice(&(list_len + 2).to_be_bytes());
        sni.extend_from_slice(&list_len.to_be_bytes());
        sni.push(0);
        sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
        sni.extend_from_slice(name);
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0; 32]);
        body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
        body.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        body.extend_from_slice(&sni);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        assert_eq!(tls_sni(&rec).as_deref(), Some("pktstream.example"));
        for cut in 0..rec.len() {
            assert_eq!(tls_sni(&rec[..cut]), None, "cut at {cut}");
        }
    }
}
