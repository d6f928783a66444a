//! Program files (MACHINE.md §2): tokens → instructions + input, with the
//! load-time checks, each failure a one-line error naming the token index
//! and its line.

use std::fmt;

use crate::spec::{Op, Trap, GLOBALS, INPUT_BYTES, LOCALS_PER_FRAME, MAX_INSTRUCTIONS};

/// The token that closes the input section (and the commit written after it).
pub const INPUT_COMMIT: &str = "commit(+0,sts=0,bt=0)";

/// One instruction: an opcode and its 32-bit immediate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instr {
    pub op: Op,
    pub imm: u32,
}

/// A program that passed every load-time check: the machine may rely on
/// its branch targets being in range, its local and global indices being
/// below the limits, its halt codes being known and its last instruction not
/// falling through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    pub code: Vec<Instr>,
    /// The input section's bytes, without the terminating NUL.
    pub input: Vec<u8>,
}

/// A malformed program file; `Display` gives the one-line message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// A whitespace-separated token and the (1-based) line it starts on.
struct Token<'a> {
    text: &'a str,
    line: usize,
}

/// Token separators: ASCII and Unicode white space, as the reference's
/// `\S+` splitting treats them (MACHINE.md names spaces, tabs and newlines;
/// the other separators only matter for hand-edited files).
fn is_separator(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

fn tokenize(text: &str) -> Vec<Token<'_>> {
    let mut toks = Vec::with_capacity(text.len() / 3 + 1);
    let mut line = 1;
    let mut start: Option<(usize, usize)> = None; // (byte offset, line)
    for (i, c) in text.char_indices() {
        if is_separator(c) {
            if let Some((s, l)) = start.take() {
                toks.push(Token {
                    text: &text[s..i],
                    line: l,
                });
            }
            if c == '\n' {
                line += 1;
            }
        } else if start.is_none() {
            start = Some((i, line));
        }
    }
    if let Some((s, l)) = start {
        toks.push(Token {
            text: &text[s..],
            line: l,
        });
    }
    toks
}

/// Exactly two hex digits, either case.
pub fn hex_byte(tok: &str) -> Option<u8> {
    let b = tok.as_bytes();
    if b.len() != 2 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16);
    Some((digit(b[0])? * 16 + digit(b[1])?) as u8)
}

/// A token quoted the way Python's `repr` quotes a plain string, so the
/// message reads the same as the reference parser's for the same file.
fn quote(tok: &str) -> String {
    let q = if tok.contains('\'') && !tok.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut s = String::with_capacity(tok.len() + 2);
    s.push(q);
    for c in tok.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            c if c == q => {
                s.push('\\');
                s.push(c);
            }
            c if (c as u32) < 0x20 || c == '\x7f' => s.push_str(&format!("\\x{:02x}", c as u32)),
            c => s.push(c),
        }
    }
    s.push(q);
    s
}

/// Builds located errors for one file.
struct Errors<'t, 'a> {
    source: &'a str,
    toks: &'t [Token<'a>],
}

impl Errors<'_, '_> {
    /// An error at token `k` (`k` past the last token: at end of file).
    fn at(&self, k: usize, msg: impl fmt::Display) -> ParseError {
        let message = match self.toks.get(k) {
            Some(t) => format!("{}:{}: token {} {}: {}", self.source, t.line, k, quote(t.text), msg),
            None => format!("{}: at end of file: {}", self.source, msg),
        };
        ParseError { message }
    }
}

