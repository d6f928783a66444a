/*
 * hello.c — the smallest isowasm program: print a fixed greeting.
 * The input is ignored.
 */
void compute(const char *input) {
    (void)input;
    out_str("Hello, world!\n");
}
