//! The command-line binary, end to end.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

// One file per call: the tests run on parallel threads of one process, and
// two of them run the same program (a name derived from the program raced:
// one test removed the file while the other's binary was opening it).
static CALLS: AtomicUsize = AtomicUsize::new(0);

fn run_cli(program: &str, args: &[&str]) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!("isowasm-rust-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("p{}.txt", CALLS.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, program).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_isowasm-rust"))
        .arg("run")
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const HELLO: &str = "{\ni32.const 48 00 00 00\noutput 00 00 00 00\nhalt 00 00 00 00\n}\nx 00 commit(+0,sts=0,bt=0)\n";

#[test]
fn text_trace_on_stdout() {
    let (code, out, err) = run_cli(HELLO, &["--trace", "text"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "x 00 commit(+0,sts=0,bt=0)\n48 00 00 00 commit(+1,sts=1,bt=0)\nout(H)\nhalt\n"
    );
    assert!(err.contains("status: halted"));
    let (_, out, _) = run_cli(HELLO, &["--trace", "text", "--canonical"]);
    assert!(out.starts_with("{\ni32.const 48 00 00 00\noutput 00 00 00 00\nhalt 00 00 00 00\n}\nx 00 commit"));
}

#[test]
fn status_lines_and_exit_codes() {
    let (code, out, _) = run_cli(HELLO, &["--trace", "digest"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("status: halted\nsteps: 3\ntokens: 10\noutput: H\ndigest: "));
    let (code, out, _) = run_cli("{ br ff ff ff ff }", &["--max-steps", "7"]);
    assert_eq!((code, out.lines().next()), (4, Some("status: budget-exhausted")));
    let (code, out, _) = run_cli("{ drop 00 00 00 00 halt 00 00 00 00 }", &[]);
    assert_eq!(code, 3);
    assert!(out.contains("trap: stack_underflow at pc 0"));
}

#[test]
fn errors_exit_2_with_one_line() {
    let (code, out, err) = run_cli("{ halt 00 00 00 }", &[]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(err.lines().count(), 1);
    assert!(err.starts_with("error: ") && err.contains(":1: token 5 '}'"));
    let (code, _, err) = run_cli(HELLO, &["--trace", "full"]);
    assert_eq!(code, 2);
    assert!(err.contains("--trace"));
}