/// Parse and check a program file; `source` names it in error messages.
pub fn parse_program(text: &str, source: &str) -> Result<Program, ParseError> {
    let toks = tokenize(text);
    let e = Errors { source, toks: &toks };
    if toks.is_empty() {
        return Err(ParseError {
            message: format!("{source}: empty program file (expected '{{')"),
        });
    }
    if toks[0].text != "{" {
        return Err(e.at(0, "a program file starts with '{'"));
    }
    let close = match toks.iter().skip(1).position(|t| t.text == "}") {
        Some(p) => p + 1,
        None => return Err(e.at(toks.len(), "no closing '}' after the instructions")),
    };
    let body = close - 1;
    if body % 5 != 0 {
        return Err(ragged_section(&e, &toks, close));
    }
    let n = body / 5;
    if n == 0 {
        return Err(e.at(close, "the program has no instructions"));
    }
    if n > MAX_INSTRUCTIONS {
        return Err(e.at(close, format!("{n} instructions, over the limit of {MAX_INSTRUCTIONS}")));
    }
    let mut code = Vec::with_capacity(n);
    for pc in 0..n {
        let k = 1 + 5 * pc;
        let op = Op::from_name(toks[k].text).ok_or_else(|| e.at(k, format!("unknown opcode at pc {pc}")))?;
        let mut imm = 0u32;
        for j in 0..4 {
            let b = hex_byte(toks[k + 1 + j].text).ok_or_else(|| {
                e.at(
                    k + 1 + j,
                    format!("immediate byte {j} of pc {pc} is not two hex digits"),
                )
            })?;
            imm |= (b as u32) << (8 * j);
        }
        code.push(Instr { op, imm });
    }
    validate(&code).map_err(|(pc, msg)| e.at(1 + 5 * pc, msg))?;
    let input = parse_input(&e, &toks, close + 1)?;
    Ok(Program { code, input })
}

/// The instruction section is not a multiple of 5 tokens: point at the first
/// group that is not `op b b b b`.
fn ragged_section(e: &Errors, toks: &[Token], close: usize) -> ParseError {
    for (pc, k) in (1..close).step_by(5).enumerate() {
        if Op::from_name(toks[k].text).is_none() {
            return e.at(k, format!("unknown opcode at pc {pc}"));
        }
        for j in 1..5 {
            if k + j >= close {
                return e.at(
                    close,
                    format!(
                        "pc {pc} has {} immediate bytes; each instruction is an opcode and 4 bytes",
                        j - 1
                    ),
                );
            }
            if hex_byte(toks[k + j].text).is_none() {
                return e.at(
                    k + j,
                    format!("expected immediate byte {} of pc {pc} (two hex digits); each instruction is an opcode and 4 bytes", j - 1),
                );
            }
        }
    }
    e.at(close, "instruction section is not a multiple of 5 tokens")
}

/// The load-time checks on instructions (MACHINE.md §2), in pc order.
/// Errors are (pc, message).
fn validate(code: &[Instr]) -> Result<(), (usize, String)> {
    let n = code.len();
    for (pc, ins) in code.iter().enumerate() {
        let imm = ins.imm;
        let op = ins.op;
        if op == Op::InputBase && pc != 0 {
            return Err((
                pc,
                format!("input_base at pc {pc}; it may only be the first instruction"),
            ));
        }
        if op.uses_local() && imm as usize >= LOCALS_PER_FRAME {
            return Err((
                pc,
                format!("local index {imm} at pc {pc}, limit is {LOCALS_PER_FRAME} locals per frame"),
            ));
        }
        if op.uses_global() && imm as usize >= GLOBALS {
            return Err((pc, format!("global index {imm} at pc {pc}, limit is {GLOBALS} globals")));
        }
        if op == Op::Halt && imm != 0 && Trap::from_code(imm).is_none() {
            return Err((
                pc,
                format!("halt code {imm} at pc {pc} is neither 0 nor a trap code (1..5)"),
            ));
        }
        if op.is_branch() {
            let target = pc as i64 + 1 + imm as i32 as i64;
            if target < 0 || target >= n as i64 {
                return Err((
                    pc,
                    format!(
                        "{} at pc {pc} targets pc {target}, outside the program (0..{})",
                        op.name(),
                        n - 1
                    ),
                ));
            }
        }
    }
    let last = code[n - 1].op;
    if !last.ends_program() {
        return Err((
            n - 1,
            format!(
                "the last instruction ({}) can fall off the end; it must be halt, br or return",
                last.name()
            ),
        ));
    }
    Ok(())
}

