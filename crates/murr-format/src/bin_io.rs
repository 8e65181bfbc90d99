//! Little-endian field encoding for the footer and the manifest envelope.

use crate::error::{Error, Result};

/// Appends little-endian fields to a buffer.
#[derive(Debug, Default)]
pub(crate) struct Put(pub(crate) Vec<u8>);

impl Put {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn str(&mut self, s: &str) -> Result<()> {
        let len =
            u16::try_from(s.len()).map_err(|_| Error::invalid("name longer than 65535 bytes"))?;
        self.u16(len);
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Reads little-endian fields, every read bounds-checked.
#[derive(Debug)]
pub(crate) struct Get<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Get<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Get {
            bytes,
            pos: 0,
            what,
        }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                Error::corrupt(format!(
                    "{} truncated: needs {n} bytes at offset {} of {}",
                    self.what,
                    self.pos,
                    self.bytes.len()
                ))
            })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }
    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub(crate) fn str(&mut self) -> Result<&'a str> {
        let len = usize::from(self.u16()?);
        let what = self.what;
        std::str::from_utf8(self.take(len)?)
            .map_err(|_| Error::corrupt(format!("{what} holds a name that is not utf-8")))
    }
    pub(crate) fn finished(&self) -> bool {
        self.pos == self.bytes.len()
    }
}
