(* Wall-clock seconds without the unix library (only the standard library is
   used): Sys.time is CPU time, which is what a single-threaded run costs. *)
let now () = Sys.time ()
