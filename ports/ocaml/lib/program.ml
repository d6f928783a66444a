(* Program files (MACHINE.md §2): tokenising, the load-time checks, and the
   input section. Every rejection is one line naming the token index and its
   line: "SOURCE:LINE: token K 'TOK': what is wrong" (or "SOURCE: at end of
   file: ..."). The checks run in a fixed order so that the first problem of a
   file is the one reported. *)

exception Error of string

type t = {
  code : Op.t array;     (* opcode per pc *)
  imm : int array;       (* unsigned 32-bit immediate per pc *)
  input : string;        (* the input, without its NUL *)
}

let input_commit = "commit(+0,sts=0,bt=0)"

(* -- tokens ------------------------------------------------------------ *)

(* Length of the whitespace character at [i] (0 if none): ASCII space, tab,
   newline, CR, VT, FF, the separators 0x1c-0x1f, and the Unicode spaces in
   UTF-8, so a file splits exactly as Python's str.split would. *)
let space_len s i =
  let n = String.length s in
  let at j = if j < n then Char.code (String.unsafe_get s j) else -1 in
  match at i with
  | 0x09 | 0x0a | 0x0b | 0x0c | 0x0d | 0x1c | 0x1d | 0x1e | 0x1f | 0x20 -> 1
  | 0xc2 -> if at (i + 1) = 0x85 || at (i + 1) = 0xa0 then 2 else 0
  | 0xe1 -> if at (i + 1) = 0x9a && at (i + 2) = 0x80 then 3 else 0
  | 0xe2 ->
    let b1 = at (i + 1) and b2 = at (i + 2) in
    if b1 = 0x80 && ((b2 >= 0x80 && b2 <= 0x8a) || b2 = 0xa8 || b2 = 0xa9 || b2 = 0xaf)
    then 3
    else if b1 = 0x81 && b2 = 0x9f then 3
    else 0
  | 0xe3 -> if at (i + 1) = 0x80 && at (i + 2) = 0x80 then 3 else 0
  | _ -> 0

type tokens = { src : string; start : int array; len : int array; count : int }

let tokenize src =
  let n = String.length src in
  let start = ref (Array.make 64 0) and len = ref (Array.make 64 0) in
  let count = ref 0 in
  let push s l =
    if !count = Array.length !start then begin
      let grow a = Array.append a (Array.make (Array.length a) 0) in
      start := grow !start;
      len := grow !len
    end;
    !start.(!count) <- s;
    !len.(!count) <- l;
    incr count
  in
  let i = ref 0 in
  while !i < n do
    let w = space_len src !i in
    if w > 0 then i := !i + w
    else begin
      let s = !i in
      while !i < n && space_len src !i = 0 do incr i done;
      push s (!i - s)
    end
  done;
  { src; start = !start; len = !len; count = !count }

let tok t k = String.sub t.src t.start.(k) t.len.(k)

let is_tok t k s =
  t.len.(k) = String.length s
  &&
  let rec eq i = i = t.len.(k) || (t.src.[t.start.(k) + i] = s.[i] && eq (i + 1)) in
  eq 0

let hex_digit c =
  match c with
  | '0' .. '9' -> Char.code c - 48
  | 'a' .. 'f' -> Char.code c - 87
  | 'A' .. 'F' -> Char.code c - 55
  | _ -> -1

(* The value of a two-hex-digit token, or -1. *)
let hex2 t k =
  if t.len.(k) <> 2 then -1
  else
    let h = hex_digit t.src.[t.start.(k)] and l = hex_digit t.src.[t.start.(k) + 1] in
    if h < 0 || l < 0 then -1 else (h * 16) + l

(* A token as Python's repr would quote it (for ASCII). *)
let quote s =
  let b = Buffer.create (String.length s + 2) in
  let q = if String.contains s '\'' && not (String.contains s '"') then '"' else '\'' in
  Buffer.add_char b q;
  String.iter
    (fun c ->
      match c with
      | '\\' -> Buffer.add_string b "\\\\"
      | c when c = q -> Buffer.add_char b '\\'; Buffer.add_char b c
      | c when Char.code c < 0x20 || Char.code c >= 0x7f ->
        Buffer.add_string b (Printf.sprintf "\\x%02x" (Char.code c))
      | c -> Buffer.add_char b c)
    s;
  Buffer.add_char b q;
  Buffer.contents b

let line_of t k =
  let n = ref 1 in
  for i = 0 to t.start.(k) - 1 do
    if t.src.[i] = '\n' then incr n
  done;
  !n

(* -- checks ------------------------------------------------------------ *)

let fail_at source t k msg =
  if k >= t.count then raise (Error (Printf.sprintf "%s: at end of file: %s" source msg))
  else
    raise
      (Error (Printf.sprintf "%s:%d: token %d %s: %s" source (line_of t k) k (quote (tok t k)) msg))

let check_input ?(where = "input") data =
  (match String.index_opt data '\000' with
   | Some i ->
     raise
       (Error
          (Printf.sprintf "%s: input byte %d is 00; the input is NUL-terminated and cannot contain it"
             where i))
   | None -> ());
  if String.length data > Limits.input_bytes then
    raise
      (Error
         (Printf.sprintf "%s: input is %d bytes, over the limit of %d" where
            (String.length data) Limits.input_bytes))

let trap_codes = "1, 2, 3, 4"

(* The checks that look at instructions one at a time, then the end. *)
let validate fail code imm =
  let n = Array.length code in
  Array.iteri
    (fun i op ->
      let v = imm.(i) in
      if op = Op.Input_base && i <> 0 then
        fail i (Printf.sprintf "input_base at pc %d; it may only be the first instruction" i)
      else if Op.is_local op && v >= Limits.locals_per_frame then
        fail i
          (Printf.sprintf "local index %d at pc %d, limit is %d locals per frame" v i
             Limits.locals_per_frame)
      else if Op.is_global op && v >= Limits.globals then
        fail i (Printf.sprintf "global index %d at pc %d, limit is %d globals" v i Limits.globals)
      else if op = Op.Halt && v <> 0 && Trap.of_code v = None then
        fail i
          (Printf.sprintf "halt code %d at pc %d is neither 0 nor a trap code [%s]" v i trap_codes)
      else if Op.is_branch op then begin
        let target = I32.branch_target ~pc:i v in
        if target < 0 || target >= n then
          fail i
            (Printf.sprintf "%s at pc %d targets pc %d, outside the program (0..%d)" (Op.name op) i
               target (n - 1))
      end)
    code;
  if not (Op.can_end code.(n - 1)) then
    fail (n - 1)
      (Printf.sprintf "the last instruction (%s) can fall off the end; it must be halt, br or return"
         (Op.name code.(n - 1)))

let parse_input fail t k0 =
  if k0 = t.count then ""
  else begin
    let out = Buffer.create 64 in
    let k = ref k0 and closed = ref false in
    while (not !closed) && !k < t.count do
      let kk = !k in
      if is_tok t kk input_commit then fail kk "input section has no terminating 00 before its commit";
      let c = if t.len.(kk) = 1 then Char.code t.src.[t.start.(kk)] else -1 in
      if t.len.(kk) = 1 && c >= 0x21 && c <= 0x7e && c <> 0x7b && c <> 0x7d then begin
        Buffer.add_char out (Char.chr c);
        incr k
      end
      else begin
        let b = hex2 t kk in
        if b < 0 then
          fail kk (Printf.sprintf "input byte %d is neither a printable character nor two hex digits" (kk - k0))
        else if b = 0 then closed := true
        else begin
          Buffer.add_char out (Char.chr b);
          incr k
        end
      end
    done;
    if not !closed then fail !k "input section has no terminating 00";
    let k = !k in
    if k + 1 >= t.count || not (is_tok t (k + 1) input_commit) then
      fail (k + 1) (Printf.sprintf "expected %s after the input's terminating 00" input_commit);
    if k + 2 <> t.count then fail (k + 2) "unexpected token after the input section";
    let data = Buffer.contents out in
    check_input ~where:"input section" data;
    data
  end

let parse ?(source = "<program>") src =
  let t = tokenize src in
  let fail k msg = fail_at source t k msg in
  if t.count = 0 then raise (Error (Printf.sprintf "%s: empty program file (expected '{')" source));
  if not (is_tok t 0 "{") then fail 0 "a program file starts with '{'";
  let close =
    let rec find k = if k >= t.count then -1 else if is_tok t k "}" then k else find (k + 1) in
    find 1
  in
  if close < 0 then fail t.count "no closing '}' after the instructions";
  let body = close - 1 in
  if body mod 5 <> 0 then begin
    (* Point at the first group that does not look like `op b b b b`. *)
    let k = ref 1 in
    while !k < close do
      if Op.of_name (tok t !k) = None then fail !k "unknown opcode (known: halt, return, call, br, ...)";
      for j = 1 to 4 do
        if !k + j >= close || hex2 t (!k + j) < 0 then
          fail (min (!k + j) close)
            "expected an immediate byte (two hex digits); each instruction is an opcode and 4 bytes"
      done;
      k := !k + 5
    done;
    fail close "instruction section is not a multiple of 5 tokens"
  end;
  let n = body / 5 in
  if n = 0 then fail close "the program has no instructions";
  if n > Limits.max_instructions then
    fail close (Printf.sprintf "%d instructions, over the limit of %d" n Limits.max_instructions);
  let code = Array.make n Op.Halt and imm = Array.make n 0 in
  for i = 0 to n - 1 do
    let k = 1 + (5 * i) in
    (match Op.of_name (tok t k) with
     | Some op -> code.(i) <- op
     | None -> fail k (Printf.sprintf "unknown opcode at pc %d" i));
    let v = ref 0 in
    for j = 0 to 3 do
      let b = hex2 t (k + 1 + j) in
      if b < 0 then
        fail (k + 1 + j) (Printf.sprintf "immediate byte %d of pc %d is not two hex digits" j i);
      v := !v lor (b lsl (8 * j))
    done;
    imm.(i) <- !v
  done;
  validate (fun i msg -> fail (1 + (5 * i)) msg) code imm;
  let input = parse_input fail t (close + 1) in
  { code; imm; input }

let load path =
  let ic =
    try open_in_bin path
    with Sys_error e -> raise (Error (Printf.sprintf "%s: cannot read: %s" path e))
  in
  let s =
    Fun.protect ~finally:(fun () -> close_in_noerr ic) (fun () -> really_input_string ic (in_channel_length ic))
  in
  parse ~source:path s

(* -- writing ----------------------------------------------------------- *)

let imm_bytes v =
  Printf.sprintf "%02x %02x %02x %02x" (I32.byte v 0) (I32.byte v 1) (I32.byte v 2) (I32.byte v 3)

let format_instructions p =
  let b = Buffer.create (32 * Array.length p.code) in
  Buffer.add_string b "{\n";
  Array.iteri
    (fun i op -> Printf.bprintf b "%s %s\n" (Op.name op) (imm_bytes p.imm.(i)))
    p.code;
  Buffer.add_string b "}\n";
  Buffer.contents b
