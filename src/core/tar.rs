//! A tar archive as the engine's build API takes it (ustar headers with GNU long names), written
//! from entries handed in: the build context of `images build` is assembled in memory, without a
//! `tar` program or crate. Pure: the adapter walks the files and feeds them here.

const BLOCK: usize = 512;
/// The longest name (and link target) a ustar header holds; longer ones get a GNU long-name entry.
const NAME_LEN: usize = 100;

/// A tar archive being written: headers and data in 512-byte blocks, owned by root, mtime 0 (so
/// the same tree always makes the same archive, and the builder's cache holds).
#[derive(Debug, Default)]
pub struct Tar {
    buf: Vec<u8>,
}

impl Tar {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A regular file with its permission bits.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        self.header(path, mode, data.len(), b'0', "");
        self.data(data);
    }

    /// A directory (the name gets its trailing `/`).
    pub fn dir(&mut self, path: &str, mode: u32) {
        let name = format!("{}/", path.trim_end_matches('/'));
        self.header(&name, mode, 0, b'5', "");
    }

    /// A symbolic link to `target`, kept as a link.
    pub fn symlink(&mut self, path: &str, target: &str) {
        self.header(path, 0o777, 0, b'2', target);
    }

    /// The archive, closed by its two zero blocks.
    #[must_use]
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.resize(self.buf.len() + 2 * BLOCK, 0);
        self.buf
    }

    /// How many bytes the archive holds so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn data(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
        self.buf.resize(self.buf.len() + pad, 0);
    }

    fn header(&mut self, path: &str, mode: u32, size: usize, kind: u8, link: &str) {
        if link.len() > NAME_LEN {
            self.long(b'K', link);
        }
        if path.len() > NAME_LEN {
            self.long(b'L', path);
        }
        self.raw_header(path, mode, size, kind, link);
    }

    /// A GNU long-name (`L`) or long-link (`K`) entry: the full text as the data of a pseudo-file.
    fn long(&mut self, kind: u8, text: &str) {
        let mut data = text.as_bytes().to_vec();
        data.push(0);
        self.raw_header("././@LongLink", 0, data.len(), kind, "");
        self.data(&data);
    }

    fn raw_header(&mut self, path: &str, mode: u32, size: usize, kind: u8, link: &str) {
        let mut h = [0u8; BLOCK];
        put(&mut h[0..100], path.as_bytes());
        put(
            &mut h[100..108],
            octal(u64::from(mode & 0o7777), 7).as_bytes(),
        );
        put(&mut h[108..116], octal(0, 7).as_bytes());
        put(&mut h[116..124], octal(0, 7).as_bytes());
        put(&mut h[124..136], octal(size as u64, 11).as_bytes());
        put(&mut h[136..148], octal(0, 11).as_bytes());
        h[156] = kind;
        put(&mut h[157..257], link.as_bytes());
        // GNU's magic and version: what makes readers take the long-name entries.
        put(&mut h[257..265], b"ustar  \0");
        put(&mut h[265..297], b"root");
        put(&mut h[297..329], b"root");
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        put(&mut h[148..156], format!("{sum:06o}\0 ").as_bytes());
        self.buf.extend_from_slice(&h);
    }
}

/// `n` in octal, zero-padded to `width` digits (the field's last byte stays NUL).
fn octal(n: u64, width: usize) -> String {
    format!("{n:0width$o}")
}

/// Copies `value` into `field`, cut to its length (names are cut only after a long-name entry).
fn put(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message
mod tests {
    use super::*;

    fn field(h: &[u8], range: std::ops::Range<usize>) -> String {
        String::from_utf8_lossy(&h[range])
            .trim_end_matches('\0')
            .to_owned()
    }

    #[test]
    fn a_file_is_a_header_its_padded_data_and_the_end() {
        let mut tar = Tar::new();
        tar.file("VERSION", 0o644, b"v0.34.1");
        let out = tar.finish();
        assert_eq!(out.len(), 4 * BLOCK);
        assert_eq!(field(&out, 0..100), "VERSION");
        assert_eq!(field(&out, 100..108), "0000644");
        assert_eq!(field(&out, 124..136), "00000000007");
        assert_eq!(out[156], b'0');
        assert_eq!(&out[BLOCK..BLOCK + 7], b"v0.34.1");
        assert!(out[2 * BLOCK..].iter().all(|&b| b == 0));
        // The checksum counts its own field as spaces.
        let mut h = out[..BLOCK].to_vec();
        let stored = u32::from_str_radix(field(&h, 148..154).trim(), 8).unwrap();
        h[148..156].fill(b' ');
        assert_eq!(stored, h.iter().map(|&b| u32::from(b)).sum::<u32>());
    }

    #[test]
    fn long_names_and_links_get_gnu_entries() {
        let long = format!("vendor/{}/autoload.php", "x".repeat(120));
        let mut tar = Tar::new();
        tar.symlink(&long, &"y".repeat(130));
        tar.dir("cache", 0o755);
        let out = tar.finish();
        assert_eq!(out[156], b'K');
        assert_eq!(out[2 * BLOCK + 156], b'L');
        assert_eq!(field(&out, 3 * BLOCK..4 * BLOCK), format!("{long}"));
        assert_eq!(out[4 * BLOCK + 156], b'2');
        assert_eq!(field(&out, 5 * BLOCK..5 * BLOCK + 100), "cache/");
        assert_eq!(out[5 * BLOCK + 156], b'5');
    }
}
