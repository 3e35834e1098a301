//! Live capture from a network interface through libpcap (the `live` feature).
//!
//! [`LiveSource`] is a [`PacketSource`] like the file readers, so [`crate::reader::PacketReader`]
//! and the Kafka producers take it unchanged. What differs from a file:
//!
//! * **A quiet link must not stall the caller.** libpcap's read timeout makes `next_record`
//!   return [`Error::Interrupted`] ("nothing lost, call again") when no packet came in time;
//!   callers use that moment to check for Ctrl-C, and the reader (with
//!   [`crate::reader::PacketReader::flush_on_idle`]) to hand out a partial batch.
//! * **The stream ends on request**: after `max_packets`, after `duration`, or when
//!   [`LiveHandle::stop`] is called from another thread (Ctrl-C in a CLI); the end is a clean
//!   `Ok(None)`. A stop or the end of `duration` first drains what libpcap already holds
//!   (for at most one read timeout), so packets that had arrived are not thrown away.
//! * **Drops are counted, not hidden.** libpcap's counters (received, dropped by the kernel for
//!   lack of buffer space, dropped by the interface) are refreshed every few thousand packets, at
//!   every read timeout and at the end, widened from libpcap's wrapping 32-bit counters to 64 bits,
//!   and published through the shared [`LiveHandle`] so they can be read while a batch is being
//!   built. pktstream itself drops nothing: every packet libpcap hands over becomes a row
//!   (`dropped_pktstream` is there so that a future change that does drop must say so).
//!
//! Timestamps are asked for in nanoseconds (libpcap >= 1.5 on Linux) and fall back to
//! microseconds when the platform refuses; libpcap's DLT values are mapped to the LINKTYPE values
//! capture files carry (only `DLT_RAW` differs on common platforms).

use std::ffi::{c_int, c_void};
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pcap::{Active, Capture, Device, Precision};

use super::{PacketSource, Record, SourceInfo};
use crate::error::{CaptureErrorKind, Error, Result};
use crate::sink::pcap::{PcapHeader, PcapWriter};

extern "C" {
    // Part of libpcap >= 1.5, which the `pcap` crate links; the crate does not wrap it.
    fn pcap_get_tstamp_precision(p: *mut c_void) -> c_int;
}

/// How libpcap's counters are refreshed on a busy link: every this many packets.
const STATS_EVERY: u32 = 4096;

/// Options of a live capture.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Interface name (`eth0`; `any` for all interfaces on Linux).
    pub interface: String,
    /// A BPF filter expression (tcpdump syntax), compiled by libpcap.
    pub bpf: Option<String>,
    /// Bytes kept of each packet.
    pub snaplen: u32,
    /// Put the interface in promiscuous mode (needs `CAP_NET_ADMIN` too).
    pub promisc: bool,
    /// Kernel buffer size in bytes (libpcap's default, 2 MiB on Linux, when `None`).
    pub buffer_size: Option<u32>,
    /// Longest wait for a packet before control returns to the caller ([`Error::Interrupted`]).
    pub timeout: Duration,
    /// Deliver each packet as soon as it arrives instead of in kernel-filled blocks.
    pub immediate: bool,
    /// Stop after this many packets.
    pub max_packets: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
}

impl LiveOptions {
    /// libpcap's defaults for `interface`: 65,535 bytes a packet, not promiscuous, 100 ms read
    /// timeout, no filter, no end.
    pub fn new(interface: &str) -> Self {
        Self {
            interface: interface.to_string(),
            bpf: None,
            snaplen: 65_535,
            promisc: false,
            buffer_size: None,
            timeout: Duration::from_millis(100),
            immediate: false,
            max_packets: None,
            duration: None,
        }
    }
}

/// Capture counters. `received`, `dropped_kernel` and `dropped_interface` are libpcap's
/// (`pcap_stats`; on Linux `received` counts the packets that passed the filter, including those
/// then dropped); `captured` is what pktstream handed on, `dropped_pktstream` what it lost (0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Packets pktstream handed on.
    pub captured: u64,
    /// Packets libpcap received (`ps_recv`).
    pub received: u64,
    /// Packets the kernel dropped for lack of buffer space (`ps_drop`).
    pub dropped_kernel: u64,
    /// Packets the interface or its driver dropped (`ps_ifdrop`).
    pub dropped_interface: u64,
    /// Packets pktstream itself dropped: always 0.
    pub dropped_pktstream: u64,
}