/// The input section from token `k` on: absent, or input tokens, `00`,
/// `commit(+0,sts=0,bt=0)`, and nothing after.
fn parse_input(e: &Errors, toks: &[Token], mut k: usize) -> Result<Vec<u8>, ParseError> {
    let mut out = Vec::new();
    if k == toks.len() {
        return Ok(out);
    }
    let start = k;
    loop {
        let Some(t) = toks.get(k) else {
            return Err(e.at(k, "input section has no terminating 00"));
        };
        let t = t.text;
        if t == INPUT_COMMIT {
            return Err(e.at(k, "input section has no terminating 00 before its commit"));
        }
        let byte = match t.as_bytes() {
            [c] if is_printable_input(*c) => *c,
            _ => match hex_byte(t) {
                Some(b) => b,
                None => {
                    return Err(e.at(
                        k,
                        format!(
                            "input byte {} is neither a printable character nor two hex digits",
                            k - start
                        ),
                    ))
                }
            },
        };
        if byte == 0 {
            break;
        }
        if out.len() == INPUT_BYTES {
            return Err(e.at(k, format!("input is over the limit of {INPUT_BYTES} bytes")));
        }
        out.push(byte);
        k += 1;
    }
    if toks.get(k + 1).map(|t| t.text) != Some(INPUT_COMMIT) {
        return Err(e.at(
            k + 1,
            format!("expected {INPUT_COMMIT} after the input's terminating 00"),
        ));
    }
    if k + 2 != toks.len() {
        return Err(e.at(k + 2, "unexpected token after the input section"));
    }
    Ok(out)
}

/// Bytes written as themselves in the input section: printable non-space
/// ASCII other than the braces.
pub fn is_printable_input(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b'{' && b != b'}'
}

/// Check an input given apart from the program file (it must satisfy what
/// the input section does: no NUL, at most `INPUT_BYTES`).
pub fn check_input(data: &[u8]) -> Result<(), String> {
    if let Some(i) = data.iter().position(|&b| b == 0) {
        return Err(format!(
            "input: input byte {i} is 00; the input is NUL-terminated and cannot contain it"
        ));
    }
    if data.len() > INPUT_BYTES {
        return Err(format!(
            "input: input is {} bytes, over the limit of {INPUT_BYTES}",
            data.len()
        ));
    }
    Ok(())
}

