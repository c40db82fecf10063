//! The zlib encoding of `raw_traces.payload`.
//!
//! One [`Compressor`] / [`Decompressor`] is reused for every payload: creating a zlib stream
//! allocates and clears its whole window, which costs more than compressing a 2 KB line.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Compression level: fast, with most of the ratio (measured in docs/BENCHMARKS.md).
pub const LEVEL: u32 = 1;

pub struct Compressor(Compress);

impl Default for Compressor {
    fn default() -> Self {
        Compressor(Compress::new(Compression::new(LEVEL), true))
    }
}

impl Compressor {
    /// A complete zlib stream holding `data`.
    pub fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        self.0.reset();
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        loop {
            let consumed = self.0.total_in() as usize;
            let status = self
                .0
                .compress_vec(&data[consumed..], &mut out, FlushCompress::Finish);
            match status {
                Ok(Status::StreamEnd) => return out,
                Ok(_) => out.reserve(out.capacity().max(64)),
                // Compressing from memory into memory has no failure mode; fall back to the
                // simple path rather than losing the payload.
                Err(_) => return compress_once(data),
            }
        }
    }
}

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
    /// Decodes one zlib stream into `out` (cleared first). `None` when it is not valid zlib or
    /// not UTF-8.
    pub fn decompress_str<'a>(&mut self, data: &[u8], out: &'a mut Vec<u8>) -> Option<&'a str> {
        self.0.reset(true);
        out.clear();
        out.reserve(data.len() * 4 + 64);
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
                Err(_) => return None,
            }
        }
        std::str::from_utf8(out).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_plain_zlib() {
        let mut c = Compressor::default();
        let mut d = Decompressor::default();
        let mut buf = Vec::new();
        let big = "x".repeat(100_000) + &"abc".repeat(5000);
        for s in ["", "hello", big.as_str(), "{\"type\":\"user\"}"] {
            let z = c.compress(s.as_bytes());
            assert_eq!(d.decompress_str(&z, &mut buf), Some(s));
            // Readable by any zlib decoder.
            let mut plain = String::new();
            std::io::Read::read_to_string(&mut flate2::read::ZlibDecoder::new(&z[..]), &mut plain)
                .unwrap();
            assert_eq!(plain, s);
        }
        assert_eq!(d.decompress_str(b"not zlib", &mut buf), None);
        let z = c.compress(b"truncated stream here");
        assert_eq!(d.decompress_str(&z[..z.len() - 3], &mut buf), None);
    }
}
