//! The zlib encoding of `raw_traces.payload`.
//!
//! Every payload is one complete zlib stream (RFC 1950). New payloads are compressed against a
//! preset dictionary (the stream header's FDICT flag, followed by the dictionary's Adler-32):
//! one line of JSON is too short for deflate to find much to repeat inside it, while the keys,
//! enums and envelope every record shares are in the dictionary. The decoder reads the
//! dictionary id from the stream and picks that dictionary from [`DICTIONARIES`], so
//! payloads written before the dictionary existed (no FDICT) and payloads written with any
//! earlier dictionary stay readable. A dictionary, once shipped, is never changed or removed:
//! a new one is appended and becomes [`CURRENT`].
//!
//! One [`Compressor`] / [`Decompressor`] is reused for every payload: creating a zlib stream
//! allocates and clears its whole window, which costs more than compressing a 2 KB line.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Compression level: measured on the fast-path profile (docs/BENCHMARKS.md). zlib-rs level
/// 1 is its "quick" strategy (static Huffman codes only), a poor ratio on short lines.
pub const LEVEL: u32 = 1;

/// Every preset dictionary payloads may have been compressed with, oldest first; the
/// Adler-32 of its bytes is its id in the stream header. Append only (see the module doc).
/// Built by `tools/zdict/build.sh` from the real transcripts in
/// `../shared/fixtures-external` and the record shapes of `tests/data/claude-2.1`,
/// privacy rules applied (never from a generated benchmark corpus).
pub const DICTIONARIES: &[&[u8]] = &[include_bytes!("../../schemas/zdict/records-1.dict")];

/// Index in [`DICTIONARIES`] of the dictionary new payloads are compressed with.
pub const CURRENT: usize = DICTIONARIES.len() - 1;

/// Adler-32 (RFC 1950 §9), the dictionary id a zlib stream header carries.
pub fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the most that can be summed before `b` may overflow a u32.
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// The dictionary with this id, if we have one.
fn dictionary(id: u32) -> Option<&'static [u8]> {
    DICTIONARIES.iter().copied().find(|d| adler32(d) == id)
}

pub struct Compressor {
    z: Compress,
    dict: Option<&'static [u8]>,
}

impl Default for Compressor {
    fn default() -> Self {
        Compressor::with_dictionary(Some(DICTIONARIES[CURRENT]), LEVEL)
    }
}

impl Compressor {
    /// A compressor with another dictionary (or none) or level: for tests and benchmarks.
    pub fn with_dictionary(dict: Option<&'static [u8]>, level: u32) -> Compressor {
        Compressor {
            z: Compress::new(Compression::new(level), true),
            dict,
        }
    }

    /// A complete zlib stream holding `data`.
    pub fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        self.compress_into(data, &mut out);
        out
    }

    /// Appends a complete zlib stream holding `data` to `out`.
    pub fn compress_into(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        if self.stream(data, out).is_err() {
            // Compressing from memory into memory has no failure mode; fall back to the
            // simple path rather than losing the payload.
            out.truncate(start);
            out.extend_from_slice(&compress_once(data));
        }
    }

    fn stream(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), flate2::CompressError> {
        self.z.reset();
        if let Some(d) = self.dict {
            self.z.set_dictionary(d)?;
        }
        out.reserve(data.len() / 2 + 64);
        loop {
            let consumed = self.z.total_in() as usize;
            match self
                .z
                .compress_vec(&data[consumed..], out, FlushCompress::Finish)?
            {
                Status::StreamEnd => return Ok(()),
                _ => out.reserve(out.capacity().max(64)),
            }
        }
    }
}

/// A plain zlib stream without a dictionary.
fn compress_once(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), Compression::new(LEVEL));
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

pub struct Decompressor(Decompress);

impl Default for Decompressor {
    fn default() -> Self {
        Decompressor(Decompress::new(true))
    }
}

