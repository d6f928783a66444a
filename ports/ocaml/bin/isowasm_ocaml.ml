(* isowasm-ocaml: run one program file, or serve a stream of runs (batch).
   See README.md for the batch protocol. *)

open Isowasm

let usage =
  "usage: isowasm-ocaml run PROG.txt [--max-steps N] [--trace none|digest|text]\n\
  \                         [--input-hex HEX] [--checkpoint-interval N]\n\
  \       isowasm-ocaml batch      (requests on stdin, see README.md)\n\
  \       isowasm-ocaml table      (opcodes, limits and traps)\n"

exception Bad of string

let bad fmt = Printf.ksprintf (fun s -> raise (Bad s)) fmt

let int_arg what s =
  match int_of_string_opt s with
  | Some n when n >= 0 -> n
  | _ -> bad "%s: expected a non-negative integer, got %S" what s

let hex_of s =
  let b = Buffer.create (2 * String.length s) in
  String.iter (fun c -> Printf.bprintf b "%02x" (Char.code c)) s;
  Buffer.contents b

let input_of_hex h =
  let n = String.length h in
  if n mod 2 <> 0 then bad "input hex has an odd number of digits";
  let digit c =
    match Program.hex_digit c with -1 -> bad "input hex: %C is not a hex digit" c | d -> d
  in
  let s = String.init (n / 2) (fun i -> Char.chr ((digit h.[2 * i] * 16) + digit h.[(2 * i) + 1])) in
  (try Program.check_input s with Program.Error e -> raise (Bad e));
  s

let one_line s = String.map (fun c -> if c = '\n' || c = '\r' then ' ' else c) s

let trap_fields = function
  | Machine.Trapped (t, pc) -> (Trap.name t, string_of_int pc)
  | _ -> ("-", "-")

(* -- run ------------------------------------------------------------- *)

let cmd_run args =
  let path = ref None and max_steps = ref Limits.default_max_steps and mode = ref Trace.No_trace
  and input = ref None and interval = ref Limits.default_checkpoint_interval in
  let rec go = function
    | [] -> ()
    | "--max-steps" :: v :: r -> max_steps := int_arg "--max-steps" v; go r
    | "--checkpoint-interval" :: v :: r ->
      interval := int_arg "--checkpoint-interval" v;
      if !interval = 0 then bad "--checkpoint-interval must be positive";
      go r
    | "--trace" :: v :: r ->
      (match Trace.mode_of_string v with
       | Some m -> mode := m
       | None -> bad "--trace: expected none, digest or text, got %S" v);
      go r
    | "--input-hex" :: v :: r -> input := Some (input_of_hex v); go r
    | a :: _ when String.length a > 0 && a.[0] = '-' -> bad "unknown or incomplete option %s" a
    | p :: r -> if !path <> None then bad "more than one program file"; path := Some p; go r
  in
  go args;
  let path = match !path with Some p -> p | None -> bad "no program file" in
  let p = try Program.load path with Program.Error e -> raise (Bad e) in
  let t0 = Sys.time () in
  let r =
    Machine.execute ?input:!input ~max_steps:!max_steps ~checkpoint_interval:!interval ~mode:!mode p
  in
  let dt = Sys.time () -. t0 in
  let trap, trap_pc = trap_fields r.status in
  Printf.printf "status %s\ntrap %s\ntrap_pc %s\nsteps %d\ntokens %d\noutput %s\n"
    (Machine.status_name r.status) trap trap_pc r.steps r.tokens
    (if r.output = "" then "-" else hex_of r.output);
  Printf.printf "digest %s\n" (match r.digest with Some d -> d | None -> "-");
  List.iter (fun (s, d) -> Printf.printf "checkpoint %d %s\n" s d) r.checkpoints;
  Printf.printf "seconds %.6f\n" dt;
  (match r.text with
   | Some text -> print_string "trace\n"; print_string text
   | None -> ());
  0

(* -- batch ------------------------------------------------------------- *)

