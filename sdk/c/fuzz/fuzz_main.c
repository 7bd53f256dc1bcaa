/*
 * fuzz_main.c — a bounded random-input driver for fuzz_tgp.c where
 * libFuzzer is unavailable (gcc): it runs every corpus file, then mutates
 * them (bit flips, byte sets, truncation, splicing, length-field edits)
 * for a fixed number of iterations from a fixed seed, so CI runs are
 * reproducible. Usage: fuzz_main ITERATIONS FILE...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT   4200u /* a whole 4 KiB frame plus header and slack */
#define MAX_CORPUS  256u
#define SEED        0x9e3779b97f4a7c15ull

static uint8_t corpus[MAX_CORPUS][MAX_INPUT];
static size_t corpus_len[MAX_CORPUS];

static uint64_t rng = SEED;
static uint32_t next(void)
{
    /* xorshift64*: fast, good enough to pick mutations */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545f4914f6cdd1dull) >> 32);
}

int main(int argc, char **argv)
{
    static uint8_t in[MAX_INPUT];
    unsigned long iterations, i;
    size_t ncorpus = 0;
    int a;
    if (argc < 2) {
        fprintf(stderr, "usage: fuzz_main ITERATIONS [FILE...]\n");
        return 2;
    }
    iterations = strtoul(argv[1], NULL, 10);
    for (a = 2; a < argc && ncorpus < MAX_CORPUS; a++) {
        FILE *f = fopen(argv[a], "rb");
        if (f == NULL) continue;
        corpus_len[ncorpus] = fread(corpus[ncorpus], 1, MAX_INPUT, f);
        fclose(f);
        LLVMFuzzerTestOneInput(corpus[ncorpus], corpus_len[ncorpus]);
        ncorpus++;
    }
    for (i = 0; i < iterations; i++) {
        size_t n, k, edits;
        if (ncorpus > 0 && next() % 8u != 0) {
            size_t c = next() % ncorpus;
            n = corpus_len[c];
            memcpy(in, corpus[c], n);
        } else {
            n = next() % 64u;
            for (k = 0; k < n; k++) in[k] = (uint8_t)next();
        }
        edits = 1 + next() % 4u;
        for (k = 0; k < edits && n > 0; k++) {
            size_t at = next() % n;
            switch (next() % 6u) {
            case 0: in[at] ^= (uint8_t)(1u << (next() % 8u)); break;
            case 1: in[at] = (uint8_t)next(); break;
            case 2: n = at + 1; break; /* truncate */
            case 3: in[at] = (uint8_t)(0xc4u + next() % 0x1cu); break; /* a counted MessagePack code */
            case 4: in[at] = 0xff; break; /* huge lengths */
            default: /* splice another corpus entry's tail */
                if (ncorpus > 0) {
                    size_t c = next() % ncorpus, from = corpus_len[c] ? next() % corpus_len[c] : 0;
                    size_t m = corpus_len[c] - from;
                    if (at + m > MAX_INPUT) m = MAX_INPUT - at;
                    memcpy(in + at, corpus[c] + from, m);
                    n = at + m;
                }
            }
        }
        LLVMFuzzerTestOneInput(in, n);
    }
    printf("fuzz: %lu corpus inputs and %lu mutated inputs, no crash\n", (unsigned long)ncorpus, iterations);
    return 0;
}
