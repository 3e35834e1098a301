//! Fast text for one cell: the typed writers behind the `json` and `csv` formats.
//!
//! Serialising is most of the cost of producing one message per row. Generic formatters go
//! through `Display` and, for timestamps, a calendar library per value; here each column gets a
//! writer picked once per batch by its type: integers through `itoa`, floats through `ryu`,
//! timestamps by a branch-free days-to-civil conversion, strings copied with an escape scan.
//! Types without a writer here fall back to arrow's own formatters, so every type still works.

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};

/// One column's cell writer.
pub enum Cell<'a> {
    /// A `UInt8` column, written with `itoa`.
    U8(&'a arrow_array::UInt8Array),
    /// A `UInt16` column, written with `itoa`.
    U16(&'a arrow_array::UInt16Array),
    /// A `UInt32` column, written with `itoa`.
    U32(&'a arrow_array::UInt32Array),
    /// A `UInt64` column, written with `itoa`.
    U64(&'a arrow_array::UInt64Array),
    /// An `Int8` column, written with `itoa`.
    I8(&'a arrow_array::Int8Array),
    /// An `Int16` column, written with `itoa`.
    I16(&'a arrow_array::Int16Array),
    /// An `Int32` column, written with `itoa`.
    I32(&'a arrow_array::Int32Array),
    /// An `Int64` column, written with `itoa`.
    I64(&'a arrow_array::Int64Array),
    /// A `Float32` column, written with `ryu`.
    F32(&'a arrow_array::Float32Array),
    /// A `Float64` column, written with `ryu`.
    F64(&'a arrow_array::Float64Array),
    /// A `Boolean` column, written as `true` / `false`.
    Bool(&'a arrow_array::BooleanArray),
    /// A `Utf8` column, copied with an escape scan.
    Str(&'a arrow_array::StringArray),
    /// A `LargeUtf8` column, copied with an escape scan.
    LargeStr(&'a arrow_array::LargeStringArray),
    /// A `Utf8View` column, copied with an escape scan.
    StrView(&'a arrow_array::StringViewArray),
    /// Epoch values and nanoseconds per value.
    Ts(&'a [i64], i64),
    /// Anything else.
    Other,
}

impl<'a> Cell<'a> {
    /// The writer for `array`'s type; [`Cell::Other`] when there is none.
    pub fn new(array: &'a ArrayRef) -> Self {
        match array.data_type() {
            DataType::UInt8 => Cell::U8(array.as_primitive()),
            DataType::UInt16 => Cell::U16(array.as_primitive()),
            DataType::UInt32 => Cell::U32(array.as_primitive()),
            DataType::UInt64 => Cell::U64(array.as_primitive()),
            DataType::Int8 => Cell::I8(array.as_primitive()),
            DataType::Int16 => Cell::I16(array.as_primitive()),
            DataType::Int32 => Cell::I32(array.as_primitive()),
            DataType::Int64 => Cell::I64(array.as_primitive()),
            DataType::Float32 => Cell::F32(array.as_primitive()),
            DataType::Float64 => Cell::F64(array.as_primitive()),
            DataType::Boolean => Cell::Bool(array.as_boolean()),
            DataType::Utf8 => Cell::Str(array.as_string()),
            DataType::LargeUtf8 => Cell::LargeStr(array.as_string()),
            DataType::Utf8View => Cell::StrView(array.as_string_view()),
            DataType::Timestamp(unit, Some(tz)) if is_utc(tz) => {
                let (values, per) = match unit {
                    TimeUnit::Second => (array.as_primitive::<TimestampSecondType>().values(), 1_000_000_000),
                    TimeUnit::Millisecond => (array.as_primitive::<TimestampMillisecondType>().values(), 1_000_000),
                    TimeUnit::Microsecond => (array.as_primitive::<TimestampMicrosecondType>().values(), 1_000),
                    TimeUnit::Nanosecond => (array.as_primitive::<TimestampNanosecondType>().values(), 1),
                };
                Cell::Ts(values, per)
            }
            _ => Cell::Other,
        }
    }

    /// Whether the writer is a JSON string (quoted) rather than a bare number or literal.
    pub fn is_text(&self) -> bool {
        matches!(self, Cell::Str(_) | Cell::LargeStr(_) | Cell::StrView(_) | Cell::Ts(..))
    }

    /// Writes row `i` (not null) as text: numbers as digits, strings raw (no quotes or escaping;
    /// `escape` decides), timestamps as ISO-8601 UTC. `false` for [`Cell::Other`].
    #[inline]
    pub fn write(&self, i: usize, out: &mut Vec<u8>, escape: Escape) -> bool {
        let mut ib = itoa::Buffer::new();
        match self {
            Cell::U8(a) => out.extend_from_slice(ib.format(a.value(i)).as_bytes()),
            Cell::U16(a) => out.extend_from_slice(ib.format(a.value(i)).as_bytes()),
            Cell::U32(a) => out.extend_from_slice(ib.format(a.value(i)).as_bytes()),
            Cell::U64(a) => out.extend_from_slice(ib.format(a.value(i)).as_bytes()),
            Cell::I8(a) => out.extend_from_slice(ib.format(a.value(i)).as_bytes()),
            Cell::I16(a) => out.extend_from_slice(ib.format(a.value(i)).as_bytes()),
            Cell::I32(a) => out.extend_from_slice(ib.format(a.value(i)).as_bytes()),
            Cell::I64(a) => out.extend_from_slice(ib.format(a.value(i)).as_bytes()),
            Cell::F32(a) => float(f64::from(a.value(i)), out, escape),
            Cell::F64(a) => float(a.value(i), out, escape),
            Cell::Bool(a) => out.extend_from_slice(if a.value(i) { b"true" } else { b"false" }),
            Cell::Str(a) => escape.apply(a.value(i).as_bytes(), out),
            Cell::LargeStr(a) => escape.apply(a.value(i).as_bytes(), out),
            Cell::StrView(a) => escape.apply(a.value(i).as_bytes(), out),
            Cell::Ts(v, per) => iso8601(v[i].saturating_mul(*per), *per, out),
            Cell::Other => return false,
        }
        true
    }
}

fn is_utc(tz: &str) -> bool {
    matches!(tz, "UTC" | "+00:00" | "Etc/UTC" | "utc" | "Z" | "GMT")
}

/// How string bytes are written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// JSON string content (quotes added by the caller).
    Json,
    /// As they are (CSV quoting is decided by the caller).
    None,
}

impl Escape {
    #[inline]
    fn apply(self, s: &[u8], out: &mut Vec<u8>) {
        match self {
            Escape::None => out.extend_from_slice(s),
            Escape::Json => json_escape(s, out),
        }
    }
}

fn float(v: f64, out: &mut Vec<u8>, escape: Escape) {
    if v.is_finite() {
        let mut b = ryu::Buffer::new();
        let s = b.format_finite(v);
        out.extend_from_slice(s.strip_suffix(".0").unwrap_or(s).as_bytes());
    } else if escape == Escape::Json {
        out.extend_from_slice(b"null"); // JSON has no NaN or infinity
    } else {
        out.extend_from_slice(if v.is_nan() {
            b"NaN"
        } else if v > 0.0 {
            b"inf"
        } else {
            b"-inf"
        });
    }
}

/// JSON string escaping (RFC 8259): quote, backslash and control characters.
#[inline]
pub fn json_escape(s: &[u8], out: &mut Vec<u8>) {
    if !s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\') {
        out.extend_from_slice(s);
        return;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]])
            }
            _ => out.push(b),
        }
    }
}

/// `2024-01-01T00:00:00.123456789+00:00`, with as many fraction digits as the unit has
/// (none for seconds, 3, 6 or 9).
pub fn iso8601(ns: i64, per: i64, out: &mut Vec<u8>) {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    let mut ib = itoa::Buffer::new();
    if (0..10_000).contains(&y) {
        let y = y as u32;
        out.extend_from_slice(&[
            b'0' + (y / 1000) as u8,
            b'0' + (y / 100 % 10) as u8,
            b'0' + (y / 10 % 10) as u8,
            b'0' + (y % 10) as u8,
        ]);
    } else {
        out.extend_from_slice(ib.format(y).as_bytes());
    }
    let two = |v: u32, out: &mut Vec<u8>| out.extend_from_slice(&[b'0' + (v / 10) as u8, b'0' + (v % 10) as u8]);
    out.push(b'-');
    two(m, out);
    out.push(b'-');
    two(d, out);
    out.push(b'T');
    two(sod / 3600, out);
    out.push(b':');
    two(sod / 60 % 60, out);
    out.push(b':');
    two(sod % 60, out);
    let digits = match per {
        1 => 9,
        1_000 => 6,
        1_000_000 => 3,
        _ => 0,
    };
    if digits > 0 {
        out.push(b'.');
        let mut f = frac / 10u32.pow(9 - digits);
        let start = out.len();
        out.resize(start + digits as usize, b'0');
        for k in (0..digits as usize).rev() {
            out[start + k] = b'0' + (f % 10) as u8;
            f /= 10;
        }
    }
    out.extend_from_slice(b"+00:00");
}

/// Howard Hinnant's days-from-epoch to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Whether `array` holds a null at `i` (cheap when it has no null buffer).
#[inline]
pub fn is_null(array: &ArrayRef, i: usize) -> bool {
    array.nulls().is_some_and(|n| n.is_null(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(ns: i64, per: i64) -> String {
        let mut out = Vec::new();
        iso8601(ns, per, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn timestamps_match_the_calendar() {
        assert_eq!(iso(0, 1), "1970-01-01T00:00:00.000000000+00:00");
        assert_eq!(iso(1_700_000_000_123_456_789, 1), "2023-11-14T22:13:20.123456789+00:00");
        assert_eq!(iso(1_700_000_000_123_456_000, 1_000), "2023-11-14T22:13:20.123456+00:00");
        assert_eq!(iso(951_782_400_000_000_000, 1_000_000_000), "2000-02-29T00:00:00+00:00");
        assert_eq!(iso(-1, 1), "1969-12-31T23:59:59.999999999+00:00");
        // Every day for 600 years against a step-by-step calendar.
        let (mut y, mut m, mut d) = (1800i64, 1u32, 1u32);
        for days in -62_091i64..157_000 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m as usize - 1];
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn json_escapes_what_rfc_8259_requires() {
        let mut out = Vec::new();
        json_escape(b"a\"b\\c\nd\x01", &mut out);
        assert_eq!(out, br#"a\"b\\c\nd\u0001"#);
    }
}
