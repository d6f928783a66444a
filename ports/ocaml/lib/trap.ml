(* Traps (spec/machine.yaml `traps`, MACHINE.md §6), in table order. *)

type t =
  | Unreachable
  | Div_zero
  | Int_overflow
  | Oob
  | Call_depth
  | Stack_overflow
  | Stack_underflow
  | Return_outside
  | Memory_limit

let all =
  [| Unreachable; Div_zero; Int_overflow; Oob; Call_depth; Stack_overflow;
     Stack_underflow; Return_outside; Memory_limit |]

let name = function
  | Unreachable -> "unreachable"
  | Div_zero -> "div_zero"
  | Int_overflow -> "int_overflow"
  | Oob -> "oob"
  | Call_depth -> "call_depth"
  | Stack_overflow -> "stack_overflow"
  | Stack_underflow -> "stack_underflow"
  | Return_outside -> "return_outside"
  | Memory_limit -> "memory_limit"

(* The halt immediate that raises the trap explicitly, if any. *)
let code = function
  | Unreachable -> Some 1
  | Div_zero -> Some 2
  | Int_overflow -> Some 3
  | Oob -> Some 4
  | Memory_limit -> Some 5
  | Call_depth | Stack_overflow | Stack_underflow | Return_outside -> None

let resource = function
  | Call_depth | Stack_overflow | Memory_limit -> true
  | _ -> false

let of_code c =
  let r = ref None in
  Array.iter (fun t -> if code t = Some c then r := Some t) all;
  !r

(* Raised by an instruction that traps; the machine turns it into a status. *)
exception Trap of t
