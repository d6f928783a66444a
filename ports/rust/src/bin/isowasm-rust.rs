//! Command-line front end of the Rust port.
//!
//! ```text
//! isowasm-rust run PROG.txt [--max-steps N] [--trace none|digest|text]
//!                           [--checkpoint-interval N] [--input FILE] [--canonical]
//! ```
//!
//! `--trace text` prints the canonical trace text (with `--canonical`, the
//! whole canonical reference file: instructions, then the trace) on stdout
//! and the status lines on stderr; the other modes print the status lines on
//! stdout. Exit status: 0 halted, 3 trapped, 4 budget exhausted, 2 usage or
//! malformed program.

use std::io::Write;
use std::process::ExitCode;

use isowasm_rust::machine::{run, RunOptions, RunOutcome, Status};
use isowasm_rust::parser::{check_input, format_instructions, parse_program};
use isowasm_rust::spec::{DEFAULT_CHECKPOINT_INTERVAL, DEFAULT_MAX_STEPS};
use isowasm_rust::trace::TraceMode;

const USAGE: &str = "usage: isowasm-rust run PROG.txt [--max-steps N] [--trace none|digest|text] \
[--checkpoint-interval N] [--input FILE] [--canonical]";

struct Args {
    program: String,
    input: Option<String>,
    opts: RunOptions,
    canonical: bool,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    match argv.next().as_deref() {
        Some("run") => {}
        Some("-h" | "--help") | None => return Err(USAGE.into()),
        Some(other) => return Err(format!("unknown command {other:?}\n{USAGE}")),
    }
    let mut program = None;
    let mut input = None;
    let mut canonical = false;
    let mut opts = RunOptions {
        max_steps: DEFAULT_MAX_STEPS,
        trace: TraceMode::None,
        checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
    };
    while let Some(arg) = argv.next() {
        let mut value = |name: &str| argv.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |name: &str, v: String| v.parse::<u64>().map_err(|_| format!("{name}: not a number: {v:?}"));
        match arg.as_str() {
            "--max-steps" => opts.max_steps = number("--max-steps", value("--max-steps")?)?,
            "--checkpoint-interval" => {
                opts.checkpoint_interval = number("--checkpoint-interval", value("--checkpoint-interval")?)?;
                if opts.checkpoint_interval == 0 {
                    return Err("--checkpoint-interval must be >= 1".into());
                }
            }
            "--trace" => {
                let v = value("--trace")?;
                opts.trace =
                    TraceMode::parse(&v).ok_or_else(|| format!("--trace: expected none, digest or text, not {v:?}"))?;
            }
            "--input" => input = Some(value("--input")?),
            "--canonical" => canonical = true,
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}\n{USAGE}")),
            path if program.is_none() => program = Some(path.to_string()),
            extra => return Err(format!("unexpected argument {extra:?}\n{USAGE}")),
        }
    }
    let program = program.ok_or_else(|| format!("no program file given\n{USAGE}"))?;
    Ok(Args {
        program,
        input,
        opts,
        canonical,
    })
}

fn status_lines(r: &RunOutcome) -> String {
    let mut s = format!("status: {}\n", r.status.name());
    if let Status::Trapped { trap, pc } = r.status {
        s.push_str(&format!("trap: {} at pc {pc}\n", trap.name()));
    }
    s.push_str(&format!("steps: {}\ntokens: {}\n", r.steps, r.tokens));
    s.push_str(&format!("output: {}\n", r.output.escape_ascii()));
    if let Some(d) = &r.digest {
        s.push_str(&format!("digest: {d}\n"));
    }
    for (steps, d) in r.checkpoints.iter().flatten() {
        s.push_str(&format!("checkpoint: {steps} {d}\n"));
    }
    s
}

fn main_inner() -> Result<ExitCode, String> {
    let args = parse_args(std::env::args().skip(1))?;
    let text = std::fs::read_to_string(&args.program).map_err(|e| format!("{}: cannot read: {e}", args.program))?;
    let program = parse_program(&text, &args.program).map_err(|e| e.message)?;
    let input = match &args.input {
        Some(path) => {
            let data = std::fs::read(path).map_err(|e| format!("{path}: cannot read: {e}"))?;
            check_input(&data)?;
            Some(data)
        }
        None => None,
    };
    let r = run(&program, input.as_deref(), &args.opts);
    let mut out = std::io::stdout().lock();
    let written = match &r.trace {
        Some(t) => {
            let head = if args.canonical {
                format_instructions(&program.code)
            } else {
                String::new()
            };
            eprint!("{}", status_lines(&r));
            out.write_all(head.as_bytes()).and_then(|_| out.write_all(t.as_bytes()))
        }
        None => out.write_all(status_lines(&r).as_bytes()),
    };
    written
        .and_then(|_| out.flush())
        .map_err(|e| format!("writing output: {e}"))?;
    Ok(ExitCode::from(match r.status {
        Status::Halted => 0,
        Status::Trapped { .. } => 3,
        Status::BudgetExhausted => 4,
    }))
}

fn main() -> ExitCode {
    match main_inner() {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}
