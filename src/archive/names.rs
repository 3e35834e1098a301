//! Rolled file names: `TOPIC-PARTITION-OFFSET(20 digits)-FIRST_TS_NS.pcap`.
//!
//! The name is fixed by the file's first message, so an archiver restarted after a crash rewrites
//! the same file under the same name from the last committed offset (nothing stored twice), and a
//! query can skip a file by its name's time without opening it.
//!
//! A file being written is `NAME.<pid>.part` ([`crate::sink::file::PartFile`]): two archivers (or
//! an archiver restarted while the old process still drains) never write the same part file, and
//! the leftovers of a process that died are recognised by a pid no longer running.

/// The name of the rolled file that starts with this message.
pub fn file_name(topic: &str, partition: i32, first_offset: i64, first_ts_ns: i64) -> String {
    format!("{topic}-{partition}-{first_offset:020}-{first_ts_ns}.pcap")
}

/// `(topic, partition, first_offset, first_ts_ns)` of a rolled file's name (no directory).
pub fn parse_name(name: &str) -> Option<(String, i32, i64, i64)> {
    let (rest, ts) = split_last(name.strip_suffix(".pcap")?)?;
    // A negative timestamp leaves its sign at the end of `rest`: `...-OFFSET--123`.
    let (rest, negative) = match rest.strip_suffix('-') {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let ts = if negative { format!("-{ts}") } else { ts.to_string() };
    parse_parts(rest, &ts)
}

fn split_last(s: &str) -> Option<(&str, &str)> {
    let at = s.rfind('-')?;
    Some((&s[..at], &s[at + 1..]))
}

fn parse_parts(rest: &str, ts: &str) -> Option<(String, i32, i64, i64)> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let ts_digits = ts.strip_prefix('-').unwrap_or(ts);
    if !digits(ts_digits) {
        return None;
    }
    let (rest, offset) = split_last(rest)?;
    if offset.len() != 20 || !digits(offset) {
        return None;
    }
    let (topic, partition) = split_last(rest)?;
    if topic.is_empty() || !digits(partition) {
        return None;
    }
    Some((topic.to_string(), partition.parse().ok()?, offset.parse().ok()?, ts.parse().ok()?))
}

/// Whether `name` is a part file of `prefix`'s rolled files left by a process that is gone (or
/// an older `NAME.part` without a pid): such files are removed, their messages are rewritten from
/// the committed offsets.
pub fn is_stale_part(name: &str, prefix: &str) -> bool {
    if !name.starts_with(prefix) {
        return false;
    }
    let Some(stem) = name.strip_suffix(".part") else { return false };
    if stem.ends_with(".pcap") {
        return true; // no pid: an older archiver's
    }
    let Some((base, pid)) = stem.rsplit_once('.') else { return false };
    if !base.ends_with(".pcap") {
        return false;
    }
    match pid.parse::<u32>() {
        Ok(pid) => pid != std::process::id() && !process_alive(pid),
        Err(_) => false,
    }
}

/// Whether a process runs under this pid (on this host).
fn process_alive(pid: u32) -> bool {
    let proc_fs = std::path::Path::new("/proc/self");
    if proc_fs.exists() {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        false // no way to tell: treat the file as a leftover, as before pids were in the name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let n = file_name("pcap-raw", 3, 1200, 1_700_000_000_000_000_000);
        assert_eq!(n, "pcap-raw-3-00000000000000001200-1700000000000000000.pcap");
        assert_eq!(parse_name(&n), Some(("pcap-raw".into(), 3, 1200, 1_700_000_000_000_000_000)));
        let neg = file_name("t", 0, 5, -7);
        assert_eq!(parse_name(&neg), Some(("t".into(), 0, 5, -7)));
        for bad in ["x.pcap", "t-0-12-5.pcap", "t-0-00000000000000000012-5.pcapx", "-0-00000000000000000012-5.pcap"] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_dead_processes_part_files_are_stale() {
        let me = std::process::id();
        assert!(is_stale_part("t-0-00000000000000000001-5.pcap.part", "t-"));
        assert!(!is_stale_part(&format!("t-0-00000000000000000001-5.pcap.{me}.part"), "t-"));
        assert!(!is_stale_part("u-0-00000000000000000001-5.pcap.part", "t-"));
        assert!(!is_stale_part("t-0-00000000000000000001-5.pcap", "t-"));
        if std::path::Path::new("/proc/self").exists() {
            assert!(is_stale_part("t-0-00000000000000000001-5.pcap.4294967295.part", "t-"));
        }
    }
}
