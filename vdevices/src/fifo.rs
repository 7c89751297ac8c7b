//! The byte FIFO of the emulated UARTs.

/// A byte FIFO of at most `N` entries.
#[derive(Clone, Debug)]
pub(crate) struct Fifo<const N: usize> {
    buf: [u8; N],
    head: usize,
    /// Bytes queued.
    pub(crate) len: usize,
}

impl<const N: usize> Fifo<N> {
    /// An empty FIFO.
    pub(crate) const fn new() -> Self {
        Self {
            buf: [0; N],
            head: 0,
            len: 0,
        }
    }

    /// Queues `byte`; false (and the byte dropped) when full.
    pub(crate) fn push(&mut self, byte: u8) -> bool {
        if self.len == N {
            return false;
        }
        self.buf[(self.head + self.len) % N] = byte;
        self.len += 1;
        true
    }

    /// The oldest byte, taken out.
    pub(crate) fn pop(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.head = (self.head + 1) % N;
        self.len -= 1;
        Some(byte)
    }

    /// The oldest byte, left in.
    pub(crate) fn peek(&self) -> Option<u8> {
        (self.len > 0).then(|| self.buf[self.head])
    }

    /// Empties it.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }
}
