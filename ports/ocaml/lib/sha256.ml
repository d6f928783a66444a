(* SHA-256 (FIPS 180-4 §6.2), incremental, over native ints holding 32-bit
   words. Rotations are written as the xor of both shift halves, masked once:
   within 32 bits the halves of a rotation never overlap, so or = xor. *)

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

type t = {
  h : int array;             (* the 8 chaining words *)
  block : Bytes.t;           (* a partial block *)
  mutable fill : int;        (* bytes held in [block] *)
  mutable length : int;      (* bytes fed in all *)
  w : int array;             (* message schedule, scratch *)
}

let create () =
  { h = Array.copy h0; block = Bytes.create 64; fill = 0; length = 0;
    w = Array.make 64 0 }

let copy t =
  { h = Array.copy t.h; block = Bytes.copy t.block; fill = t.fill;
    length = t.length; w = Array.make 64 0 }

let[@inline] be32 s o =
  (Char.code (Bytes.unsafe_get s o) lsl 24)
  lor (Char.code (Bytes.unsafe_get s (o + 1)) lsl 16)
  lor (Char.code (Bytes.unsafe_get s (o + 2)) lsl 8)
  lor Char.code (Bytes.unsafe_get s (o + 3))

(* One block at [off] of [s]; bounds are the caller's. *)
let compress t s off =
  let w = t.w in
  for i = 0 to 15 do
    Array.unsafe_set w i (be32 s (off + (4 * i)))
  done;
  for i = 16 to 63 do
    let x = Array.unsafe_get w (i - 15) and y = Array.unsafe_get w (i - 2) in
    let s0 =
      ((x lsr 7) lxor (x lsl 25) lxor (x lsr 18) lxor (x lsl 14) lxor (x lsr 3))
      land m32
    in
    let s1 =
      ((y lsr 17) lxor (y lsl 15) lxor (y lsr 19) lxor (y lsl 13)
      lxor (y lsr 10))
      land m32
    in
    Array.unsafe_set w i
      ((Array.unsafe_get w (i - 16) + s0 + Array.unsafe_get w (i - 7) + s1)
      land m32)
  done;
  let h = t.h in
  let a = ref (Array.unsafe_get h 0) and b = ref (Array.unsafe_get h 1)
  and c = ref (Array.unsafe_get h 2) and d = ref (Array.unsafe_get h 3)
  and e = ref (Array.unsafe_get h 4) and f = ref (Array.unsafe_get h 5)
  and g = ref (Array.unsafe_get h 6) and hh = ref (Array.unsafe_get h 7) in
  for i = 0 to 63 do
    let ev = !e and av = !a in
    let sig1 =
      ((ev lsr 6) lxor (ev lsl 26) lxor (ev lsr 11) lxor (ev lsl 21)
      lxor (ev lsr 25) lxor (ev lsl 7))
      land m32
    in
    let ch = !g lxor (ev land (!f lxor !g)) in
    let t1 =
      !hh + sig1 + ch + Array.unsafe_get k i + Array.unsafe_get w i
    in
    let sig0 =
      ((av lsr 2) lxor (av lsl 30) lxor (av lsr 13) lxor (av lsl 19)
      lxor (av lsr 22) lxor (av lsl 10))
      land m32
    in
    let maj = (av land !b) lor (!c land (av lor !b)) in
    hh := !g;
    g := !f;
    f := ev;
    e := (!d + t1) land m32;
    d := !c;
    c := !b;
    b := av;
    a := (t1 + sig0 + maj) land m32
  done;
  Array.unsafe_set h 0 ((Array.unsafe_get h 0 + !a) land m32);
  Array.unsafe_set h 1 ((Array.unsafe_get h 1 + !b) land m32);
  Array.unsafe_set h 2 ((Array.unsafe_get h 2 + !c) land m32);
  Array.unsafe_set h 3 ((Array.unsafe_get h 3 + !d) land m32);
  Array.unsafe_set h 4 ((Array.unsafe_get h 4 + !e) land m32);
  Array.unsafe_set h 5 ((Array.unsafe_get h 5 + !f) land m32);
  Array.unsafe_set h 6 ((Array.unsafe_get h 6 + !g) land m32);
  Array.unsafe_set h 7 ((Array.unsafe_get h 7 + !hh) land m32)

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
      compress t t.block 0;
      t.fill <- 0
    end
  end;
  while !len >= 64 do
    compress t s !off;
    off := !off + 64;
    len := !len - 64
  done;
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
