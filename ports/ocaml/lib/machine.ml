(* The machine (MACHINE.md §3-§7): state, one small handler per op, and the
   run loop with its step budget and checkpoints.

   Handlers follow one pattern: pop operands (a pop of an empty stack raises
   Trap stack_underflow), compute with I32, push, emit the step's tokens when
   tracing, count the tokens, advance pc. A handler that traps raises before
   it changes pc, so the trap's pc is the instruction's own. *)

open Trap

type status = Running | Halted | Trapped of Trap.t * int | Budget_exhausted

type t = {
  mutable code : Op.t array;
  mutable imm : int array;
  mutable input : string;
  stack : int array;
  mutable sp : int;
  locals : int array;          (* one block of locals_per_frame per frame *)
  mutable base : int;          (* the current frame's block *)
  mutable used : int;          (* 1 + the highest local index the program names *)
  ret_pc : int array;          (* per active call: the return pc ... *)
  call_imm : int array;        (* ... and the call's immediate *)
  mutable depth : int;
  globals : int array;
  mem : Memory.t;
  out : Buffer.t;
  mutable pc : int;
  mutable steps : int;
  mutable tokens : int;
  mutable stopped : bool;
  mutable status : status;
  mutable tracing : bool;
  mutable tr : Trace.t;
}

let nlocals = Limits.locals_per_frame

let create () =
  { code = [||]; imm = [||]; input = "";
    stack = Array.make Limits.operand_stack 0; sp = 0;
    locals = Array.make ((Limits.call_depth + 1) * nlocals) 0; base = 0; used = 0;
    ret_pc = Array.make Limits.call_depth 0; call_imm = Array.make Limits.call_depth 0;
    depth = 0; globals = Array.make Limits.globals 0; mem = Memory.create ();
    out = Buffer.create 256; pc = 0; steps = 0; tokens = 0; stopped = false;
    status = Running; tracing = false; tr = Trace.create Trace.No_trace }

(* Load a program and its input into a (possibly used) machine: the initial
   state of §3, and the input section that opens every trace (§5). *)
let load m (p : Program.t) ~input ~mode =
  Memory.reset m.mem;
  m.code <- p.code;
  m.imm <- p.imm;
  m.input <- input;
  m.sp <- 0;
  (* A frame's locals start at zero; only the slots the program can name
     need clearing, so a call clears [used] of them, not all 256. *)
  m.used <- 0;
  Array.iteri (fun i op -> if Op.is_local op then m.used <- max m.used (p.imm.(i) + 1)) p.code;
  Array.fill m.locals 0 nlocals 0;
  m.base <- 0;
  m.depth <- 0;
  Array.fill m.globals 0 Limits.globals 0;
  Buffer.clear m.out;
  m.pc <- 0;
  m.steps <- 0;
  m.tokens <- String.length input + 2;
  m.stopped <- false;
  m.status <- Running;
  m.tracing <- mode <> Trace.No_trace;
  m.tr <- Trace.create mode;
  if m.tracing then Trace.input_section m.tr input

(* -- operand stack ------------------------------------------------------ *)

let[@inline] push m v =
  if m.sp >= Limits.operand_stack then raise (Trap Stack_overflow);
  Array.unsafe_set m.stack m.sp v;
  m.sp <- m.sp + 1

let[@inline] pop m =
  if m.sp = 0 then raise (Trap Stack_underflow);
  m.sp <- m.sp - 1;
  Array.unsafe_get m.stack m.sp

(* -- emission helpers: tokens counted always, text only when tracing ---- *)

let[@inline] next m = m.pc <- m.pc + 1

let[@inline] emit_value4 m v flags tail =
  if m.tracing then Trace.value4 m.tr v flags tail;
  m.tokens <- m.tokens + 5

let[@inline] emit_line m s =
  if m.tracing then Trace.line m.tr s;
  m.tokens <- m.tokens + 1

(* -- handlers, one per op ------------------------------------------------ *)

let op_const m k =
  push m k;
  emit_value4 m k 0 Trace.commit_push;
  next m

let op_local_get m i =
  let v = Array.unsafe_get m.locals (m.base + i) in
  push m v;
  emit_value4 m v 0 Trace.commit_push;
  next m

let op_local_set m i =
  let v = pop m in
  Array.unsafe_set m.locals (m.base + i) v;
  emit_value4 m v 0 Trace.commit_pop;
  next m

let op_local_tee m i =
  let v = pop m in
  push m v;
  Array.unsafe_set m.locals (m.base + i) v;
  emit_value4 m v 0 Trace.commit_same;
  next m

let op_global_get m i =
  let v = Array.unsafe_get m.globals i in
  push m v;
  emit_value4 m v 0 Trace.commit_push;
  next m

let op_global_set m i =
  Array.unsafe_set m.globals i (pop m);
  emit_line m Trace.commit_pop;
  next m

let op_drop m =
  ignore (pop m);
  emit_line m Trace.commit_pop;
  next m

let op_select m =
  let c = pop m in
  let b = pop m in
  let a = pop m in
  let v = if I32.is_true c then a else b in
  push m v;
  emit_value4 m v 0 Trace.commit_select;
  next m

let[@inline] binop m f =
  let b = pop m in
  let a = pop m in
  let v = f a b in
  push m v;
  emit_value4 m v 0 Trace.commit_binop;
  next m

let op_add m =
  let b = pop m in
  let a = pop m in
  let v = I32.add a b in
  push m v;
  emit_value4 m v (if m.tracing then I32.carries a b else 0) Trace.commit_binop;
  next m

let op_sub m =
  let b = pop m in
  let a = pop m in
  let v = I32.sub a b in
  push m v;
  emit_value4 m v (if m.tracing then I32.borrows a b else 0) Trace.commit_binop;
  next m

let op_eqz m =
  let v = I32.eqz (pop m) in
  push m v;
  emit_value4 m v 0 Trace.commit_unop;
  next m

(* Effective address: the popped base plus the offset immediate, computed
   exactly (no wrap modulo 2^32, as in wasm); Memory checks it against the size. *)
let[@inline] address m off = pop m + off

let op_load m off =
  let v = Memory.load32 m.mem (address m off) in
  push m v;
  emit_value4 m v 0 Trace.commit_unop;
  next m

let op_load_narrow m off ~width ~signed =
  let ea = address m off in
  let raw = if width = 1 then Memory.load8 m.mem ea else Memory.load16 m.mem ea in
  let v = if signed then I32.extend_s ~width raw else raw in
  push m v;
  emit_value4 m v (if signed then I32.sign_flags ~width raw else 0) Trace.commit_unop;
  next m

let op_store m off ~width =
  let v = pop m in
  let ea = address m off in
  Memory.store m.mem ea width v;
  if m.tracing then Trace.value_n m.tr v 0 width Trace.commit_store;
  m.tokens <- m.tokens + width + 1;
  next m

let[@inline] jump m imm = m.pc <- I32.branch_target ~pc:m.pc imm

let op_br m k =
  if m.tracing then Trace.branch m.tr k 0 Trace.commit_br;
  m.tokens <- m.tokens + 6;
  jump m k

let op_br_if m k =
  if I32.is_true (pop m) then begin
    if m.tracing then Trace.branch m.tr k 0 Trace.commit_br_if;
    m.tokens <- m.tokens + 6;
    jump m k
  end
  else begin
    emit_line m Trace.commit_pop;
    next m
  end

let op_call m k =
  if m.depth >= Limits.call_depth then raise (Trap Call_depth);
  m.ret_pc.(m.depth) <- m.pc + 1;
  m.call_imm.(m.depth) <- k;
  m.depth <- m.depth + 1;
  m.base <- m.base + nlocals;
  for i = m.base to m.base + m.used - 1 do
    Array.unsafe_set m.locals i 0
  done;
  if m.tracing then Trace.branch m.tr k 0 Trace.call_commit;
  m.tokens <- m.tokens + 6;
  jump m k

let op_return m k =
  if m.depth = 0 then raise (Trap Return_outside);
  m.depth <- m.depth - 1;
  m.base <- m.base - nlocals;
  let rpc = m.ret_pc.(m.depth) and kc = m.call_imm.(m.depth) in
  if m.tracing then
    Trace.branch m.tr (I32.sub rpc (m.pc + 1)) (I32.borrows k kc) Trace.return_commit;
  m.tokens <- m.tokens + 6;
  m.pc <- rpc

let op_output m =
  let c = I32.low_bytes ~width:1 (pop m) in
  Buffer.add_char m.out (Char.chr c);
  if m.tracing then Trace.out m.tr c;
  m.tokens <- m.tokens + 1;
  next m

let op_halt m c =
  if c <> 0 then
    match Trap.of_code c with
    | Some t -> raise (Trap t)
    | None -> assert false (* rejected at load time *)
  else begin
    emit_line m Trace.halt_line;
    m.stopped <- true;
    m.status <- Halted
  end

(* Its tokens are the input section, written when the machine was loaded. *)
let op_input_base m a =
  Memory.write_string m.mem a m.input;
  next m

(* -- the loop ------------------------------------------------------------- *)

let step m =
  let pc = m.pc in
  let k = Array.unsafe_get m.imm pc in
  m.steps <- m.steps + 1;
  match Array.unsafe_get m.code pc with
  | Op.Local_get -> op_local_get m k
  | Op.Const -> op_const m k
  | Op.Local_set -> op_local_set m k
  | Op.Add -> op_add m
  | Op.Sub -> op_sub m
  | Op.Br_if -> op_br_if m k
  | Op.Local_tee -> op_local_tee m k
  | Op.Load -> op_load m k
  | Op.Store -> op_store m k ~width:4
  | Op.Br -> op_br m k
  | Op.Eqz -> op_eqz m
  | Op.Eq -> binop m I32.eq
  | Op.Ne -> binop m I32.ne
  | Op.Lt_s -> binop m I32.lt_s
  | Op.Lt_u -> binop m I32.lt_u
  | Op.Gt_s -> binop m I32.gt_s
  | Op.Gt_u -> binop m I32.gt_u
  | Op.Le_s -> binop m I32.le_s
  | Op.Le_u -> binop m I32.le_u
  | Op.Ge_s -> binop m I32.ge_s
  | Op.Ge_u -> binop m I32.ge_u
  | Op.Load8_u -> op_load_narrow m k ~width:1 ~signed:false
  | Op.Load8_s -> op_load_narrow m k ~width:1 ~signed:true
  | Op.Load16_u -> op_load_narrow m k ~width:2 ~signed:false
  | Op.Load16_s -> op_load_narrow m k ~width:2 ~signed:true
  | Op.Store8 -> op_store m k ~width:1
  | Op.Store16 -> op_store m k ~width:2
  | Op.Call -> op_call m k
  | Op.Return -> op_return m k
  | Op.Global_get -> op_global_get m k
  | Op.Global_set -> op_global_set m k
  | Op.Drop -> op_drop m
  | Op.Select -> op_select m
  | Op.Output -> op_output m
  | Op.Halt -> op_halt m k
  | Op.Input_base -> op_input_base m k

(* Run until [limit] steps have executed or the machine stops. A trap ends
   the run: the trapping step writes trap(NAME) alone (one token). *)
let slice m limit =
  try
    while m.steps < limit && not m.stopped do
      step m
    done
  with Trap t ->
    m.stopped <- true;
    m.status <- Trapped (t, m.pc);
    m.tokens <- m.tokens + 1;
    if m.tracing then Trace.trap m.tr t

(* Run under budget [max_steps]. Slices end at multiples of
   [checkpoint_interval] (or at the budget); a checkpoint is taken after
   every multiple of the interval at which the machine is still running. *)
let run m ~max_steps ~checkpoint_interval =
  if checkpoint_interval <= 0 then invalid_arg "checkpoint_interval";
  while (not m.stopped) && m.steps < max_steps do
    let limit = min max_steps ((m.steps / checkpoint_interval + 1) * checkpoint_interval) in
    slice m limit;
    if m.tracing && (not m.stopped) && m.steps mod checkpoint_interval = 0 then
      Trace.checkpoint m.tr m.steps
  done;
  if not m.stopped then m.status <- Budget_exhausted

(* -- results ----------------------------------------------------------- *)

type result = {
  status : status;
  steps : int;
  tokens : int;
  output : string;
  digest : string option;
  checkpoints : (int * string) list;
  text : string option;
}

let status_name = function
  | Running -> "running"
  | Halted -> "halted"
  | Trapped _ -> "trapped"
  | Budget_exhausted -> "budget-exhausted"

let result (m : t) ~mode =
  { status = m.status; steps = m.steps; tokens = m.tokens; output = Buffer.contents m.out;
    digest = (if m.tracing then Some (Trace.hexdigest m.tr) else None);
    checkpoints = Trace.checkpoints m.tr;
    text = (if mode = Trace.Text then Some (Trace.text m.tr) else None) }

(* One run on a reusable machine. *)
let execute ?(m = create ()) ?input ?(max_steps = Limits.default_max_steps)
    ?(checkpoint_interval = Limits.default_checkpoint_interval) ?(mode = Trace.No_trace)
    (p : Program.t) =
  let input = match input with Some s -> s | None -> p.input in
  load m p ~input ~mode;
  run m ~max_steps ~checkpoint_interval;
  result m ~mode