/// The `{ ... }` part of the canonical file: one `op b0 b1 b2 b3` line per
/// instruction.
pub fn format_instructions(code: &[Instr]) -> String {
    let mut s = String::with_capacity(code.len() * 24 + 4);
    s.push_str("{\n");
    for ins in code {
        let b = ins.imm.to_le_bytes();
        s.push_str(&format!(
            "{} {:02x} {:02x} {:02x} {:02x}\n",
            ins.op.name(),
            b[0],
            b[1],
            b[2],
            b[3]
        ));
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Program, String> {
        parse_program(text, "p").map_err(|e| e.message)
    }

    fn err(text: &str) -> String {
        parse(text).expect_err("should be rejected")
    }

    #[test]
    fn minimal_program() {
        let p = parse("{\nhalt 00 00 00 00\n}\n").unwrap();
        assert_eq!(p.code, vec![Instr { op: Op::Halt, imm: 0 }]);
        assert!(p.input.is_empty());
    }

    #[test]
    fn immediates_are_little_endian_any_case() {
        let p = parse("{ i32.const 01 02 Ab fF halt 00 00 00 00 }").unwrap();
        assert_eq!(p.code[0].imm, 0xffab0201);
    }

    #[test]
    fn input_section() {
        let p = parse("{\nhalt 00 00 00 00\n}\nh i 20 7b 0a 00 commit(+0,sts=0,bt=0)\n").unwrap();
        assert_eq!(p.input, b"hi {\n");
        let p = parse("{ halt 00 00 00 00 } 00 commit(+0,sts=0,bt=0)").unwrap();
        assert!(p.input.is_empty());
    }

    #[test]
    fn located_errors() {
        assert_eq!(err(""), "p: empty program file (expected '{')");
        assert_eq!(err("halt"), "p:1: token 0 'halt': a program file starts with '{'");
        assert_eq!(
            err("{ halt 00 00 00 00"),
            "p: at end of file: no closing '}' after the instructions"
        );
        assert!(err("{\nhalt 00 00 00 00\nnope 00 00 00 00\n}").starts_with("p:3: token 6 'nope': unknown opcode"));
        assert!(err("{\nhalt 00 00 0g 00\n}").starts_with("p:2: token 4 '0g': "));
        assert!(err("{\nhalt 00 00 00\n}").starts_with("p:3: token 5 '}': "));
        assert!(err("{\ni32.const 00 00 00\nhalt 00 00 00 00\n}").starts_with("p:3: token 5 'halt': "));
        assert!(err("{ }").starts_with("p:1: token 1 '}': the program has no instructions"));
        assert!(err("{ halt 00 00 00 00 } x").starts_with("p: at end of file: input section has no terminating 00"));
        assert!(err("{ halt 00 00 00 00 } x commit(+0,sts=0,bt=0)").starts_with("p:1: token 8 'commit"));
        assert!(err("{ halt 00 00 00 00 } xy 00 commit(+0,sts=0,bt=0)").starts_with("p:1: token 7 'xy': input byte 0"));
        assert!(err("{ halt 00 00 00 00 } { 00 commit(+0,sts=0,bt=0)").starts_with("p:1: token 7 '{': "));
        assert!(err("{ halt 00 00 00 00 } 00").starts_with("p: at end of file: expected commit"));
        assert!(err("{ halt 00 00 00 00 } 00 commit(+0,sts=0,bt=0) 00").starts_with("p:1: token 9 '00': unexpected"));
        assert!(err("{ halt 00 00 00 00 } ff' 00 commit(+0,sts=0,bt=0)").starts_with("p:1: token 7 \"ff'\": "));
    }

    #[test]
    fn load_time_checks() {
        let at = |s: &str| err(s).split(':').take(3).collect::<Vec<_>>().join(":");
        assert_eq!(
            at("{ halt 00 00 00 00 input_base 00 00 00 00 halt 00 00 00 00 }"),
            "p:1: token 6 'input_base'"
        );
        assert!(err("{ local.get 00 01 00 00 halt 00 00 00 00 }").contains("local index 256"));
        assert!(parse("{ local.tee ff 00 00 00 halt 00 00 00 00 }").is_ok());
        assert!(err("{ global.set 00 01 00 00 halt 00 00 00 00 }").contains("global index 256"));
        assert!(parse("{ global.get ff 00 00 00 halt 00 00 00 00 }").is_ok());
        assert!(err("{ halt 06 00 00 00 }").contains("halt code 6"));
        assert!(parse("{ halt 04 00 00 00 }").is_ok());
        assert!(err("{ br 00 00 00 00 }").contains("targets pc 1"));
        assert!(parse("{ br ff ff ff ff }").is_ok());
        assert!(err("{ br fe ff ff ff }").contains("targets pc -1"));
        assert!(err("{ halt 00 00 00 00 call 01 00 00 00 halt 00 00 00 00 }").contains("call at pc 1 targets pc 3"));
        assert!(err("{ halt 00 00 00 00 i32.const 00 00 00 00 }").contains("can fall off the end"));
        assert!(err("{ br_if ff ff ff ff }").contains("can fall off the end"));
        assert!(parse("{ return 00 00 00 00 }").is_ok());
    }

    #[test]
    fn input_limits() {
        assert!(check_input(b"ab\0").unwrap_err().contains("byte 2 is 00"));
        assert!(check_input(&vec![b'a'; INPUT_BYTES]).is_ok());
        assert!(check_input(&vec![b'a'; INPUT_BYTES + 1]).is_err());
        let mut text = String::from("{ halt 00 00 00 00 } ");
        text.push_str(&"a ".repeat(INPUT_BYTES + 1));
        text.push_str("00 commit(+0,sts=0,bt=0)");
        assert!(err(&text).contains("over the limit"));
    }

    #[test]
    fn canonical_instructions() {
        let p = parse("{ i32.const 0A 00 00 80   halt 00 00 00 00 }").unwrap();
        assert_eq!(
            format_instructions(&p.code),
            "{\ni32.const 0a 00 00 80\nhalt 00 00 00 00\n}\n"
        );
    }
}
