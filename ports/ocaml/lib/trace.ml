(* Trace emission (MACHINE.md §5): the canonical trace text, written into a
   staging buffer that is fed to an incremental SHA-256 (and, in text mode,
   kept) whenever it fills, with checkpoints (steps, digest so far).

   Byte tokens are written as two hex digits, an optional flag ', and a
   separator; every line ends in one of the terminal tokens. Token counting is
   the machine's business, not this module's. *)

type mode = No_trace | Digest | Text

let mode_of_string = function
  | "none" -> Some No_trace
  | "digest" -> Some Digest
  | "text" -> Some Text
  | _ -> None

let cap = 1 lsl 16
let headroom = 256          (* more than the longest step's text *)

type t = {
  buf : Bytes.t;
  mutable pos : int;
  sha : Sha256.t;
  text : Buffer.t option;
  mutable checkpoints : (int * string) list;   (* newest first *)
}

let create mode =
  { buf = Bytes.create cap; pos = 0; sha = Sha256.create ();
    text = (if mode = Text then Some (Buffer.create cap) else None);
    checkpoints = [] }

let flush t =
  if t.pos > 0 then begin
    Sha256.feed t.sha t.buf 0 t.pos;
    (match t.text with Some b -> Buffer.add_subbytes b t.buf 0 t.pos | None -> ());
    t.pos <- 0
  end

let[@inline] room t = if t.pos > cap - headroom then flush t

(* -- token spelling -------------------------------------------------- *)

let hex = "0123456789abcdef"

(* The commit tokens of §4, each ending its line. *)
let commit_push = "commit(+1,sts=1,bt=0)\n"     (* const, local.get, global.get *)
let commit_pop = "commit(-1,sts=0,bt=0)\n"      (* local.set, global.set, drop, br_if not taken *)
let commit_same = "commit(+0,sts=0,bt=0)\n"     (* local.tee, input section *)
let commit_binop = "commit(-1,sts=1,bt=0)\n"    (* add, sub, comparisons *)
let commit_unop = "commit(+0,sts=1,bt=0)\n"     (* eqz, loads *)
let commit_select = "commit(-2,sts=1,bt=0)\n"
let commit_store = "commit(-2,sts=0,bt=0)\n"
let commit_br = "commit(+0,sts=0,bt=1)\n"
let commit_br_if = "commit(-1,sts=0,bt=1)\n"
let call_commit = "call_commit\n"
let return_commit = "return_commit\n"
let branch_taken = "branch_taken\n"
let halt_line = "halt\n"

let[@inline] put_string t s =
  let n = String.length s in
  Bytes.unsafe_blit_string s 0 t.buf t.pos n;
  t.pos <- t.pos + n

let[@inline] put_byte t b flagged =
  let buf = t.buf and p = t.pos in
  Bytes.unsafe_set buf p (String.unsafe_get hex (b lsr 4));
  Bytes.unsafe_set buf (p + 1) (String.unsafe_get hex (b land 15));
  if flagged then begin
    Bytes.unsafe_set buf (p + 2) '\'';
    Bytes.unsafe_set buf (p + 3) ' ';
    t.pos <- p + 4
  end
  else begin
    Bytes.unsafe_set buf (p + 2) ' ';
    t.pos <- p + 3
  end

(* [n] value bytes of [v] (lowest first, byte i flagged when bit i of
   [flags] is set), then the line's terminal token [tail]. *)
let value_n t v flags n tail =
  room t;
  for i = 0 to n - 1 do
    put_byte t (I32.byte v i) ((flags lsr i) land 1 = 1)
  done;
  put_string t tail

let value4 t v flags tail =
  room t;
  put_byte t (I32.byte v 0) (flags land 1 = 1);
  put_byte t (I32.byte v 1) (flags land 2 = 2);
  put_byte t (I32.byte v 2) (flags land 4 = 4);
  put_byte t (I32.byte v 3) (flags land 8 = 8);
  put_string t tail

let line t s =
  room t;
  put_string t s

(* branch_taken, then four bytes and the terminal (br, br_if, call, return). *)
let branch t v flags tail =
  room t;
  put_string t branch_taken;
  value4 t v flags tail

let[@inline] printable c = c >= 0x21 && c <= 0x7e

let out t c =
  room t;
  put_string t "out(";
  if printable c then begin
    Bytes.unsafe_set t.buf t.pos (Char.unsafe_chr c);
    t.pos <- t.pos + 1
  end
  else begin
    Bytes.unsafe_set t.buf t.pos hex.[c lsr 4];
    Bytes.unsafe_set t.buf (t.pos + 1) hex.[c land 15];
    t.pos <- t.pos + 2
  end;
  put_string t ")\n"

let trap t tr =
  room t;
  put_string t "trap(";
  put_string t (Trap.name tr);
  put_string t ")\n"

(* The input section: one token per byte (the character itself when printable
   and not a brace), the terminating 00, and its commit. *)
let input_token c =
  if printable c && c <> 0x7b && c <> 0x7d then String.make 1 (Char.chr c)
  else Printf.sprintf "%c%c" hex.[c lsr 4] hex.[c land 15]

let input_section t (data : string) =
  String.iter
    (fun ch ->
      room t;
      let c = Char.code ch in
      if printable c && c <> 0x7b && c <> 0x7d then begin
        Bytes.unsafe_set t.buf t.pos ch;
        Bytes.unsafe_set t.buf (t.pos + 1) ' ';
        t.pos <- t.pos + 2
      end
      else put_byte t c false)
    data;
  line t "00 ";
  line t commit_same

(* -- digest and checkpoints ------------------------------------------ *)

let hexdigest t =
  flush t;
  Sha256.hexdigest t.sha

let checkpoint t steps = t.checkpoints <- (steps, hexdigest t) :: t.checkpoints

let checkpoints t = List.rev t.checkpoints

let text t =
  flush t;
  match t.text with Some b -> Buffer.contents b | None -> ""
