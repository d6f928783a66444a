(* SHA-256 (FIPS 180-4 §6.2), incremental. The chaining state is 8 native
   ints (so the C stub can share it); the compression loop works on int32. *)

let k =
  [| 0x428a2f98; 0x71374491; 0xb5c0fbcf; 0xe9b5dba5; 0x3956c25b; 0x59f111f1;
     0x923f82a4; 0xab1c5ed5; 0xd807aa98; 0x12835b01; 0x243185be; 0x550c7dc3;
     0x72be5d74; 0x80deb1fe; 0x9bdc06a7; 0xc19bf174; 0xe49b69c1; 0xefbe4786;
     0x0fc19dc6; 0x240ca1cc; 0x2de92c6f; 0x4a7484aa; 0x5cb0a9dc; 0x76f988da;
     0x983e5152; 0xa831c66d; 0xb00327c8; 0xbf597fc7; 0xc6e00bf3; 0xd5a79147;
     0x06ca6351; 0x14292967; 0x27b70a85; 0x2e1b2138; 0x4d2c6dfc; 0x53380d13;
     0x650a7354; 0x766a0abb; 0x81c2c92e; 0x92722c85; 0xa2bfe8a1; 0xa81a664b;
     0xc24b8b70; 0xc76c51a3; 0xd192e819; 0xd6990624; 0xf40e3585; 0x106aa070;
     0x19a4c116; 0x1e376c08; 0x2748774c; 0x34b0bcb5; 0x391c0cb3; 0x4ed8aa4a;
     0x5b9cca4f; 0x682e6ff3; 0x748f82ee; 0x78a5636f; 0x84c87814; 0x8cc70208;
     0x90befffa; 0xa4506ceb; 0xbef9a3f7; 0xc67178f2 |]

let h0 =
  [| 0x6a09e667; 0xbb67ae85; 0x3c6ef372; 0xa54ff53a; 0x510e527f; 0x9b05688c;
     0x1f83d9ab; 0x5be0cd19 |]

let m32 = 0xffffffff

(* Words in the compression loop are unboxed int32 (ocamlopt keeps them in
   registers), so additions wrap by themselves and rotations are two shifts. *)
external get32 : Bytes.t -> int -> int32 = "%caml_bytes_get32u"
external set32 : Bytes.t -> int -> int32 -> unit = "%caml_bytes_set32u"
external bswap32 : int32 -> int32 = "%bswap_int32"

type t = {
  h : int array;             (* the 8 chaining words *)
  block : Bytes.t;           (* a partial block *)
  mutable fill : int;        (* bytes held in [block] *)
  mutable length : int;      (* bytes fed in all *)
  w : Bytes.t;               (* message schedule, 64 native-endian int32, scratch *)
}

let create () =
  { h = Array.copy h0; block = Bytes.create 64; fill = 0; length = 0; w = Bytes.create 256 }

let copy t =
  { h = Array.copy t.h; block = Bytes.copy t.block; fill = t.fill; length = t.length;
    w = Bytes.create 256 }

let kb =
  let b = Bytes.create 256 in
  Array.iteri (fun i v -> set32 b (4 * i) (Int32.of_int v)) k;
  b

let ( +: ) = Int32.add
let ( ^: ) = Int32.logxor
let ( &: ) = Int32.logand
let ( |: ) = Int32.logor
let[@inline] rotr x n = Int32.logor (Int32.shift_right_logical x n) (Int32.shift_left x (32 - n))
let[@inline] shr x n = Int32.shift_right_logical x n
let[@inline] be32 s o = if Sys.big_endian then get32 s o else bswap32 (get32 s o)

