//! A file that appears under its name only once it is complete and durable.
//!
//! The archive commits a partition's Kafka offsets only after the file holding those messages is
//! safely on disk. The sequence is: write `NAME.<pid>.part` (private to the user, 0600: captures hold
//! other people's traffic), fsync the file, rename it to `NAME`, fsync the directory (so the
//! rename itself survives a power cut), and only then commit. A crash at any point leaves either
//! no `NAME` (the `.part` is removed and rewritten from the last commit) or a complete one.
//!
//! The part name carries the writing process's id, so two processes writing the same `NAME` (two
//! archivers in one group during a rebalance, or a restarted one while the old one still drains)
//! never write into one part file, and a leftover can be told from a file still being written.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The suffix of a file still being written.
pub const PART_SUFFIX: &str = ".part";

/// The part file `path` is written as: `NAME.<pid>.part`.
pub fn part_path(path: &Path) -> PathBuf {
    let mut part = path.as_os_str().to_owned();
    part.push(format!(".{}{PART_SUFFIX}", std::process::id()));
    PathBuf::from(part)
}

/// `NAME.<pid>.part` being written, published as `NAME` by [`PartFile::publish`].
pub struct PartFile {
    out: BufWriter<File>,
    part: PathBuf,
    path: PathBuf,
}

/// Creates (or truncates) `path` readable and writable by its owner only.
pub fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        // A file that was already there keeps its old mode otherwise.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}

/// Creates `dir` (and its parents) private to the user (0700) if it is not there.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

impl PartFile {
    /// Starts `path` + `.<pid>.part` (private to the user).
    pub fn create(path: &Path) -> io::Result<Self> {
        let part = part_path(path);
        let file = create_private(&part)?;
        Ok(Self { out: BufWriter::with_capacity(1 << 20, file), part, path: path.to_owned() })
    }

    /// The name the file will have once published.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes and fsyncs the file, renames it to its final name and fsyncs the directory.
    /// Returns the final path.
    pub fn publish(self) -> io::Result<PathBuf> {
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.part, &self.path)?;
        sync_dir(self.path.parent().unwrap_or(Path::new(".")))?;
        Ok(self.path)
    }

    /// Removes the unfinished file.
    pub fn discard(self) -> io::Result<()> {
        drop(self.out);
        std::fs::remove_file(&self.part)
    }
}

impl Write for PartFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// fsyncs a directory, so that a rename in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_file_is_invisible_until_published_and_private() {
        let dir = std::env::temp_dir().join(format!("pktstream-part-{}", std::process::id()));
        create_private_dir(&dir).unwrap();
        let path = dir.join("a.pcap");
        let mut f = PartFile::create(&path).unwrap();
        f.write_all(b"hello").unwrap();
        assert!(!path.exists());
        let part = format!("a.pcap.{}.part", std::process::id());
        assert!(dir.join(&part).exists());
        assert_eq!(part_path(&path), dir.join(&part));
        assert_eq!(f.publish().unwrap(), path);
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
        assert!(!dir.join(&part).exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let g = PartFile::create(&dir.join("b.pcap")).unwrap();
        g.discard().unwrap();
        assert!(!part_path(&dir.join("b.pcap")).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
