(* Linear memory (MACHINE.md §3): limits.memory_bytes bytes, little-endian,
   zero at the start of every run. Accesses are checked here (trap oob unless
   ea + width <= memory_bytes). Written pages are remembered so that a reused
   memory is re-zeroed in proportion to what a run touched, which is what
   makes a persistent batch process cheap per program. *)

let size = Limits.memory_bytes
let page_bits = 12

type t = { bytes : Bytes.t; dirty : Bytes.t }

let create () =
  { bytes = Bytes.make size '\000';
    dirty = Bytes.make ((size lsr page_bits) + 1) '\000' }

external get32u : Bytes.t -> int -> int32 = "%caml_bytes_get32u"
external set32u : Bytes.t -> int -> int32 -> unit = "%caml_bytes_set32u"

let[@inline] check ea w = if ea + w > size then raise (Trap.Trap Trap.Oob)

let[@inline] mark m ea w =
  Bytes.unsafe_set m.dirty (ea lsr page_bits) '\001';
  Bytes.unsafe_set m.dirty ((ea + w - 1) lsr page_bits) '\001'

let[@inline] get8 m ea = Char.code (Bytes.unsafe_get m.bytes ea)
let[@inline] set8 m ea v = Bytes.unsafe_set m.bytes ea (Char.unsafe_chr (v land 0xff))

let load8 m ea = check ea 1; get8 m ea
let load16 m ea = check ea 2; get8 m ea lor (get8 m (ea + 1) lsl 8)

let load32 m ea =
  check ea 4;
  if Sys.big_endian then
    get8 m ea lor (get8 m (ea + 1) lsl 8) lor (get8 m (ea + 2) lsl 16)
    lor (get8 m (ea + 3) lsl 24)
  else I32.wrap (Int32.to_int (get32u m.bytes ea))

(* Stores write the low [w] bytes of [v]. *)
let store m ea w v =
  check ea w;
  mark m ea w;
  if w = 4 && not Sys.big_endian then set32u m.bytes ea (Int32.of_int v)
  else
    for i = 0 to w - 1 do
      set8 m (ea + i) (I32.byte v i)
    done

(* input_base: the input and its NUL at [ea]. *)
let write_string m ea s =
  let n = String.length s in
  check ea (n + 1);
  mark m ea (n + 1);
  for p = ea lsr page_bits to (ea + n) lsr page_bits do
    Bytes.unsafe_set m.dirty p '\001'
  done;
  Bytes.blit_string s 0 m.bytes ea n;
  Bytes.set m.bytes (ea + n) '\000'

let reset m =
  let d = m.dirty in
  for p = 0 to Bytes.length d - 1 do
    if Bytes.unsafe_get d p <> '\000' then begin
      let off = p lsl page_bits in
      Bytes.fill m.bytes off (min (1 lsl page_bits) (size - off)) '\000';
      Bytes.unsafe_set d p '\000'
    end
  done
