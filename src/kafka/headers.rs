//! A consumed message's `raw` headers (`link_type`, `wirelen`), read as bytes.
//!
//! rdkafka's header accessors (`Headers::iter`, `Headers::get`) turn each key into a `&str` with
//! `unwrap()`, so one producer writing a header key that is not UTF-8 would panic the consumer,
//! across the FFI boundary into Python. Header keys and values are bytes on the wire; here they
//! are read through librdkafka's own `rd_kafka_header_get_all`, and a key that is not one of ours
//! (UTF-8 or not) is simply ignored.
//!
//! Asked for every header (the `_headers` column, Spark's `includeHeaders`), [`RawHeaders::read`]
//! also hands out each (key, value) as borrowed bytes; [`super::meta::HeaderColumn`] decides how a
//! key that is not UTF-8 is stored.

use std::ffi::CStr;

use rdkafka::bindings as rd;
use rdkafka::message::BorrowedMessage;

const NO_ERROR: rd::rd_kafka_resp_err_t = rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR;

/// The headers the `raw` and `binary` formats read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RawHeaders {
    /// The `link_type` header as a LINKTYPE_ value; `None` when absent or not a number.
    pub link_type: Option<u16>,
    /// The `wirelen` header in bytes; `None` when absent or not a number.
    pub wirelen: Option<u32>,
}

/// One header as it came: key bytes (not necessarily UTF-8) and value (`None`: a null value).
pub type Header<'a> = (&'a [u8], Option<&'a [u8]>);

impl RawHeaders {
    /// The headers of a consumed message.
    pub fn of(m: &BorrowedMessage<'_>) -> Self {
        let mut out = Self::default();
        // SAFETY: `m.ptr()` is the message `m` owns, alive while `m` is borrowed.
        unsafe { visit(m, &mut |k, v| out.apply(k, v)) };
        out
    }

    /// The headers of a consumed message, and every header appended to `all` in order, borrowing
    /// from the message. Growing `all` is fallible: on `Err` (out of memory) nothing was added.
    pub fn with_all<'m>(
        m: &'m BorrowedMessage<'_>,
        all: &mut Vec<Header<'m>>,
    ) -> Result<Self, std::collections::TryReserveError> {
        let mut out = Self::default();
        let mut failed = None;
        let before = all.len();
        // SAFETY: as in `of`; the header list belongs to `m`, so its pointers live for `'m`.
        unsafe {
            visit(m, &mut |k, v| {
                out.apply(k, v);
                if failed.is_none() {
                    match all.try_reserve(1) {
                        Ok(()) => all.push((k, v)),
                        Err(e) => failed = Some(e),
                    }
                }
            })
        };
        if let Some(e) = failed {
            all.truncate(before);
            return Err(e);
        }
        Ok(out)
    }

    /// Reads a librdkafka header list.
    ///
    /// # Safety
    /// `hdrs` must point to a valid `rd_kafka_headers_t` that is not modified during the call.
    pub unsafe fn from_native(hdrs: *const rd::rd_kafka_headers_t) -> Self {
        let mut out = Self::default();
        // SAFETY: the caller's contract.
        unsafe { visit_native(hdrs, &mut |k, v| out.apply(k, v)) };
        out
    }

    /// Applies one header: `link_type` and `wirelen` take a decimal text value (the last such
    /// header wins; one that is not a number unsets it). Any other key, UTF-8 or not, is ignored.
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) {
        let text = value.and_then(|v| std::str::from_utf8(v).ok());
        match key {
            b"link_type" => self.link_type = text.and_then(|t| t.parse().ok()),
            b"wirelen" => self.wirelen = text.and_then(|t| t.parse().ok()),
            _ => {}
        }
    }
}

