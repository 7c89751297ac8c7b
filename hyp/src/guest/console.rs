//! The hypervisor-side end of each domain's emulated console: whole lines, each printed
//! with the domain's name in front, so the output of several domains stays readable.

use heapless::Vec;

use crate::console;

/// Longest line kept before it is printed anyway.
const LINE_MAX: usize = 200;

/// Collects one domain's console output into lines.
#[derive(Debug, Default)]
pub struct LineBuffer {
    line: Vec<u8, LINE_MAX>,
}

impl LineBuffer {
    /// Adds one byte the guest wrote; prints the line at a newline or when full.
    pub fn put(&mut self, domain: &str, byte: u8) {
        match byte {
            b'\n' => self.flush(domain),
            b'\r' => {}
            _ => {
                if self.line.push(byte).is_err() {
                    self.flush(domain);
                    let _ = self.line.push(byte);
                }
            }
        }
    }

    /// Prints an unfinished line, if there is one (at power-off and reset).
    pub fn flush_partial(&mut self, domain: &str) {
        if !self.line.is_empty() {
            self.flush(domain);
        }
    }

    /// Prints whatever is buffered.
    pub fn flush(&mut self, domain: &str) {
        console::write_prefixed_line(domain, &self.line);
        self.line.clear();
    }
}