/// Shared between a [`LiveSource`] and whoever owns the reader around it: the latest counters
/// and a stop request, both lock-free.
#[derive(Debug, Default)]
pub struct LiveHandle {
    stop: AtomicBool,
    captured: AtomicU64,
    received: AtomicU64,
    dropped_kernel: AtomicU64,
    dropped_interface: AtomicU64,
    dropped_pktstream: AtomicU64,
}

impl LiveHandle {
    /// Asks the capture to end: the source hands out what libpcap already holds (for at most
    /// one read timeout), then returns `Ok(None)`.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether [`Self::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The counters as last published (at most a read timeout or a few thousand packets old).
    pub fn stats(&self) -> CaptureStats {
        CaptureStats {
            captured: self.captured.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            dropped_kernel: self.dropped_kernel.load(Ordering::Relaxed),
            dropped_interface: self.dropped_interface.load(Ordering::Relaxed),
            dropped_pktstream: self.dropped_pktstream.load(Ordering::Relaxed),
        }
    }

    fn publish(&self, s: &CaptureStats) {
        self.captured.store(s.captured, Ordering::Relaxed);
        self.received.store(s.received, Ordering::Relaxed);
        self.dropped_kernel.store(s.dropped_kernel, Ordering::Relaxed);
        self.dropped_interface.store(s.dropped_interface, Ordering::Relaxed);
        self.dropped_pktstream.store(s.dropped_pktstream, Ordering::Relaxed);
    }
}

/// libpcap's 32-bit counters, widened: each refresh adds the (wrapping) difference.
#[derive(Debug, Default)]
struct Widened {
    last: [u32; 3],
    total: [u64; 3],
}

impl Widened {
    fn update(&mut self, now: [u32; 3]) {
        for ((total, last), now) in self.total.iter_mut().zip(&mut self.last).zip(now) {
            *total += u64::from(now.wrapping_sub(*last));
            *last = now;
        }
    }
}

/// Packets from a network interface.
pub struct LiveSource {
    cap: Capture<Active>,
    info: SourceInfo,
    link_type: u16,
    /// Timestamp units per nanosecond factor: 1 with nanosecond precision, 1000 with micro.
    ts_scale: i64,
    handle: Arc<LiveHandle>,
    max_packets: Option<u64>,
    deadline: Option<Instant>,
    captured: u64,
    bytes: u64,
    counters: Widened,
    since_stats: u32,
    done: bool,
    draining_since: Option<Instant>,
    timeout: Duration,
    snaplen: u32,
    /// When control last went back to the caller with [`Error::Interrupted`].
    tick: Instant,
}