/// Calls `f` with each header of message `m`, in order.
///
/// # Safety
/// `m` must be a live consumed message (a `BorrowedMessage` guarantees it); the slices passed to
/// `f` point into its header list and live as long as `m`.
unsafe fn visit<'m>(m: &'m BorrowedMessage<'_>, f: &mut dyn FnMut(&'m [u8], Option<&'m [u8]>)) {
    let mut hdrs: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `m.ptr()` is the rd_kafka_message_t that `m` owns, alive while `m` is borrowed;
    // rd_kafka_message_headers only reads it and stores the message's own header list (or
    // leaves NULL) in `hdrs`.
    let err = unsafe { rd::rd_kafka_message_headers(m.ptr(), &mut hdrs) };
    if err != NO_ERROR || hdrs.is_null() {
        return;
    }
    // SAFETY: the header list belongs to the message, which outlives `'m`.
    unsafe { visit_native(hdrs, f) }
}

/// Calls `f` with each header of a librdkafka header list, in order.
///
/// # Safety
/// `hdrs` must point to a valid `rd_kafka_headers_t`, unmodified and alive for `'h`.
unsafe fn visit_native<'h>(hdrs: *const rd::rd_kafka_headers_t, f: &mut dyn FnMut(&'h [u8], Option<&'h [u8]>)) {
    // SAFETY: `hdrs` is valid (the caller's contract).
    let count = unsafe { rd::rd_kafka_header_cnt(hdrs) };
    for idx in 0..count {
        let mut name: *const std::ffi::c_char = std::ptr::null();
        let mut value: *const std::ffi::c_void = std::ptr::null();
        let mut size = 0usize;
        // SAFETY: `idx` < count; librdkafka writes a pointer to the header's NUL-terminated
        // name and to its value (NULL for a null value) of `size` bytes, both owned by `hdrs`.
        let err = unsafe { rd::rd_kafka_header_get_all(hdrs, idx, &mut name, &mut value, &mut size) };
        if err != NO_ERROR || name.is_null() {
            continue;
        }
        // SAFETY: librdkafka stores header names NUL-terminated; both stay valid while `hdrs` does.
        let key: &'h [u8] = unsafe { CStr::from_ptr(name) }.to_bytes();
        // SAFETY: as above; `value` is non-null and points to `size` bytes.
        let value = (!value.is_null()).then(|| unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) });
        f(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A native header list with the given (key, value) pairs, keys as raw bytes.
    struct Native(*mut rd::rd_kafka_headers_t);

    impl Native {
        fn new(pairs: &[(&[u8], Option<&[u8]>)]) -> Self {
            // SAFETY: a fresh list; each add copies name and value (sizes given explicitly).
            unsafe {
                let h = rd::rd_kafka_headers_new(pairs.len());
                for (k, v) in pairs {
                    let (vp, vl) = match v {
                        Some(v) => (v.as_ptr().cast(), v.len() as isize),
                        None => (std::ptr::null(), 0),
                    };
                    assert_eq!(rd::rd_kafka_header_add(h, k.as_ptr().cast(), k.len() as isize, vp, vl), NO_ERROR);
                }
                Native(h)
            }
        }
    }

    impl Drop for Native {
        fn drop(&mut self) {
            // SAFETY: created by rd_kafka_headers_new, destroyed once.
            unsafe { rd::rd_kafka_headers_destroy(self.0) }
        }
    }

    #[test]
    fn non_utf8_header_keys_are_ignored_not_a_panic() {
        let h = Native::new(&[
            (b"\xff\xfe", Some(b"x")),
            (b"link_type", Some(b"101")),
            (b"\xc3(", None),
            (b"wirelen", Some(b"1500")),
            (b"wirelen\xff", Some(b"7")),
        ]);
        // SAFETY: `h` is a valid list for the call.
        let got = unsafe { RawHeaders::from_native(h.0) };
        assert_eq!(got, RawHeaders { link_type: Some(101), wirelen: Some(1500) });
    }

    #[test]
    fn odd_values_unset_rather_than_fail() {
        let h = Native::new(&[(b"link_type", Some(b"\xff")), (b"wirelen", None), (b"", Some(b""))]);
        // SAFETY: `h` is a valid list for the call.
        let got = unsafe { RawHeaders::from_native(h.0) };
        assert_eq!(got, RawHeaders::default());
    }
}