impl Decompressor {
    /// Decodes one zlib stream into `out` (cleared first). `None` when it is not valid zlib,
    /// names a dictionary we do not have, is followed by trailing bytes, or is not UTF-8.
    pub fn decompress_str<'a>(&mut self, data: &[u8], out: &'a mut Vec<u8>) -> Option<&'a str> {
        self.decompress(data, out)?;
        std::str::from_utf8(out).ok()
    }

    /// Decodes one zlib stream into `out` (cleared first). `None` as for
    /// [`Decompressor::decompress_str`], UTF-8 aside.
    pub fn decompress(&mut self, data: &[u8], out: &mut Vec<u8>) -> Option<()> {
        self.0.reset(true);
        out.clear();
        out.reserve(data.len() * 4 + 64);
        let mut dict_set = false;
        loop {
            let consumed = self.0.total_in() as usize;
            match self
                .0
                .decompress_vec(&data[consumed..], out, FlushDecompress::Finish)
            {
                Ok(Status::StreamEnd) => break,
                Ok(Status::Ok) | Ok(Status::BufError) => {
                    if consumed == data.len() && out.len() < out.capacity() {
                        return None;
                    }
                    out.reserve(out.capacity().max(64));
                }
                Err(e) => {
                    // The header asks for a preset dictionary: its Adler-32 says which.
                    let id = e.needs_dictionary()?;
                    if dict_set {
                        return None;
                    }
                    self.0.set_dictionary(dictionary(id)?).ok()?;
                    dict_set = true;
                }
            }
        }
        (self.0.total_in() as usize == data.len()).then_some(())
    }
}

