//! A checksummed envelope for small files (the manifest): magic, version, length, crc32c, payload.

use crate::bin_io::{Get, Put};
use crate::error::{Error, Result};

const ENVELOPE_HEADER: usize = 8 + 4 + 8 + 4;

/// Wraps `payload` with `magic`, `version`, its length and its crc32c.
pub fn seal(magic: [u8; 8], version: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Put(Vec::with_capacity(ENVELOPE_HEADER + payload.len()));
    p.0.extend_from_slice(&magic);
    p.u32(version);
    p.u64(payload.len() as u64);
    p.u32(crc32c::crc32c(payload));
    p.0.extend_from_slice(payload);
    p.0
}

/// Checks an envelope made by [`seal`] and returns its payload.
///
/// # Errors
/// [`Error::Corrupt`] for wrong magic, a length that disagrees or a checksum mismatch;
/// [`Error::UnsupportedVersion`] for a version above `max_version`.
pub fn open(magic: [u8; 8], max_version: u32, bytes: &[u8]) -> Result<(u32, &[u8])> {
    let mut g = Get::new(bytes, "envelope");
    if g.take(8)? != magic {
        return Err(Error::corrupt("wrong magic bytes"));
    }
    let version = g.u32()?;
    if version == 0 || version > max_version {
        return Err(Error::UnsupportedVersion {
            version,
            supported: max_version,
        });
    }
    let len = g.u64()?;
    let crc = g.u32()?;
    if bytes.len() as u64 - ENVELOPE_HEADER as u64 != len {
        return Err(Error::corrupt(format!(
            "payload is {} bytes, the header says {len} (truncated?)",
            bytes.len() - ENVELOPE_HEADER
        )));
    }
    let payload = &bytes[ENVELOPE_HEADER..];
    if crc32c::crc32c(payload) != crc {
        return Err(Error::corrupt("checksum mismatch"));
    }
    Ok((version, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_corruption_is_caught() {
        let sealed = seal(*b"TESTMAGI", 1, b"hello world");
        assert_eq!(
            open(*b"TESTMAGI", 1, &sealed).expect("valid"),
            (1, &b"hello world"[..])
        );
        for cut in 0..sealed.len() {
            assert!(
                open(*b"TESTMAGI", 1, &sealed[..cut]).is_err(),
                "truncated at {cut}"
            );
        }
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            assert!(open(*b"TESTMAGI", 1, &bad).is_err(), "flipped byte {i}");
        }
        assert!(matches!(
            open(*b"TESTMAGI", 1, &seal(*b"TESTMAGI", 2, b"x")),
            Err(Error::UnsupportedVersion { version: 2, .. })
        ));
    }
}
