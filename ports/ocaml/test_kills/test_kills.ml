(* dune test: checks written for the survivors of mutation testing
   (ci/mutation.py) that only a unit test of the library can see. *)

open Isowasm

let failures = ref 0

let check name cond =
  if not cond then begin
    incr failures;
    Printf.printf "FAIL %s\n%!" name
  end

(* refused by feed's own check (not by a Bytes function further in) *)
let raises_invalid f = match f () with
  | () -> false
  | exception Invalid_argument msg -> msg = "Sha256.feed"

(* Sha256.feed refuses a slice outside its buffer, at each edge, and takes
   every slice inside it. *)
let feed_bounds () =
  let b = Bytes.make 200 'a' in
  let feed off len () = Sha256.feed (Sha256.create ()) b off len in
  List.iter (fun (off, len) ->
      check (Printf.sprintf "feed %d %d accepted" off len) (not (raises_invalid (feed off len))))
    [ (0, 0); (0, 200); (200, 0); (5, 195); (199, 1); (8, 64); (0, 128) ];
  List.iter (fun (off, len) ->
      check (Printf.sprintf "feed %d %d refused" off len) (raises_invalid (feed off len)))
    [ (-1, 1); (0, -1); (0, 201); (1, 200); (200, 1); (100, 150); (201, 0); (150, 100) ]

(* Trace.input_token (the spelling the unit tests use for expected input
   sections) is the spelling input_section writes, for every byte. *)
let input_tokens () =
  for c = 1 to 255 do
    let t = Trace.create Trace.Text in
    Trace.input_section t (String.make 1 (Char.chr c));
    let text = Trace.text t in
    let first = String.sub text 0 (String.index text ' ') in
    check (Printf.sprintf "input_token %d" c) (first = Trace.input_token c)
  done

(* The deepest frame the machine allows (Limits.call_depth calls below the
   entry frame) has all locals_per_frame locals of its own, inside the
   machine's locals storage: a program that stores to local 255 in every
   frame, recursing until the call that traps call_depth, leaves the value in
   the top frame's slot, read with bounds-checked access. *)
let src ops =
  let b = Buffer.create 256 in
  Buffer.add_string b "{\n";
  List.iter (fun (op, imm) -> Printf.bprintf b "%s %s\n" op (Program.imm_bytes (imm land 0xffffffff))) ops;
  Buffer.add_string b "}\n00 commit(+0,sts=0,bt=0)\n";
  Buffer.contents b

let locals_at_max_depth () =
  let top = Limits.locals_per_frame - 1 in
  let p =
    Program.parse
      (src [ "local.get", top; "br_if", 3; (* a fresh frame's local is 0, else to pc 5 *)
             "i32.const", 0x5a; "local.set", top; "call", -5; (* recurse to pc 0 *)
             "halt", 0 ])
  in
  List.iter (fun mode ->
      let m = Machine.create () in
      let r = Machine.execute ~m ~max_steps:100_000 ~mode p in
      check "max depth: trapped call_depth at the call"
        (r.status = Machine.Trapped (Trap.Call_depth, 4));
      check "max depth: steps" (r.steps = (5 * (Limits.call_depth + 1)));
      check "max depth: depth" (m.depth = Limits.call_depth);
      let slot i = match m.locals.(m.base + i) with
        | v -> Some v
        | exception Invalid_argument _ -> None in
      check "max depth: top frame's stored local in storage" (slot top = Some 0x5a);
      for i = 0 to top - 1 do
        check (Printf.sprintf "max depth: top frame's local %d in storage" i) (slot i = Some 0)
      done)
    [ Trace.No_trace; Trace.Digest ]

(* A program file that ends right after its input's terminating 00 (the
   commit missing) is rejected at end of file, for every token count: in
   particular at the sizes where the tokenizer's buffers are exactly full
   (64, 128, 256, 512 tokens), where nothing past the last token exists. *)
let missing_input_commit () =
  for m = 0 to 520 do
    let text = "{ halt 00 00 00 00 }\n" ^ String.concat " " (List.init m (fun _ -> "a")) ^ " 00\n" in
    let got = match Program.parse text with
      | _ -> "accepted"
      | exception Program.Error e -> e
      | exception e -> "raised " ^ Printexc.to_string e in
    let want = "<program>: at end of file: expected commit(+0,sts=0,bt=0) after the input's terminating 00" in
    check (Printf.sprintf "missing input commit, %d tokens: %s" (m + 8) got) (got = want)
  done

let () =
  feed_bounds ();
  missing_input_commit ();
  input_tokens ();
  locals_at_max_depth ();
  if !failures > 0 then begin
    Printf.printf "%d failure(s)\n" !failures;
    exit 1
  end