impl LiveSource {
    /// Opens and activates the capture, then installs the filter.
    ///
    /// Errors are [`Error::Capture`] with libpcap's message: unknown interface, missing
    /// permission (root or CAP_NET_RAW), invalid BPF expression; a zero timeout or snaplen is
    /// [`Error::InvalidArgument`].
    pub fn open(opts: &LiveOptions) -> Result<Self> {
        let iface = opts.interface.as_str();
        if opts.timeout < Duration::from_millis(1) {
            return Err(Error::InvalidArgument(
                "timeout must be at least 1 ms (a live capture must return control on a quiet link)".into(),
            ));
        }
        if opts.snaplen == 0 {
            return Err(Error::InvalidArgument("snaplen must be at least 1".into()));
        }
        if iface.is_empty() || iface.contains('\0') {
            return Err(capture_error(iface, CaptureErrorKind::NoSuchDevice, "no interface name given".into()));
        }
        let timeout_ms = i32::try_from(opts.timeout.as_millis()).unwrap_or(i32::MAX);
        let clamp = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        let mut inactive = Capture::from_device(iface)
            .map_err(|e| classify(iface, e))?
            .snaplen(clamp(opts.snaplen))
            .promisc(opts.promisc)
            .timeout(timeout_ms)
            .immediate_mode(opts.immediate)
            .precision(Precision::Nano);
        if let Some(size) = opts.buffer_size {
            inactive = inactive.buffer_size(clamp(size));
        }
        let mut cap = inactive.open().map_err(|e| classify(iface, e))?;
        if let Some(bpf) = opts.bpf.as_deref() {
            cap.filter(bpf, true).map_err(|e| {
                capture_error(iface, CaptureErrorKind::Filter, format!("invalid BPF filter {bpf:?}: {}", message(&e)))
            })?;
        }
        // Non-blocking reads, waiting in `poll` with our own deadline: on Linux (TPACKET_V3)
        // libpcap's read timeout only fires once a packet has arrived, so a blocking read on a
        // quiet link would never return.
        let cap = cap.setnonblock().map_err(|e| capture_error(iface, CaptureErrorKind::Other, message(&e)))?;
        let dlt = cap.get_datalink().0;
        // SAFETY: `cap` owns a live, activated pcap_t for the duration of the call.
        let nano = unsafe { pcap_get_tstamp_precision(cap.as_ptr().cast()) } == 1;
        let info = SourceInfo {
            path: PathBuf::from(iface),
            format: "live",
            big_endian: cfg!(target_endian = "big"),
            gzip: false,
            file_size: None,
            link_type: Some(linktype_of_dlt(dlt)),
        };
        Ok(Self {
            cap,
            info,
            link_type: linktype_of_dlt(dlt),
            ts_scale: if nano { 1 } else { 1000 },
            handle: Arc::new(LiveHandle::default()),
            max_packets: opts.max_packets,
            deadline: opts.duration.map(|d| Instant::now() + d),
            captured: 0,
            bytes: 0,
            counters: Widened::default(),
            since_stats: 0,
            done: false,
            draining_since: None,
            timeout: opts.timeout,
            snaplen: opts.snaplen,
            tick: Instant::now(),
        })
    }

    /// The handle to read the counters and to stop the capture from elsewhere.
    pub fn handle(&self) -> Arc<LiveHandle> {
        self.handle.clone()
    }

    /// The record link type (LINKTYPE_ value) of every packet.
    pub fn link_type(&self) -> u16 {
        self.link_type
    }

    fn cap_snaplen(&self) -> u32 {
        self.snaplen
    }

    /// Whether timestamps have nanosecond precision (else microseconds).
    pub fn nanosecond_timestamps(&self) -> bool {
        self.ts_scale == 1
    }

    /// Fresh counters (asks libpcap now).
    pub fn stats(&mut self) -> CaptureStats {
        self.refresh();
        self.handle.stats()
    }

    fn refresh(&mut self) {
        self.since_stats = 0;
        // A failing pcap_stats (never seen on Linux) leaves the last values in place.
        if let Ok(s) = self.cap.stats() {
            self.counters.update([s.received, s.dropped, s.if_dropped]);
        }
        let [received, dropped_kernel, dropped_interface] = self.counters.total;
        self.handle.publish(&CaptureStats {
            captured: self.captured,
            received,
            dropped_kernel,
            dropped_interface,
            dropped_pktstream: 0,
        });
    }

