//! Bounds-checked reading and writing of big-endian fields. Nothing here can panic.

/// Reads fields from a message body; every read is checked against the remaining octets.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        let (&first, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(first)
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        let hi = self.u8()?;
        let lo = self.u8()?;
        Some(u16::from_be_bytes([hi, lo]))
    }

    pub(crate) fn array2(&mut self) -> Option<[u8; 2]> {
        Some([self.u8()?, self.u8()?])
    }

    /// Everything that is left (variable-length trailing fields).
    pub(crate) fn rest(self) -> &'a [u8] {
        self.rest
    }
}

/// Writes fields into a buffer whose size was checked beforehand; still never panics.
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> Writer<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        if let Some(slot) = self.buf.get_mut(self.pos) {
            *slot = v;
        }
        self.pos = self.pos.saturating_add(1);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) {
        let end = self.pos.saturating_add(v.len());
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.copy_from_slice(v);
        }
        self.pos = end;
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }
}
