//! The command line's usage errors, one by one: each exits 2 with one
//! `error:` line naming the problem (written for the survivors of mutation
//! testing, ci/mutation.py: an unknown option was taken for the program path).

use std::process::Command;

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_isowasm-rust")).args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn usage_error(args: &[&str], message: &str) {
    let (code, out, err) = cli(args);
    assert_eq!((code, out.as_str()), (2, ""), "{args:?}: {err}");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    assert!(err.contains(message), "{args:?}: expected {message:?} in {err:?}");
}

#[test]
fn unknown_options_are_named_not_read_as_files() {
    usage_error(&["run", "--bogus"], "unknown option --bogus\nusage: isowasm-rust run");
    usage_error(&["run", "p.txt", "--tracee", "text"], "unknown option --tracee");
    usage_error(&["run", "--", "p.txt"], "unknown option --");
}

#[test]
fn arguments_and_values() {
    usage_error(&[], "usage: isowasm-rust run");
    usage_error(&["--help"], "usage: isowasm-rust run");
    usage_error(&["walk", "p.txt"], "unknown command \"walk\"");
    usage_error(&["run"], "no program file given");
    usage_error(&["run", "a.txt", "b.txt"], "unexpected argument \"b.txt\"");
    usage_error(&["run", "a.txt", "--max-steps"], "--max-steps needs a value");
    usage_error(&["run", "a.txt", "--max-steps", "ten"], "--max-steps: not a number: \"ten\"");
    usage_error(&["run", "a.txt", "--checkpoint-interval", "0"], "--checkpoint-interval must be >= 1");
    usage_error(&["run", "a.txt", "--trace", "all"], "--trace: expected none, digest or text, not \"all\"");
    usage_error(&["run", "/nonexistent/a.txt"], "/nonexistent/a.txt: cannot read");
}
