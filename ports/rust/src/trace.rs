//! Trace emission (MACHINE.md §5): canonical text, the incremental SHA-256
//! digest and its checkpoints.
//!
//! The machine reports each step to a [`Sink`]. [`NoTrace`] ignores
//! everything (and, being a zero-sized type with `ACTIVE = false`, compiles
//! away); [`TextTrace`] writes canonical text into a buffer that is hashed
//! as it fills, and optionally kept whole.

use sha2::{Digest, Sha256};

use crate::parser::{is_printable_input, INPUT_COMMIT};
use crate::spec::Trap;

/// What a run records of its trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceMode {
    None,
    Digest,
    Text,
}

impl TraceMode {
    pub fn parse(s: &str) -> Option<TraceMode> {
        match s {
            "none" => Some(TraceMode::None),
            "digest" => Some(TraceMode::Digest),
            "text" => Some(TraceMode::Text),
            _ => None,
        }
    }
}

// The fixed tails of each step's line (every token before them is followed
// by one space, so they carry no leading space).
pub const PUSH: &[u8] = b"commit(+1,sts=1,bt=0)\n";
pub const POP1: &[u8] = b"commit(-1,sts=0,bt=0)\n";
pub const KEEP: &[u8] = b"commit(+0,sts=0,bt=0)\n";
pub const SELECT: &[u8] = b"commit(-2,sts=1,bt=0)\n";
pub const BINARY: &[u8] = b"commit(-1,sts=1,bt=0)\n";
pub const UNARY: &[u8] = b"commit(+0,sts=1,bt=0)\n";
pub const STORE: &[u8] = b"commit(-2,sts=0,bt=0)\n";
pub const BR: &[u8] = b"commit(+0,sts=0,bt=1)\n";
pub const BR_IF_TAKEN: &[u8] = b"commit(-1,sts=0,bt=1)\n";
pub const BR_IF_NOT_TAKEN: &[u8] = b"commit(-1,sts=0,bt=0)\n";
pub const CALL: &[u8] = b"call_commit\n";
pub const RETURN: &[u8] = b"return_commit\n";
pub const HALT: &[u8] = b"halt\n";
const BRANCH_TAKEN: &[u8] = b"branch_taken\n";

