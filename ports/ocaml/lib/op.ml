(* The opcode set (spec/machine.yaml `ops`, in table order, then the pseudo-op
   input_base). Constant constructors: a match on them is a jump table. *)

type t =
  | Halt
  | Return
  | Call
  | Br
  | Br_if
  | Drop
  | Select
  | Local_get
  | Local_set
  | Local_tee
  | Global_get
  | Global_set
  | Load
  | Load8_s
  | Load8_u
  | Load16_s
  | Load16_u
  | Store
  | Store8
  | Store16
  | Const
  | Eqz
  | Eq
  | Ne
  | Lt_s
  | Lt_u
  | Gt_s
  | Gt_u
  | Le_s
  | Le_u
  | Ge_s
  | Ge_u
  | Add
  | Sub
  | Output
  | Input_base

let all =
  [| Halt; Return; Call; Br; Br_if; Drop; Select; Local_get; Local_set;
     Local_tee; Global_get; Global_set; Load; Load8_s; Load8_u; Load16_s;
     Load16_u; Store; Store8; Store16; Const; Eqz; Eq; Ne; Lt_s; Lt_u; Gt_s;
     Gt_u; Le_s; Le_u; Ge_s; Ge_u; Add; Sub; Output; Input_base |]

let name = function
  | Halt -> "halt"
  | Return -> "return"
  | Call -> "call"
  | Br -> "br"
  | Br_if -> "br_if"
  | Drop -> "drop"
  | Select -> "select"
  | Local_get -> "local.get"
  | Local_set -> "local.set"
  | Local_tee -> "local.tee"
  | Global_get -> "global.get"
  | Global_set -> "global.set"
  | Load -> "i32.load"
  | Load8_s -> "i32.load8_s"
  | Load8_u -> "i32.load8_u"
  | Load16_s -> "i32.load16_s"
  | Load16_u -> "i32.load16_u"
  | Store -> "i32.store"
  | Store8 -> "i32.store8"
  | Store16 -> "i32.store16"
  | Const -> "i32.const"
  | Eqz -> "i32.eqz"
  | Eq -> "i32.eq"
  | Ne -> "i32.ne"
  | Lt_s -> "i32.lt_s"
  | Lt_u -> "i32.lt_u"
  | Gt_s -> "i32.gt_s"
  | Gt_u -> "i32.gt_u"
  | Le_s -> "i32.le_s"
  | Le_u -> "i32.le_u"
  | Ge_s -> "i32.ge_s"
  | Ge_u -> "i32.ge_u"
  | Add -> "i32.add"
  | Sub -> "i32.sub"
  | Output -> "output"
  | Input_base -> "input_base"

let by_name : (string, t) Hashtbl.t =
  let h = Hashtbl.create 64 in
  Array.iter (fun o -> Hashtbl.replace h (name o) o) all;
  h

let of_name s = Hashtbl.find_opt by_name s

(* What the load-time checks of MACHINE.md §2 need to know of an op. *)
let is_local = function Local_get | Local_set | Local_tee -> true | _ -> false
let is_global = function Global_get | Global_set -> true | _ -> false
let is_branch = function Br | Br_if | Call -> true | _ -> false
let can_end = function Halt | Br | Return -> true | _ -> false