/// Decodes one stored payload with a fresh [`Decompressor`] (tests, tools; hot loops reuse one).
pub fn decode(data: &[u8]) -> Option<String> {
    let mut buf = Vec::new();
    Decompressor::default()
        .decompress_str(data, &mut buf)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain_zlib(z: &[u8]) -> std::io::Result<String> {
        let mut plain = String::new();
        std::io::Read::read_to_string(&mut flate2::read::ZlibDecoder::new(z), &mut plain)?;
        Ok(plain)
    }

    const LINE: &str = r#"{"cwd":"/home/dev/app","gitBranch":"main","isSidechain":false,"message":{"content":[{"text":"Fixed the retry loop.","type":"text"}],"id":"msg_01","model":"claude-opus-4-6","role":"assistant","type":"message","usage":{"input_tokens":3,"output_tokens":20}},"parentUuid":null,"sessionId":"s1","timestamp":"2026-10-11T09:22:54.820Z","type":"assistant","userType":"external","uuid":"u1","version":"2.1.39"}"#;

    #[test]
    fn round_trips_with_the_current_dictionary() {
        let mut c = Compressor::default();
        let mut d = Decompressor::default();
        let mut buf = Vec::new();
        let big = "x".repeat(100_000) + &"abc".repeat(5000);
        for s in [
            "",
            "hello",
            big.as_str(),
            "{\"type\":\"user\"}",
            LINE,
            "é✓ 日本",
        ] {
            let z = c.compress(s.as_bytes());
            // The header says: preset dictionary, and which one.
            assert_eq!(z[1] & 0x20, 0x20, "FDICT set");
            let id = u32::from_be_bytes(z[2..6].try_into().unwrap());
            assert_eq!(id, adler32(DICTIONARIES[CURRENT]));
            assert_eq!(d.decompress_str(&z, &mut buf), Some(s));
        }
        // The dictionary is what makes a short record small.
        let with = c.compress(LINE.as_bytes()).len();
        let without = Compressor::with_dictionary(None, LEVEL)
            .compress(LINE.as_bytes())
            .len();
        assert!(with * 2 < without, "{with} vs {without}");
    }

    #[test]
    fn old_rows_without_a_dictionary_stay_readable() {
        // What every payload before the dictionary was: plain zlib, level 1.
        let mut d = Decompressor::default();
        let mut buf = Vec::new();
        for s in ["", LINE, "hello"] {
            let old = {
                use std::io::Write;
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(1));
                e.write_all(s.as_bytes()).unwrap();
                e.finish().unwrap()
            };
            assert_eq!(old[1] & 0x20, 0, "no FDICT");
            assert_eq!(d.decompress_str(&old, &mut buf), Some(s));
            // A decoder that just decoded a dictionary stream still reads old ones.
            let new = Compressor::default().compress(s.as_bytes());
            assert_eq!(d.decompress_str(&new, &mut buf), Some(s));
            assert_eq!(d.decompress_str(&old, &mut buf), Some(s));
        }
        // Without the dictionary a plain decoder cannot read a new payload; with it, it can.
        let new = Compressor::default().compress(LINE.as_bytes());
        assert!(plain_zlib(&new).is_err());
        let mut z = flate2::Decompress::new(true);
        let mut out = Vec::with_capacity(4096);
        let e = z
            .decompress_vec(&new, &mut out, FlushDecompress::Finish)
            .unwrap_err();
        assert_eq!(e.needs_dictionary(), Some(adler32(DICTIONARIES[CURRENT])));
        z.set_dictionary(DICTIONARIES[CURRENT]).unwrap();
        let used = z.total_in() as usize;
        z.decompress_vec(&new[used..], &mut out, FlushDecompress::Finish)
            .unwrap();
        assert_eq!(std::str::from_utf8(&out).unwrap(), LINE);
    }

    #[test]
    fn the_dictionary_id_selects_the_dictionary() {
        // Ids are distinct, so an id names one dictionary.
        let ids: Vec<u32> = DICTIONARIES.iter().map(|d| adler32(d)).collect();
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
        // Our Adler-32 is the one zlib writes into the header.
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        let big = vec![0xffu8; 100_000];
        let mut z = Compress::new(Compression::new(1), true);
        assert_eq!(z.set_dictionary(&big).unwrap(), adler32(&big));

        let mut d = Decompressor::default();
        let mut buf = Vec::new();
        // A stream compressed with a dictionary we do not have is rejected, not misread.
        static OTHER: &[u8] = b"\"type\":\"assistant\",\"message\":{\"role\":\"assistant\"}";
        let foreign = Compressor::with_dictionary(Some(OTHER), LEVEL).compress(LINE.as_bytes());
        assert_eq!(
            u32::from_be_bytes(foreign[2..6].try_into().unwrap()),
            adler32(OTHER)
        );
        assert_eq!(d.decompress_str(&foreign, &mut buf), None);
        // The same stream with its id rewritten to ours: the header checksum (FCHECK) still
        // holds (it covers only the first two bytes), the dictionary is found, but decoding
        // with the wrong dictionary fails the Adler-32 of the data.
        let mut relabelled = foreign.clone();
        relabelled[2..6].copy_from_slice(&adler32(DICTIONARIES[CURRENT]).to_be_bytes());
        assert_eq!(d.decompress_str(&relabelled, &mut buf), None);
        // And the decoder is fine afterwards.
        let ok = Compressor::default().compress(LINE.as_bytes());
        assert_eq!(d.decompress_str(&ok, &mut buf), Some(LINE));
    }

    #[test]
    fn garbage_is_rejected() {
        let mut c = Compressor::default();
        let mut d = Decompressor::default();
        let mut buf = Vec::new();
        assert_eq!(d.decompress_str(b"", &mut buf), None);
        assert_eq!(d.decompress_str(b"not zlib", &mut buf), None);
        let z = c.compress(b"truncated stream here, long enough to matter");
        for cut in [1, 3, 6, z.len() - 1] {
            assert_eq!(d.decompress_str(&z[..cut], &mut buf), None, "cut at {cut}");
        }
        // A flipped bit in the data fails its checksum.
        let mut flipped = c.compress(LINE.as_bytes());
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x10;
        assert_eq!(d.decompress_str(&flipped, &mut buf), None);
        // Trailing bytes after a complete stream.
        let mut trailing = c.compress(LINE.as_bytes());
        trailing.extend_from_slice(b"xx");
        assert_eq!(d.decompress_str(&trailing, &mut buf), None);
        // Valid zlib that is not UTF-8.
        let bin = c.compress(&[0xff, 0xfe, 0x00]);
        assert_eq!(d.decompress_str(&bin, &mut buf), None);
        assert!(d.decompress(&bin, &mut buf).is_some());
    }
}