(* One block at [off] of [s]; bounds are the caller's. *)
let compress t s off =
  let w = t.w in
  for i = 0 to 15 do
    set32 w (4 * i) (be32 s (off + (4 * i)))
  done;
  for i = 16 to 63 do
    let x = get32 w (4 * (i - 15)) and y = get32 w (4 * (i - 2)) in
    let s0 = rotr x 7 ^: rotr x 18 ^: shr x 3 in
    let s1 = rotr y 17 ^: rotr y 19 ^: shr y 10 in
    set32 w (4 * i) (get32 w (4 * (i - 16)) +: s0 +: get32 w (4 * (i - 7)) +: s1)
  done;
  let h = t.h in
  let word i = Int32.of_int (Array.unsafe_get h i) in
  let a = ref (word 0) and b = ref (word 1) and c = ref (word 2) and d = ref (word 3)
  and e = ref (word 4) and f = ref (word 5) and g = ref (word 6) and hh = ref (word 7) in
  for i = 0 to 63 do
    let ev = !e and av = !a in
    let t1 =
      !hh +: (rotr ev 6 ^: rotr ev 11 ^: rotr ev 25) +: (!g ^: (ev &: (!f ^: !g)))
      +: get32 kb (4 * i) +: get32 w (4 * i)
    in
    let t2 = (rotr av 2 ^: rotr av 13 ^: rotr av 22) +: ((av &: !b) |: (!c &: (av |: !b))) in
    hh := !g;
    g := !f;
    f := ev;
    e := !d +: t1;
    d := !c;
    c := !b;
    b := av;
    a := t1 +: t2
  done;
  let add i x = Array.unsafe_set h i ((Array.unsafe_get h i + Int32.to_int x) land m32) in
  add 0 !a; add 1 !b; add 2 !c; add 3 !d; add 4 !e; add 5 !f; add 6 !g; add 7 !hh

(* The compression function in C with the x86 SHA extensions (sha256_stubs.c),
   used when the CPU has them unless ISOWASM_OCAML_PURE_SHA is set. *)
external has_ni : unit -> bool = "isowasm_sha256_has_ni" [@@noalloc]
external blocks_ni : int array -> Bytes.t -> int -> int -> unit = "isowasm_sha256_blocks"
  [@@noalloc]

let accelerated = ref (has_ni () && Sys.getenv_opt "ISOWASM_OCAML_PURE_SHA" = None)

(* Choose the implementation (tests run both); false where the CPU lacks it. *)
let set_accelerated on = accelerated := on && has_ni ()

let compress_blocks t s off n =
  if !accelerated then blocks_ni t.h s off n
  else
    for i = 0 to n - 1 do
      compress t s (off + (64 * i))
    done

let feed t s off len =
  if off < 0 || len < 0 || off + len > Bytes.length s then
    invalid_arg "Sha256.feed";
  t.length <- t.length + len;
  let off = ref off and len = ref len in
  if t.fill > 0 then begin
    let n = min !len (64 - t.fill) in
    Bytes.blit s !off t.block t.fill n;
    t.fill <- t.fill + n;
    off := !off + n;
    len := !len - n;
    if t.fill = 64 then begin
      compress_blocks t t.block 0 1;
      t.fill <- 0
    end
  end;
  if !len >= 64 then begin
    let n = !len / 64 in
    compress_blocks t s !off n;
    off := !off + (64 * n);
    len := !len - (64 * n)
  end;
  if !len > 0 then begin
    Bytes.blit s !off t.block 0 !len;
    t.fill <- !len
  end

let feed_string t s = feed t (Bytes.unsafe_of_string s) 0 (String.length s)

(* The digest of everything fed so far; [t] itself is left as it was. *)
let digest t =
  let t = copy t in
  let bitlen = t.length * 8 in
  let pad = Bytes.make (if t.fill < 56 then 64 - t.fill else 128 - t.fill) '\000' in
  Bytes.set pad 0 '\x80';
  let n = Bytes.length pad in
  for i = 0 to 7 do
    Bytes.set pad (n - 1 - i) (Char.chr ((bitlen lsr (8 * i)) land 0xff))
  done;
  feed t pad 0 n;
  assert (t.fill = 0);
  let out = Bytes.create 32 in
  for i = 0 to 7 do
    let v = t.h.(i) in
    Bytes.set out (4 * i) (Char.chr (v lsr 24));
    Bytes.set out ((4 * i) + 1) (Char.chr ((v lsr 16) land 0xff));
    Bytes.set out ((4 * i) + 2) (Char.chr ((v lsr 8) land 0xff));
    Bytes.set out ((4 * i) + 3) (Char.chr (v land 0xff))
  done;
  Bytes.to_string out

let to_hex s =
  let b = Buffer.create (2 * String.length s) in
  String.iter (fun c -> Buffer.add_string b (Printf.sprintf "%02x" (Char.code c))) s;
  Buffer.contents b

let hexdigest t = to_hex (digest t)

let hex_of_string s =
  let t = create () in
  feed_string t s;
  hexdigest t
