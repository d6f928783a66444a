(* The machine's integer semantics, written once over the word width.

   Every value is a native OCaml int holding the word's unsigned reading
   (0 .. 2^bits - 1); everything the machine does to a value that depends on
   the width (wrap-around, signed reading, comparisons, the byte-wise carry
   and borrow flags of the trace, sign extension, immediates as branch
   offsets, byte tokens) is here and nowhere else. The width is the single
   constant [bits]; OCaml's 63-bit int holds any sum or difference of two
   words without overflow, so wrapping is one mask. *)

let bits = 32
let bytes = bits / 8
let mask = (1 lsl bits) - 1
let sign_bit = 1 lsl (bits - 1)

(* Reduce any int to a word (arithmetic modulo 2^bits). *)
let[@inline] wrap x = x land mask

(* Two's-complement reading. *)
let[@inline] to_signed x = (x lxor sign_bit) - sign_bit
let[@inline] of_signed x = x land mask

let[@inline] add a b = (a + b) land mask
let[@inline] sub a b = (a - b) land mask

let[@inline] of_bool c = if c then 1 else 0
let[@inline] eqz v = of_bool (v = 0)
let[@inline] eq a b = of_bool (a = b)
let[@inline] ne a b = of_bool (a <> b)
let[@inline] lt_u a b = of_bool (a < b)
let[@inline] gt_u a b = of_bool (a > b)
let[@inline] le_u a b = of_bool (a <= b)
let[@inline] ge_u a b = of_bool (a >= b)
(* Flipping the sign bit maps signed order onto unsigned order. *)
let[@inline] lt_s a b = of_bool (a lxor sign_bit < b lxor sign_bit)
let[@inline] gt_s a b = of_bool (a lxor sign_bit > b lxor sign_bit)
let[@inline] le_s a b = of_bool (a lxor sign_bit <= b lxor sign_bit)
let[@inline] ge_s a b = of_bool (a lxor sign_bit >= b lxor sign_bit)

let[@inline] is_true v = v <> 0

(* Byte i of a word, lowest first. *)
let[@inline] byte v i = (v lsr (8 * i)) land 0xff

(* Per-byte flags as a bit set (bit i: byte i flagged).
   For s = a + b computed without wrapping, bit k of (a xor b xor s) is the
   carry into bit k, so the carry out of byte i is bit 8(i+1); the same holds
   for borrows of a - b. *)
let byte_boundary_flags c =
  let f = ref 0 in
  for i = 0 to bytes - 1 do
    f := !f lor (((c lsr (8 * (i + 1))) land 1) lsl i)
  done;
  !f

let carries a b = byte_boundary_flags (a lxor b lxor (a + b))
let borrows a b = byte_boundary_flags (a lxor b lxor (a - b))

let all_bytes = (1 lsl bytes) - 1

(* Sign extension of a loaded narrow value of [width] bytes, and its flags:
   every byte above the loaded value's lowest is flagged when it is negative
   (sign8: all bytes; sign16: bytes 1..). *)
let extend_s ~width v =
  let nbits = 8 * width in
  if v land (1 lsl (nbits - 1)) <> 0 then v lor (mask lxor ((1 lsl nbits) - 1))
  else v

let sign_flags ~width v =
  if v land (1 lsl ((8 * width) - 1)) = 0 then 0
  else if width = 1 then all_bytes
  else all_bytes land lnot ((1 lsl (width - 1)) - 1)

(* The low [width] bytes of a word (narrow stores, output). *)
let[@inline] low_bytes ~width v = v land ((1 lsl (8 * width)) - 1)

(* A branch immediate is a signed offset from the next instruction. *)
let[@inline] branch_target ~pc imm = pc + 1 + to_signed imm
