(* dune test: SHA-256 vectors, parser errors, each op's tokens, flags,
   traps, budget and checkpoints. Expected traces are written out by hand
   from spec/MACHINE.md. *)

open Isowasm

let failures = ref 0
let checks = ref 0

let check name cond =
  incr checks;
  if not cond then begin
    incr failures;
    Printf.printf "FAIL %s\n%!" name
  end

let check_eq name got want =
  incr checks;
  if got <> want then begin
    incr failures;
    Printf.printf "FAIL %s\n  got:  %S\n  want: %S\n%!" name got want
  end

(* -- SHA-256 (FIPS 180-4 / NIST CSRC example vectors) ------------------ *)

let sha_vectors () =
  let v = Sha256.hex_of_string in
  check_eq "sha empty" (v "") "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  check_eq "sha abc" (v "abc") "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  check_eq "sha 448 bits"
    (v "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
  check_eq "sha 896 bits"
    (v "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu")
    "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1";
  check_eq "sha million a" (v (String.make 1_000_000 'a'))
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
  (* Fed in uneven pieces, and read midway (a checkpoint) without disturbing it. *)
  let s = String.init 1000 (fun i -> Char.chr (i * 7 land 0xff)) in
  let t = Sha256.create () in
  let pos = ref 0 and step = ref 1 in
  while !pos < String.length s do
    let n = min !step (String.length s - !pos) in
    Sha256.feed t (Bytes.of_string s) !pos n;
    if !pos = 300 then ignore (Sha256.hexdigest t);
    pos := !pos + n;
    step := (!step * 3 + 1) mod 97
  done;
  check_eq "sha incremental" (Sha256.hexdigest t) (v s);
  for n = 50 to 70 do
    let t = Sha256.create () in
    Sha256.feed_string t (String.sub s 0 n);
    check_eq (Printf.sprintf "sha padding %d" n) (Sha256.hexdigest t) (v (String.sub s 0 n))
  done;
  ()

let () =
  Printf.printf "SHA-256 extensions: %b\n" (Sha256.has_ni ());
  Sha256.set_accelerated false;
  sha_vectors ();
  if Sha256.has_ni () then begin
    Sha256.set_accelerated true;
    sha_vectors ();
    (* both implementations agree on every length up to a few blocks *)
    let s = String.init 300 (fun i -> Char.chr ((i * 131) land 0xff)) in
    for n = 0 to 300 do
      let sub = String.sub s 0 n in
      Sha256.set_accelerated true;
      let a = Sha256.hex_of_string sub in
      Sha256.set_accelerated false;
      let b = Sha256.hex_of_string sub in
      check (Printf.sprintf "sha ni = ocaml at %d" n) (a = b)
    done;
    Sha256.set_accelerated true
  end

(* -- programs ------------------------------------------------------------ *)

let imm_bytes v = Program.imm_bytes (v land 0xffffffff)

let src ?(input = "") ops =
  let b = Buffer.create 256 in
  Buffer.add_string b "{\n";
  List.iter (fun (op, imm) -> Printf.bprintf b "%s %s\n" op (imm_bytes imm)) ops;
  Buffer.add_string b "}\n";
  String.iter (fun c -> Printf.bprintf b "%s " (Trace.input_token (Char.code c))) input;
  Buffer.add_string b "00 commit(+0,sts=0,bt=0)\n";
  Buffer.contents b

let run ?input ?(max_steps = 1000) ?(interval = 16384) ops =
  let p = Program.parse (src ?input ops) in
  Machine.execute ~max_steps ~checkpoint_interval:interval ~mode:Trace.Text p

let text r = match r.Machine.text with Some t -> t | None -> ""

(* Tokens: every token is followed by exactly one space or newline. *)
let count_tokens s =
  let n = ref 0 in
  String.iter (fun c -> if c = ' ' || c = '\n' then incr n) s;
  !n

let expect name ?input ?max_steps ops want_status want_text =
  let r = run ?input ?max_steps ops in
  let status =
    match r.status with
    | Machine.Trapped (t, pc) -> Printf.sprintf "trapped %s %d" (Trap.name t) pc
    | s -> Machine.status_name s
  in
  check_eq (name ^ " status") status want_status;
  let head = "00 commit(+0,sts=0,bt=0)\n" in
  let input_line =
    match input with
    | None -> head
    | Some s ->
      String.concat "" (List.map (fun c -> Trace.input_token (Char.code c) ^ " ") (List.of_seq (String.to_seq s)))
      ^ head
  in
  check_eq (name ^ " trace") (text r) (input_line ^ want_text);
  check (name ^ " tokens") (r.tokens = count_tokens (text r));
  check (name ^ " digest") (r.digest = Some (Sha256.hex_of_string (text r)))

let c_push = " commit(+1,sts=1,bt=0)\n"
let c_bin = " commit(-1,sts=1,bt=0)\n"

let () =
  expect "const/halt" [ "i32.const", 0x12345678; "halt", 0 ] "halted"
    ("78 56 34 12" ^ c_push ^ "halt\n");
  expect "add carries" [ "i32.const", 0xffffffff; "i32.const", 1; "i32.add", 0; "halt", 0 ] "halted"
    ("ff ff ff ff" ^ c_push ^ "01 00 00 00" ^ c_push ^ "00' 00' 00' 00'" ^ c_bin ^ "halt\n");
  expect "add partial carry" [ "i32.const", 0x80; "i32.const", 0x80; "i32.add", 0; "halt", 0 ] "halted"
    ("80 00 00 00" ^ c_push ^ "80 00 00 00" ^ c_push ^ "00' 01 00 00" ^ c_bin ^ "halt\n");
  expect "sub borrows" [ "i32.const", 0; "i32.const", 1; "i32.sub", 0; "halt", 0 ] "halted"
    ("00 00 00 00" ^ c_push ^ "01 00 00 00" ^ c_push ^ "ff' ff' ff' ff'" ^ c_bin ^ "halt\n");
  expect "sub borrow byte 1" [ "i32.const", 0x10000; "i32.const", 0x100; "i32.sub", 0; "halt", 0 ]
    "halted"
    ("00 00 01 00" ^ c_push ^ "00 01 00 00" ^ c_push ^ "00 ff' 00 00" ^ c_bin ^ "halt\n");
  let cmp name op a b r =
    expect name [ "i32.const", a; "i32.const", b; op, 0; "halt", 0 ] "halted"
      (imm_bytes a ^ c_push ^ imm_bytes b ^ c_push ^ imm_bytes r ^ c_bin ^ "halt\n")
  in
  cmp "eq" "i32.eq" 5 5 1;
  cmp "ne" "i32.ne" 5 5 0;
  cmp "lt_s" "i32.lt_s" 0xffffffff 0 1;
  cmp "lt_u" "i32.lt_u" 0xffffffff 0 0;
  cmp "gt_s" "i32.gt_s" 0x80000000 0x7fffffff 0;
  cmp "gt_u" "i32.gt_u" 0x80000000 0x7fffffff 1;
  cmp "le_s" "i32.le_s" 3 3 1;
  cmp "le_u" "i32.le_u" 4 3 0;
  cmp "ge_s" "i32.ge_s" 0xfffffffe 0xffffffff 0;
  cmp "ge_u" "i32.ge_u" 0xffffffff 0xfffffffe 1;
  expect "eqz" [ "i32.const", 0; "i32.eqz", 0; "i32.eqz", 0; "halt", 0 ] "halted"
    ("00 00 00 00" ^ c_push ^ "01 00 00 00 commit(+0,sts=1,bt=0)\n"
     ^ "00 00 00 00 commit(+0,sts=1,bt=0)\n" ^ "halt\n");
  expect "locals"
    [ "i32.const", 9; "local.set", 3; "local.get", 3; "local.tee", 4; "drop", 0; "halt", 0 ]
    "halted"
    ("09 00 00 00" ^ c_push ^ "09 00 00 00 commit(-1,sts=0,bt=0)\n" ^ "09 00 00 00" ^ c_push
     ^ "09 00 00 00 commit(+0,sts=0,bt=0)\n" ^ "commit(-1,sts=0,bt=0)\n" ^ "halt\n");
  expect "globals" [ "i32.const", 2; "global.set", 7; "global.get", 7; "halt", 0 ] "halted"
    ("02 00 00 00" ^ c_push ^ "commit(-1,sts=0,bt=0)\n" ^ "02 00 00 00" ^ c_push ^ "halt\n");
  expect "select" [ "i32.const", 1; "i32.const", 2; "i32.const", 0; "select", 0; "halt", 0 ]
    "halted"
    ("01 00 00 00" ^ c_push ^ "02 00 00 00" ^ c_push ^ "00 00 00 00" ^ c_push
     ^ "02 00 00 00 commit(-2,sts=1,bt=0)\n" ^ "halt\n");
  expect "memory" ~input:"A{ \xff"
    [ "input_base", 16; "i32.const", 16; "i32.load", 0; "i32.const", 0; "i32.load8_s", 19;
      "i32.const", 0; "i32.load16_s", 18; "i32.const", 1; "i32.load16_u", 17;
      "i32.const", 17; "i32.load8_u", 0; "halt", 0 ]
    "halted"
    ("10 00 00 00" ^ c_push ^ "41 7b 20 ff commit(+0,sts=1,bt=0)\n"
     ^ "00 00 00 00" ^ c_push ^ "ff' ff' ff' ff' commit(+0,sts=1,bt=0)\n"
     ^ "00 00 00 00" ^ c_push ^ "20 ff' ff' ff' commit(+0,sts=1,bt=0)\n"
     ^ "01 00 00 00" ^ c_push ^ "20 ff 00 00 commit(+0,sts=1,bt=0)\n"
     ^ "11 00 00 00" ^ c_push ^ "7b 00 00 00 commit(+0,sts=1,bt=0)\n" ^ "halt\n");
  expect "stores"
    [ "i32.const", 0; "i32.const", 0x11223344; "i32.store", 0;
      "i32.const", 0; "i32.const", 0x5566; "i32.store16", 4;
      "i32.const", 0; "i32.const", 0x77; "i32.store8", 6;
      "i32.const", 0; "i32.load", 4; "halt", 0 ]
    "halted"
    ("00 00 00 00" ^ c_push ^ "44 33 22 11" ^ c_push ^ "44 33 22 11 commit(-2,sts=0,bt=0)\n"
     ^ "00 00 00 00" ^ c_push ^ "66 55 00 00" ^ c_push ^ "66 55 commit(-2,sts=0,bt=0)\n"
     ^ "00 00 00 00" ^ c_push ^ "77 00 00 00" ^ c_push ^ "77 commit(-2,sts=0,bt=0)\n"
     ^ "00 00 00 00" ^ c_push ^ "66 55 77 00 commit(+0,sts=1,bt=0)\n" ^ "halt\n");
  expect "branches"
    [ "i32.const", 0; "br_if", 4; "i32.const", 1; "br_if", 1; "halt", 1; "br", 0; "halt", 0 ]
    "halted"
    ("00 00 00 00" ^ c_push ^ "commit(-1,sts=0,bt=0)\n" ^ "01 00 00 00" ^ c_push
     ^ "branch_taken\n01 00 00 00 commit(-1,sts=0,bt=1)\n"
     ^ "branch_taken\n00 00 00 00 commit(+0,sts=0,bt=1)\n" ^ "halt\n");
  (* call at pc 0 to pc 2 (imm 1); return at pc 3 with the convention
     imm = 2 - 4 = -2: value rpc - pc - 1 = 1 - 4 = -3, flags of -2 - 1. *)
  expect "call/return" [ "call", 1; "halt", 0; "i32.const", 5; "return", -2 ] "halted"
    ("branch_taken\n01 00 00 00 call_commit\n" ^ "05 00 00 00" ^ c_push
     ^ "branch_taken\nfd ff ff ff return_commit\n" ^ "halt\n");
  expect "return flags" [ "call", 1; "halt", 0; "return", 0x100 ] "halted"
    ("branch_taken\n01 00 00 00 call_commit\n" ^ "branch_taken\nfe' ff ff ff return_commit\n"
     ^ "halt\n");
  expect "callee locals are fresh"
    [ "i32.const", 4; "local.set", 0; "call", 2; "local.get", 0; "halt", 0; "local.get", 0;
      "return", 0 ]
    "halted"
    ("04 00 00 00" ^ c_push ^ "04 00 00 00 commit(-1,sts=0,bt=0)\n"
     ^ "branch_taken\n02 00 00 00 call_commit\n" ^ "00 00 00 00" ^ c_push
     ^ "branch_taken\nfc' ff' ff' ff' return_commit\n" ^ "04 00 00 00" ^ c_push ^ "halt\n");
  expect "output" [ "i32.const", 0x41; "output", 0; "i32.const", 0x120; "output", 0; "halt", 0 ]
    "halted"
    ("41 00 00 00" ^ c_push ^ "out(A)\n" ^ "20 01 00 00" ^ c_push ^ "out(20)\n" ^ "halt\n");
  (* traps: one token, the trapping pc *)
  expect "halt 1" [ "halt", 1 ] "trapped unreachable 0" "trap(unreachable)\n";
  expect "halt 2" [ "i32.const", 0; "halt", 2 ] "trapped div_zero 1"
    ("00 00 00 00" ^ c_push ^ "trap(div_zero)\n");
  expect "halt 3" [ "halt", 3 ] "trapped int_overflow 0" "trap(int_overflow)\n";
  expect "halt 4" [ "halt", 4 ] "trapped oob 0" "trap(oob)\n";
  expect "load oob" [ "i32.const", 10485757; "i32.load", 0; "halt", 0 ] "trapped oob 1"
    ("fd ff 9f 00" ^ c_push ^ "trap(oob)\n");
  expect "load in bounds" [ "i32.const", 10485756; "i32.load", 0; "halt", 0 ] "halted"
    ("fc ff 9f 00" ^ c_push ^ "00 00 00 00 commit(+0,sts=1,bt=0)\n" ^ "halt\n");
  expect "input_base oob" ~input:"ab" [ "input_base", 10485758; "halt", 0 ] "trapped oob 0"
    "trap(oob)\n";
  expect "underflow" [ "i32.const", 1; "i32.add", 0; "halt", 0 ] "trapped stack_underflow 1"
    ("01 00 00 00" ^ c_push ^ "trap(stack_underflow)\n");
  expect "return outside" [ "return", 0 ] "trapped return_outside 0" "trap(return_outside)\n";
  let r = run ~max_steps:10_000 [ "call", -1; "halt", 0 ] in
  check "call_depth" (r.status = Machine.Trapped (Trap.Call_depth, 0) && r.steps = 4097);
  let r = run ~max_steps:200_000 [ "i32.const", 0; "br", -2 ] in
  check "stack_overflow" (r.status = Machine.Trapped (Trap.Stack_overflow, 0) && r.steps = 131073)

(* -- budget and checkpoints -------------------------------------------- *)

let loop n =
  [ "i32.const", n; "local.set", 0; "local.get", 0; "i32.const", 1; "i32.sub", 0;
    "local.tee", 0; "br_if", -5; "halt", 0 ]

let () =
  let r = run ~max_steps:0 (loop 3) in
  check "budget 0" (r.status = Machine.Budget_exhausted && r.steps = 0 && r.tokens = 2);
  check_eq "budget 0 trace" (text r) "00 commit(+0,sts=0,bt=0)\n";
  let full = run (loop 3) in
  check "loop halts" (full.status = Machine.Halted && full.steps = 18);
  let r = run ~max_steps:17 (loop 3) in
  check "budget 17" (r.status = Machine.Budget_exhausted && r.steps = 17);
  check "budget prefix" (String.length (text r) < String.length (text full)
                         && String.sub (text full) 0 (String.length (text r)) = text r);
  check_eq "budget 17 ends before halt" (String.sub (text full) (String.length (text r)) 5) "halt\n";
  let r = run ~max_steps:18 (loop 3) in
  check "budget exact" (r.status = Machine.Halted);
  (* checkpoints every interval steps while running; none at the halt *)
  let r = run ~interval:4 (loop 3) in
  check "checkpoint steps" (List.map fst r.checkpoints = [ 4; 8; 12; 16 ]);
  let r18 = run ~interval:6 (loop 3) in
  check "no checkpoint at halt" (List.map fst r18.checkpoints = [ 6; 12 ]);
  let r = run ~interval:5 ~max_steps:12 (loop 3) in
  check "no checkpoint at budget" (List.map fst r.checkpoints = [ 5; 10 ]);
  (* a checkpoint is the digest of the trace up to its step *)
  let r = run ~interval:4 ~max_steps:8 (loop 3) in
  let r8 = run ~interval:4 (loop 3) in
  check "checkpoint = prefix digest"
    (List.assoc 8 r8.checkpoints = Sha256.hex_of_string (text r))

(* -- parser errors ----------------------------------------------------- *)

let parse_error s =
  match Program.parse s with
  | _ -> "accepted"
  | exception Program.Error e -> e

let contains s sub =
  let n = String.length s and m = String.length sub in
  let rec go i = i + m <= n && (String.sub s i m = sub || go (i + 1)) in
  go 0

let rejects name s where =
  let e = parse_error s in
  check (Printf.sprintf "parse %s: %s (want %s)" name e where) (contains e where && not (String.contains e '\n'))

let () =
  rejects "empty" "" "empty program file";
  rejects "no open brace" "halt 00 00 00 00 }" "<program>:1: token 0 'halt'";
  rejects "no close brace" "{ halt 00 00 00 00" "at end of file";
  rejects "no instructions" "{ }" "token 1 '}'";
  rejects "unknown opcode" "{\nhlt 00 00 00 00\n}" "<program>:2: token 1 'hlt'";
  rejects "bad hex" "{ halt 00 0g 00 00 }" "token 3 '0g'";
  rejects "3-digit hex" "{ halt 00 00 00 000 }" "token 5 '000'";
  rejects "not multiple of 5" "{ i32.const 01 00 00 00 halt 00 }" "token 8 '}'";
  rejects "input_base not at 0" "{ i32.const 00 00 00 00 input_base 00 00 00 00 halt 00 00 00 00 }"
    "token 6 'input_base'";
  rejects "local index" "{ local.get 00 01 00 00 halt 00 00 00 00 }" "local index 256";
  rejects "global index" "{ global.set 00 01 00 00 halt 00 00 00 00 }" "global index 256";
  rejects "halt code" "{ halt 06 00 00 00 }" "halt code 6";
  rejects "branch target" "{ br 00 00 00 00 }" "targets pc 1";
  rejects "branch backwards" "{ br_if fd ff ff ff halt 00 00 00 00 }" "targets pc -2";
  rejects "call target" "{ call 01 00 00 00 halt 00 00 00 00 }" "targets pc 2";
  rejects "fall through" "{ i32.const 00 00 00 00 }" "can fall off the end";
  rejects "input no 00" "{ halt 00 00 00 00 } A B" "at end of file";
  rejects "input commit early" "{ halt 00 00 00 00 } A commit(+0,sts=0,bt=0)" "token 8";
  rejects "input no commit" "{ halt 00 00 00 00 } A 00" "at end of file";
  rejects "input trailing" "{ halt 00 00 00 00 } 00 commit(+0,sts=0,bt=0) x" "token 9 'x'";
  rejects "input brace" "{ halt 00 00 00 00 } { 00 commit(+0,sts=0,bt=0)" "token 7 '{'";
  rejects "input word" "{ halt 00 00 00 00 } abc 00 commit(+0,sts=0,bt=0)" "token 7 'abc'";
  check "upper-case hex accepted" (parse_error "{ halt 00 00 00 00 } 4A 00 commit(+0,sts=0,bt=0)" = "accepted");
  check "no input section" (parse_error "{\thalt 00 00 00 00\r\n}\n" = "accepted");
  let p = Program.parse "{ halt 00 00 00 00 } A 7b 00 commit(+0,sts=0,bt=0)" in
  check_eq "input bytes" p.input "A{";
  check_eq "format" (Program.format_instructions p) "{\nhalt 00 00 00 00\n}\n"

let () =
  Printf.printf "%d checks, %d failures\n" !checks !failures;
  if !failures > 0 then exit 1