let respond_error oc msg =
  output_string oc ("error " ^ one_line msg ^ "\n");
  flush oc

let serve_run oc m fields prog_text =
  match fields with
  | [ max_steps; mode; interval; input; _len ] ->
    let max_steps = int_arg "max_steps" max_steps in
    let mode =
      match Trace.mode_of_string mode with
      | Some m -> m
      | None -> bad "trace mode: expected none, digest or text, got %S" mode
    in
    let interval = int_arg "checkpoint_interval" interval in
    if interval = 0 then bad "checkpoint_interval must be positive";
    let input = if input = "-" then None else Some (input_of_hex input) in
    let p = try Program.parse prog_text with Program.Error e -> raise (Bad e) in
    let r = Machine.execute ~m ?input ~max_steps ~checkpoint_interval:interval ~mode p in
    let trap, trap_pc = trap_fields r.status in
    let text = match r.text with Some t -> t | None -> "" in
    let b = Buffer.create (256 + (80 * List.length r.checkpoints)) in
    Printf.bprintf b "ok %s %s %s %d %d %s %s %d %d\n" (Machine.status_name r.status) trap trap_pc
      r.steps r.tokens
      (if r.output = "" then "-" else hex_of r.output)
      (match r.digest with Some d -> d | None -> "-")
      (List.length r.checkpoints) (String.length text);
    List.iter (fun (s, d) -> Printf.bprintf b "%d %s\n" s d) r.checkpoints;
    Buffer.output_buffer oc b;
    output_string oc text;
    flush oc
  | _ -> bad "run: expected `run MAX_STEPS MODE INTERVAL INPUT_HEX|- LENGTH`"

let cmd_batch () =
  set_binary_mode_in stdin true;
  set_binary_mode_out stdout true;
  let oc = stdout in
  let m = Machine.create () in
  let rec loop () =
    match input_line stdin with
    | exception End_of_file -> ()
    | line ->
      let fields = List.filter (( <> ) "") (String.split_on_char ' ' (String.trim line)) in
      (match fields with
       | [] -> loop ()
       | [ "quit" ] -> ()
       | [ "ping" ] ->
         output_string oc "pong isowasm-ocaml 1\n";
         flush oc;
         loop ()
       | "run" :: rest ->
         let len = match List.rev rest with l :: _ -> int_of_string_opt l | [] -> None in
         (match len with
          | Some n when n >= 0 && List.length rest = 5 ->
            (match really_input_string stdin n with
             | exception End_of_file -> respond_error oc "program text cut short by end of input"
             | prog ->
               (try serve_run oc m rest prog with
                | Bad e -> respond_error oc e
                | Out_of_memory -> respond_error oc "out of memory"
                | Stack_overflow -> respond_error oc "native stack overflow");
               loop ())
          | _ ->
            respond_error oc
              "malformed request: expected `run MAX_STEPS MODE INTERVAL INPUT_HEX|- LENGTH`";
            loop ())
       | w :: _ ->
         respond_error oc (Printf.sprintf "unknown request %S" w);
         loop ())
  in
  loop ();
  0

(* -- table ------------------------------------------------------------- *)

let cmd_table () =
  Array.iter (fun o -> Printf.printf "op %s\n" (Op.name o)) Op.all;
  List.iter (fun (n, v) -> Printf.printf "limit %s %d\n" n v) Limits.all;
  Array.iter
    (fun t ->
      Printf.printf "trap %s %s %b\n" (Trap.name t)
        (match Trap.code t with Some c -> string_of_int c | None -> "-")
        (Trap.resource t))
    Trap.all;
  0

let () =
  let code =
    try
      match List.tl (Array.to_list Sys.argv) with
      | "run" :: args -> cmd_run args
      | [ "batch" ] -> cmd_batch ()
      | [ "table" ] -> cmd_table ()
      | ("-h" | "--help" | "help") :: _ -> print_string usage; 0
      | _ -> prerr_string usage; 2
    with Bad e ->
      prerr_endline ("error: " ^ e);
      2
  in
  exit code
