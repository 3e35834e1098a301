//! The merge: order across files, filters, lazy opening, and the output's precision.

use super::*;
use crate::sink::file::create_private_dir;

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pktstream-query-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    create_private_dir(&dir).unwrap();
    dir
}

/// An Ethernet/IPv4/UDP frame from `src` port `sport`.
fn udp(src: [u8; 4], sport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[10, 0, 0, 99]);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&[0, 53, 0, 8, 0, 0]);
    f
}

fn write_file(dir: &Path, name: &str, recs: &[(i64, Vec<u8>)], nanosecond: bool) -> QueryFile {
    let path = dir.join(name);
    let mut w = PcapWriter::new(std::fs::File::create(&path).unwrap(), PcapHeader { nanosecond, ..Default::default() })
        .unwrap();
    for (ts, f) in recs {
        w.write(*ts, f, f.len() as u32).unwrap();
    }
    w.flush().unwrap();
    QueryFile { name: path.display().to_string(), first_ts_ns: recs.first().map_or(0, |r| r.0) }
}

fn read(path: &Path) -> Vec<(i64, Vec<u8>)> {
    let mut src = source::open(path).unwrap();
    let mut out = Vec::new();
    while let Some(r) = src.next_record().unwrap() {
        out.push((r.ts_ns.unwrap(), r.data.to_vec()));
    }
    out
}

fn never() -> impl FnMut() -> Result<()> {
    || Ok(())
}

#[test]
fn merges_files_by_time_and_filters() {
    let dir = tmp("merge");
    let us = 1_000;
    // Three "partitions", interleaved in time.
    let a: Vec<_> = (0..50).map(|i| (i * 3 * us, udp([10, 0, 0, 1], 1000 + i as u16))).collect();
    let b: Vec<_> = (0..50).map(|i| ((i * 3 + 1) * us, udp([10, 0, 0, 2], 2000))).collect();
    let c: Vec<_> = (0..50).map(|i| ((i * 3 + 2) * us, udp([10, 0, 0, 3], 3000))).collect();
    let files =
        vec![write_file(&dir, "a", &a, false), write_file(&dir, "b", &b, false), write_file(&dir, "c", &c, false)];
    let out = dir.join("out.pcap");
    let r = query(&files, &LocalFiles, &Filter::default(), &out, &mut never()).unwrap();
    assert_eq!(r.packets, 150);
    let got = read(&out);
    let mut want: Vec<_> = a.iter().chain(&b).chain(&c).cloned().collect();
    want.sort_by_key(|x| x.0);
    assert_eq!(got, want);

    let filter = Filter {
        start: Some(30 * us),
        end: Some(90 * us),
        src_ip: Some("10.0.0.2".parse().unwrap()),
        ..Default::default()
    };
    let r = query(&files, &LocalFiles, &filter, &out, &mut never()).unwrap();
    let want: Vec<_> = b.iter().filter(|x| (30 * us..90 * us).contains(&x.0)).cloned().collect();
    assert_eq!((r.packets as usize, read(&out)), (want.len(), want));

    let filter = Filter { port: Some(3000), proto: Some(17), ..Default::default() };
    assert_eq!(query(&files, &LocalFiles, &filter, &out, &mut never()).unwrap().packets, 50);
    let filter = Filter { proto: Some(6), ..Default::default() };
    assert_eq!(query(&files, &LocalFiles, &filter, &out, &mut never()).unwrap().packets, 0);
    assert_eq!(read(&out), vec![]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn opens_files_only_when_the_merge_reaches_their_time() {
    let dir = tmp("lazy");
    // 200 files of one partition, one after another in time: at most a couple open at once.
    let files: Vec<_> = (0..200)
        .map(|k| {
            let recs: Vec<_> = (0..5).map(|i| (k * 1_000_000 + i * 1000, udp([10, 0, 0, 1], 1))).collect();
            write_file(&dir, &format!("f{k}"), &recs, true)
        })
        .collect();
    let out = dir.join("out.pcap");
    let r = query(&files, &LocalFiles, &Filter::default(), &out, &mut never()).unwrap();
    assert_eq!((r.packets, r.files_opened), (1000, 200));
    assert!(r.max_open <= 2, "{r:?}");
    let got = read(&out);
    assert!(got.windows(2).all(|w| w[0].0 <= w[1].0));
    // A nanosecond input makes a nanosecond output.
    assert_eq!(&std::fs::read(&out).unwrap()[..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
    // Files starting at or after `end` are not opened.
    let filter = Filter { end: Some(10_000_000), ..Default::default() };
    let r = query(&files, &LocalFiles, &filter, &out, &mut never()).unwrap();
    assert_eq!((r.packets, r.files_opened), (50, 10));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failed_query_leaves_no_output() {
    let dir = tmp("fail");
    let files = vec![QueryFile { name: dir.join("missing").display().to_string(), first_ts_ns: 0 }];
    let out = dir.join("out.pcap");
    assert!(matches!(query(&files, &LocalFiles, &Filter::default(), &out, &mut never()), Err(Error::NotFound { .. })));
    let a = write_file(&dir, "a", &[(0, udp([10, 0, 0, 1], 1))], false);
    let stop = &mut || Err(Error::Interrupted);
    // Interrupted: nothing published, no part file left.
    assert!(matches!(query(&[a], &LocalFiles, &Filter::default(), &out, stop), Err(Error::Interrupted)));
    assert!(!out.exists());
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.iter().all(|n| !n.to_string_lossy().contains(".part")), "{left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