/// Receives a run's steps as tokens. Every method writes whole lines.
pub trait Sink {
    /// False for a sink that records nothing: the machine then skips work
    /// that only feeds the trace (flag computation).
    const ACTIVE: bool;
    /// The input section that opens every trace.
    fn input_section(&mut self, data: &[u8]);
    /// `n` value bytes of `v`, lowest first, byte i flagged when bit i of
    /// `flags` is set; then `tail`.
    fn value(&mut self, v: u32, flags: u8, n: usize, tail: &'static [u8]);
    /// A line with no value bytes (`commit(...)`, `halt`).
    fn line(&mut self, tail: &'static [u8]);
    /// `branch_taken`, then `v`'s 4 bytes (flagged per `flags`), then `tail`.
    fn branch(&mut self, v: u32, flags: u8, tail: &'static [u8]);
    /// `out(c)`.
    fn out(&mut self, byte: u8);
    /// `trap(NAME)`.
    fn trap(&mut self, trap: Trap);
}

/// Records nothing.
pub struct NoTrace;

impl Sink for NoTrace {
    const ACTIVE: bool = false;
    #[inline(always)]
    fn input_section(&mut self, _: &[u8]) {}
    #[inline(always)]
    fn value(&mut self, _: u32, _: u8, _: usize, _: &'static [u8]) {}
    #[inline(always)]
    fn line(&mut self, _: &'static [u8]) {}
    #[inline(always)]
    fn branch(&mut self, _: u32, _: u8, _: &'static [u8]) {}
    #[inline(always)]
    fn out(&mut self, _: u8) {}
    #[inline(always)]
    fn trap(&mut self, _: Trap) {}
}

/// `"xx "` for every byte, then `"xx' "`: index `b | flag << 8`.
static BYTE_TOKENS: [[u8; 4]; 512] = byte_tokens();

const fn byte_tokens() -> [[u8; 4]; 512] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 4]; 512];
    let mut i = 0;
    while i < 512 {
        let b = i & 255;
        t[i][0] = HEX[b >> 4];
        t[i][1] = HEX[b & 15];
        if i < 256 {
            t[i][2] = b' ';
        } else {
            t[i][2] = b'\'';
            t[i][3] = b' ';
        }
        i += 1;
    }
    t
}

/// The text of one byte token with its separator: `"xx "` or `"xx' "`.
#[inline(always)]
fn byte_token(b: u8, flagged: bool) -> &'static [u8] {
    let t = &BYTE_TOKENS[b as usize | (flagged as usize) << 8];
    &t[..3 + flagged as usize]
}

/// Unhashed text past this many bytes is fed to the hasher.
const HASH_CHUNK: usize = 1 << 16;

/// Canonical text with a running SHA-256 and checkpoints.
pub struct TextTrace {
    buf: Vec<u8>,
    /// Bytes of `buf` already hashed (always 0 when text is not kept).
    hashed: usize,
    keep: bool,
    hasher: Sha256,
    checkpoints: Vec<(u64, String)>,
}

impl TextTrace {
    /// `keep`: retain the whole text (trace mode "text"), else only hash it.
    pub fn new(keep: bool) -> TextTrace {
        TextTrace {
            buf: Vec::with_capacity(HASH_CHUNK + 256),
            hashed: 0,
            keep,
            hasher: Sha256::new(),
            checkpoints: Vec::new(),
        }
    }

    fn flush(&mut self) {
        self.hasher.update(&self.buf[self.hashed..]);
        if self.keep {
            self.hashed = self.buf.len();
        } else {
            self.buf.clear();
        }
    }

    #[inline(always)]
    fn wrote(&mut self) {
        if self.buf.len() - self.hashed >= HASH_CHUNK {
            self.flush();
        }
    }

    #[inline(always)]
    fn bytes(&mut self, v: u32, flags: u8, n: usize) {
        for (i, b) in v.to_le_bytes().into_iter().enumerate().take(n) {
            self.buf.extend_from_slice(byte_token(b, flags >> i & 1 != 0));
        }
    }

    /// Record (steps, digest of the text so far).
    pub fn checkpoint(&mut self, steps: u64) {
        self.flush();
        let d = self.hasher.clone().finalize();
        self.checkpoints.push((steps, hex(&d)));
    }

    /// The final digest, the checkpoints, and the text when kept.
    pub fn finish(mut self) -> (String, Vec<(u64, String)>, Option<String>) {
        self.flush();
        let digest = hex(&self.hasher.finalize());
        let text = if self.keep {
            // Every byte written is ASCII (tokens are built from ASCII pieces).
            Some(String::from_utf8(self.buf).expect("trace text is ASCII"))
        } else {
            None
        };
        (digest, self.checkpoints, text)
    }
}

impl Sink for TextTrace {
    const ACTIVE: bool = true;

    fn input_section(&mut self, data: &[u8]) {
        for &b in data {
            if is_printable_input(b) {
                self.buf.extend_from_slice(&[b, b' ']);
            } else {
                self.buf.extend_from_slice(byte_token(b, false));
            }
            self.wrote();
        }
        self.buf.extend_from_slice(b"00 ");
        self.buf.extend_from_slice(INPUT_COMMIT.as_bytes());
        self.buf.push(b'\n');
        self.wrote();
    }

    #[inline(always)]
    fn value(&mut self, v: u32, flags: u8, n: usize, tail: &'static [u8]) {
        self.bytes(v, flags, n);
        self.buf.extend_from_slice(tail);
        self.wrote();
    }

    #[inline(always)]
    fn line(&mut self, tail: &'static [u8]) {
        self.buf.extend_from_slice(tail);
        self.wrote();
    }

    #[inline(always)]
    fn branch(&mut self, v: u32, flags: u8, tail: &'static [u8]) {
        self.buf.extend_from_slice(BRANCH_TAKEN);
        self.value(v, flags, 4, tail);
    }

    #[inline(always)]
    fn out(&mut self, byte: u8) {
        self.buf.extend_from_slice(b"out(");
        if (0x21..=0x7e).contains(&byte) {
            self.buf.push(byte);
        } else {
            self.buf.extend_from_slice(&byte_token(byte, false)[..2]);
        }
        self.buf.extend_from_slice(b")\n");
        self.wrote();
    }

    fn trap(&mut self, trap: Trap) {
        self.buf.extend_from_slice(b"trap(");
        self.buf.extend_from_slice(trap.name().as_bytes());
        self.buf.extend_from_slice(b")\n");
        self.wrote();
    }
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 hex of a whole text (for tests and the CLI).
pub fn digest_text(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// Tokens in canonical text: each is followed by exactly one space or newline.
pub fn count_tokens(text: &str) -> u64 {
    text.bytes().filter(|&b| b == b' ' || b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(f: impl FnOnce(&mut TextTrace)) -> String {
        let mut t = TextTrace::new(true);
        f(&mut t);
        t.finish().2.unwrap()
    }

    #[test]
    fn byte_tokens_and_flags() {
        assert_eq!(
            render(|t| t.value(0x0403_02ff, 0b0001, 4, PUSH)),
            "ff' 02 03 04 commit(+1,sts=1,bt=0)\n"
        );
        assert_eq!(
            render(|t| t.value(0xffff_ffff, 0b1111, 4, UNARY)),
            "ff' ff' ff' ff' commit(+0,sts=1,bt=0)\n"
        );
        assert_eq!(
            render(|t| t.value(0xabcd, 0, 2, STORE)),
            "cd ab commit(-2,sts=0,bt=0)\n"
        );
        assert_eq!(render(|t| t.value(0x41, 0, 1, STORE)), "41 commit(-2,sts=0,bt=0)\n");
    }

    #[test]
    fn lines() {
        assert_eq!(
            render(|t| t.branch(0xffff_fffe, 0, BR)),
            "branch_taken\nfe ff ff ff commit(+0,sts=0,bt=1)\n"
        );
        assert_eq!(
            render(|t| t.branch(3, 0, CALL)),
            "branch_taken\n03 00 00 00 call_commit\n"
        );
        assert_eq!(render(|t| t.out(b'A')), "out(A)\n");
        assert_eq!(render(|t| t.out(b'{')), "out({)\n");
        assert_eq!(render(|t| t.out(b' ')), "out(20)\n");
        assert_eq!(render(|t| t.out(0)), "out(00)\n");
        assert_eq!(render(|t| t.trap(Trap::StackUnderflow)), "trap(stack_underflow)\n");
        assert_eq!(render(|t| t.line(HALT)), "halt\n");
    }

    #[test]
    fn input_section_tokens() {
        assert_eq!(render(|t| t.input_section(b"")), "00 commit(+0,sts=0,bt=0)\n");
        assert_eq!(
            render(|t| t.input_section(b"a }\x7f~")),
            "a 20 7d 7f ~ 00 commit(+0,sts=0,bt=0)\n"
        );
    }

    #[test]
    fn digest_and_checkpoints_are_of_the_text_so_far() {
        let mut t = TextTrace::new(false);
        t.input_section(b"x");
        t.checkpoint(0);
        for i in 0..100_000u32 {
            t.value(i, (i & 15) as u8, 4, PUSH);
        }
        t.checkpoint(100_000);
        let (digest, cps, text) = t.finish();
        assert!(text.is_none());
        let full = render(|t| {
            t.input_section(b"x");
            for i in 0..100_000u32 {
                t.value(i, (i & 15) as u8, 4, PUSH);
            }
        });
        assert_eq!(digest, digest_text(&full));
        assert_eq!(cps[0], (0, digest_text("x 00 commit(+0,sts=0,bt=0)\n")));
        assert_eq!(cps[1], (100_000, digest));
        assert_eq!(count_tokens(&full), 3 + 5 * 100_000);
    }
}