    fn stop_requested(&self) -> bool {
        self.handle.is_stopped() || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

impl PacketSource for LiveSource {
    fn next_record(&mut self) -> Result<Option<Record<'_>>> {
        if self.done {
            return Ok(None);
        }
        if self.max_packets.is_some_and(|m| self.captured >= m) {
            self.done = true;
            self.refresh();
            return Ok(None);
        }
        match self.draining_since {
            // Stopped (or `duration` passed): first hand out what libpcap already holds, which
            // includes a kernel block that has not been handed over yet. The drain ends at the
            // first read timeout (nothing left) or after one timeout on a busy link.
            None if self.stop_requested() => self.draining_since = Some(Instant::now()),
            Some(since) if since.elapsed() >= self.timeout => {
                self.done = true;
                self.refresh();
                return Ok(None);
            }
            _ => {}
        }
        if self.draining_since.is_some() {
            // Refreshed now: the read below may be the last one (see the timeout arm).
            self.refresh();
        } else {
            if self.since_stats >= STATS_EVERY {
                self.refresh();
            }
            // A trickle of packets never lets libpcap's timeout fire: return control at least
            // once per timeout anyway, so a partly filled batch goes out after at most that long.
            let now = Instant::now();
            if now.duration_since(self.tick) >= self.timeout {
                self.tick = now;
                return Err(Error::Interrupted);
            }
        }
        // libpcap runs non-blocking (see `open`): an empty buffer returns at once, and the wait
        // happens here, on the socket, bounded by the next tick or the end of the drain.
        let wake = match self.draining_since {
            Some(since) => since + self.timeout,
            None => self.tick + self.timeout,
        };
        let fd = self.cap.as_raw_fd();
        let cap: *mut Capture<Active> = &mut self.cap;
        loop {
            // SAFETY: `cap` is `&mut self.cap`, exclusively ours for this whole call. The `Ok`
            // arm returns the packet, borrowed from it for the lifetime of `&mut self`; the other
            // arms hold no borrow of it when they loop back for another read. (This is sound
            // code the borrow checker cannot prove yet: NLL "problem case #3".)
            match unsafe { (*cap).next_packet() } {
                Ok(p) => {
                    let h = p.header;
                    // `as`: time_t and suseconds_t are i64 on 64-bit targets, i32 on some others.
                    #[allow(clippy::unnecessary_cast)]
                    let (sec, frac) = (h.ts.tv_sec as i64, h.ts.tv_usec as i64);
                    let ts_ns = sec.saturating_mul(1_000_000_000).saturating_add(frac.saturating_mul(self.ts_scale));
                    self.captured += 1;
                    self.since_stats += 1;
                    self.bytes += u64::from(h.caplen);
                    return Ok(Some(Record {
                        ts_ns: Some(ts_ns),
                        caplen: h.caplen,
                        wirelen: h.len,
                        interface_id: None,
                        link_type: Some(self.link_type),
                        data: p.data,
                    }));
                }
                // Nothing buffered now.
                Err(pcap::Error::TimeoutExpired) => {
                    let now = Instant::now();
                    if now >= wake {
                        if self.draining_since.is_some() {
                            self.done = true;
                            self.refresh();
                            return Ok(None);
                        }
                        self.tick = now;
                        self.refresh();
                        return Err(Error::Interrupted);
                    }
                    match wait_readable(fd, wake - now) {
                        Ok(()) => {}
                        // A signal (Ctrl-C): give the caller a chance to look.
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Err(Error::Interrupted),
                        Err(e) => {
                            self.done = true;
                            let iface = self.info.path.to_string_lossy().into_owned();
                            return Err(capture_error(&iface, CaptureErrorKind::Other, format!("poll: {e}")));
                        }
                    }
                }
                Err(e) => {
                    self.done = true;
                    let iface = self.info.path.to_string_lossy().into_owned();
                    return Err(capture_error(&iface, CaptureErrorKind::Other, message(&e)));
                }
            }
        }
    }

    fn info(&self) -> &SourceInfo {
        &self.info
    }

    /// Captured bytes so far.
    fn bytes_read(&self) -> u64 {
        self.bytes
    }
}

impl Drop for LiveSource {
    fn drop(&mut self) {
        // The final counters, for whoever still holds the handle (a report after Ctrl-C).
        self.refresh();
    }
}

/// Waits until `fd` is readable or `timeout` passed (rounded up to whole milliseconds).
fn wait_readable(fd: RawFd, timeout: Duration) -> std::io::Result<()> {
    let ms = c_int::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(c_int::MAX);
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, alive for the call.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Writes the capture as a classic pcap file (nanosecond variant when the timestamps have
/// nanosecond precision) until the source ends, an error, or `keep_going` returns false (it is
/// called at every read timeout). Returns the packets written; `out` is flushed at the end.
pub fn write_pcap<W: Write>(source: &mut LiveSource, out: W, keep_going: &mut dyn FnMut() -> bool) -> Result<u64> {
    let path = source.info.path.clone();
    let io = |source: std::io::Error| Error::Io { path: path.clone(), source };
    let header = PcapHeader {
        link_type: source.link_type,
        snaplen: source.cap_snaplen(),
        nanosecond: source.nanosecond_timestamps(),
        big_endian: false,
    };
    let mut out = PcapWriter::new(out, header).map_err(io)?;
    let mut written = 0u64;
    loop {
        match source.next_record() {
            Ok(Some(r)) => {
                out.write(r.ts_ns.unwrap_or_default(), r.data, r.wirelen).map_err(io)?;
                written += 1;
            }
            Ok(None) => break,
            Err(Error::Interrupted) => {
                if !keep_going() {
                    break;
                }
            }
            Err(e) => return Err(e),
        }
    }
    out.flush().map_err(io)?;
    Ok(written)
}

/// libpcap DLT_ values to the LINKTYPE_ values capture files use (they differ only for a few).
fn linktype_of_dlt(dlt: i32) -> u16 {
    match dlt {
        12 | 14 => 101, // DLT_RAW (Linux/BSD, OpenBSD) -> LINKTYPE_RAW
        other => u16::try_from(other).unwrap_or(u16::MAX),
    }
}

fn message(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(m) if !m.is_empty() => m.clone(),
        other => other.to_string(),
    }
}

fn capture_error(interface: &str, kind: CaptureErrorKind, message: String) -> Error {
    Error::Capture { interface: interface.to_string(), kind, message }
}

/// Turns an open/activate failure into a typed error. libpcap reports the cause in its message
/// only (the crate drops `pcap_activate`'s status code), so the interface list settles "no such
/// device" and the message text settles "permission".
fn classify(interface: &str, e: pcap::Error) -> Error {
    let msg = message(&e);
    let lower = msg.to_lowercase();
    let known = Device::list().map(|l| l.iter().any(|d| d.name == interface)).unwrap_or(true);
    if !known || lower.contains("no such device") || lower.contains("doesn't exist") {
        let msg = if known { msg } else { format!("no such interface ({msg})") };
        return capture_error(interface, CaptureErrorKind::NoSuchDevice, msg);
    }
    if lower.contains("permission") || lower.contains("not permitted") || lower.contains("cap_net_raw") {
        return capture_error(
            interface,
            CaptureErrorKind::Permission,
            format!(
                "{msg}. Capturing needs root or the CAP_NET_RAW capability (and CAP_NET_ADMIN for \
                 promiscuous mode): run as root, or grant them to the interpreter with \
                 `sudo setcap cap_net_raw,cap_net_admin=eip <python binary>`"
            ),
        );
    }
    capture_error(interface, CaptureErrorKind::Other, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widened_counters_survive_wrapping() {
        let mut w = Widened::default();
        w.update([u32::MAX - 1, 5, 0]);
        w.update([3, 6, 0]);
        assert_eq!(w.total, [u64::from(u32::MAX) + 4, 6, 0]);
    }

    #[test]
    fn dlt_raw_becomes_linktype_raw() {
        assert_eq!(linktype_of_dlt(1), 1);
        assert_eq!(linktype_of_dlt(12), 101);
        assert_eq!(linktype_of_dlt(276), 276);
    }

    #[test]
    fn unknown_interface_is_a_typed_error() {
        let err = LiveSource::open(&LiveOptions::new("pktstream-no-such-if0")).err();
        match err {
            Some(Error::Capture { kind, .. }) => {
                assert!(matches!(kind, CaptureErrorKind::NoSuchDevice | CaptureErrorKind::Permission), "{kind:?}")
            }
            other => panic!("expected a capture error, got {other:?}"),
        }
    }

    #[test]
    fn zero_timeout_is_rejected() {
        let mut o = LiveOptions::new("lo");
        o.timeout = Duration::ZERO;
        assert!(matches!(LiveSource::open(&o), Err(Error::InvalidArgument(_))));
    }
}
