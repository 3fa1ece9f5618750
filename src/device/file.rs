//! Reading a local input file (a plan, a simulator profile, a backup)
//! within bounds: only a regular file, and at most [`MAX_INPUT_BYTES`], so a
//! FIFO without a writer, a silent `/dev/stdin` or `/dev/zero` given as a
//! file is refused at once instead of blocking the run or filling memory.
//! Here because the harness and the simulator both read such files and
//! this is the one module both import.

use std::io::{Error, ErrorKind, Read};
use std::path::Path;

/// The largest input file read (4 MiB). The shipped plans and profiles are
/// a few KiB; a backup holds one config answer of at most 256 KiB, twice.
pub const MAX_INPUT_BYTES: u64 = 4 << 20;

/// The bytes of the regular file at `path` (symbolic links followed), or
/// an error saying why not. Checked before the file is opened, so opening
/// a FIFO cannot block.
pub fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        return Err(Error::new(ErrorKind::InvalidInput, "is a directory"));
    }
    if !meta.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "not a regular file (a device, FIFO or socket); give the path of a file",
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("larger than {} MiB", MAX_INPUT_BYTES >> 20),
        ));
    }
    Ok(bytes)
}

/// [`read_bounded`] as UTF-8 text.
pub fn read_text_bounded(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_bounded(path)?)
        .map_err(|_| Error::new(ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_small_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let big = file("big.json", &vec![b' '; MAX_INPUT_BYTES as usize + 1]);
        let bad = file("bad.json", b"\xff{}");
        let ok = file("ok.json", b"{}");
        let missing = dir.path().join("missing");
        let mut cases: Vec<(&Path, &str)> = vec![
            (dir.path(), "is a directory"),
            (&big, "larger than 4 MiB"),
            (&bad, "not UTF-8"),
            (&missing, "No such file"),
        ];
        if cfg!(unix) {
            cases.push((Path::new("/dev/zero"), "not a regular file"));
        }
        for (path, expected) in cases {
            let e = read_text_bounded(path).unwrap_err().to_string();
            assert!(e.contains(expected), "{}: {e}", path.display());
        }
        assert_eq!(read_text_bounded(&ok).unwrap(), "{}");
    }
}
