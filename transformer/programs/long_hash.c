/* An FNV-1a hash over a 256-byte buffer, rewritten ten times: about 11.3 M
   trace tokens, used to run the transformer engine past 10 M tokens
   (conformance/test_engine.py, ci/bench_engine.py). */
void compute(const char *input) {
    (void)input;
    unsigned int h = 2166136261u;
    unsigned char buf[256];
    for (int i = 0; i < 256; i++) buf[i] = (unsigned char)i;
    for (int r = 0; r < 10; r++) {
        for (int i = 0; i < 256; i++) {
            h = (h ^ buf[i]) * 16777619u;
            buf[i] = (unsigned char)(h >> 13);
        }
    }
    for (int k = 0; k < 8; k++) out_byte("0123456789abcdef"[(h >> (28 - 4 * k)) & 15]);
    out_byte('\n');
}
