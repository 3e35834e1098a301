//! Checks that a JSON message holds exactly one object, before it joins the batch's decode.
//!
//! The consumer decodes a batch's JSON messages in one pass (newline-joined) and maps decoded
//! rows back to messages by position. arrow-json reads a stream of values, so a message holding
//! two objects (`{"a":1}{"a":2}`) or none (empty, whitespace, `[]`, `42`, `null`) would shift
//! every later row onto the wrong message's offset and key. This scan finds the one object's
//! extent (strings and escapes respected, brackets counted, iteratively: no recursion, so
//! 100k nested `[` cannot overflow the stack) and rejects anything else; it does not validate
//! the JSON grammar, which arrow-json then does.

/// Deeper nesting than this is an error row: no schema is that deep, and it bounds the decoder's
/// own stack of open containers.
pub const MAX_JSON_DEPTH: usize = 512;

/// `Ok` if `bytes` is one JSON object with only whitespace around it; otherwise why not.
pub fn one_object(bytes: &[u8]) -> Result<(), String> {
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let Some(start) = bytes.iter().position(|b| !ws(b)) else {
        return Err(if bytes.is_empty() {
            "empty value: no JSON object".to_string()
        } else {
            "value is only whitespace: no JSON object".to_string()
        });
    };
    if bytes[start] != b'{' {
        return Err(format!("expected one JSON object per message, found {}", what(&bytes[start..])));
    }
    let end = object_end(&bytes[start..])? + start;
    match bytes[end..].iter().position(|b| !ws(b)) {
        None => Ok(()),
        Some(i) if bytes[end + i] == b'{' => Err("expected one JSON object per message, found several".to_string()),
        Some(i) => Err(format!("unexpected bytes after the JSON object at byte {}", end + i)),
    }
}

/// One past the `}` closing the object that starts `bytes`.
///
/// Strings are skipped with `memchr2` to their closing quote (or an escape): most of a message's
/// bytes are inside strings, and a byte-at-a-time state machine over them was ~9% of consuming a
/// JSON topic (perf, 100k packet messages of ~460 bytes).
fn object_end(bytes: &[u8]) -> Result<usize, String> {
    let truncated = || "truncated JSON object".to_string();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                i += 1;
                loop {
                    let rest = bytes.get(i..).ok_or_else(truncated)?;
                    match memchr::memchr2(b'"', b'\\', rest) {
                        None => return Err(truncated()),
                        // An escape: skip it and the byte it escapes.
                        Some(j) if rest[j] == b'\\' => i += j + 2,
                        Some(j) => {
                            i += j + 1;
                            break;
                        }
                    }
                }
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(format!("JSON nested deeper than {MAX_JSON_DEPTH} levels"));
                }
            }
            b'}' | b']' => {
                depth -= 1; // depth >= 1 here: the first byte is `{`
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err(truncated())
}

fn what(v: &[u8]) -> &'static str {
    match v[0] {
        b'[' => "an array",
        b'"' => "a string",
        b'n' => "null",
        b't' | b'f' => "a boolean",
        b'-' | b'0'..=b'9' => "a number",
        _ => "bytes that are not JSON",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_object_passes() {
        for ok in [&b"{}"[..], b"{\"a\":1}", b" \n{\"a\":\"}{\\\"\"}\r\n", b"{\"a\":[{\"b\":[]}]}"] {
            assert_eq!(one_object(ok), Ok(()), "{}", String::from_utf8_lossy(ok));
        }
    }

    #[test]
    fn none_or_several_objects_fail() {
        for bad in [
            &b""[..],
            b"  \n",
            b"[]",
            b"42",
            b"null",
            b"\"s\"",
            b"{\"a\":1}{\"a\":2}",
            b"{\"a\":1}\n{\"a\":2}",
            b"{\"a\":1",
            b"{\"a\":\"}",
            b"{} x",
            b"\xff\xfe",
        ] {
            assert!(one_object(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let mut v = b"{\"a\":".to_vec();
        v.extend(std::iter::repeat_n(b'[', 100_000));
        assert!(one_object(&v).unwrap_err().contains("nested deeper"));
        let v: Vec<u8> = std::iter::repeat_n(b'{', 100_000).collect();
        assert!(one_object(&v).is_err());
        // A mismatched closer at depth 1 ends the object; arrow-json rejects the grammar.
        assert_eq!(one_object(b"{]"), Ok(()));
    }

    #[test]
    fn escapes_at_the_end_and_inside_strings() {
        assert!(one_object(b"{\"a\":\"\\").is_err());
        assert!(one_object(b"{\"a\":\"x\\\"}").is_err());
        assert_eq!(one_object(b"{\"a\":\"x\\\\\"}"), Ok(()));
        assert_eq!(one_object(b"{\"a\\\"}\":{\"b\":\"[\"}}"), Ok(()));
    }
}
