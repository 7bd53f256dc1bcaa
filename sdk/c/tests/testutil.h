/*
 * testutil.h — a minimal test harness and a scripted in-memory transport
 * for the SDK's unit tests: the "server" side is bytes queued by the test,
 * the clock is virtual and advances only when recv waits.
 */
#ifndef TGP_TESTUTIL_H
#define TGP_TESTUTIL_H

#include <stdio.h>
#include <string.h>

#include "../tgp.h"

extern int tests_passed, tests_failed;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (cond) {                                                              \
            tests_passed++;                                                      \
        } else {                                                                 \
            tests_failed++;                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                        \
    do {                                                                          \
        long long a_ = (long long)(a), b_ = (long long)(b);                       \
        if (a_ == b_) {                                                           \
            tests_passed++;                                                       \
        } else {                                                                  \
            tests_failed++;                                                       \
            fprintf(stderr, "%s:%d: %s == %lld, want %lld\n", __FILE__, __LINE__, #a, a_, b_); \
        }                                                                         \
    } while (0)

#define MOCK_BUF 16384

/* The scripted transport. */
typedef struct {
    uint8_t  in[MOCK_BUF]; /* server → terminal bytes not yet read */
    size_t   in_len, in_off;
    size_t   chunk;        /* most bytes one recv returns (0: no limit) */
    uint8_t  out[MOCK_BUF]; /* terminal → server bytes */
    size_t   out_len;
    uint64_t now;          /* virtual monotonic ms */
    uint64_t unix_ms;      /* the terminal's wall clock at now == 0 */
    uint8_t  rnd;          /* next byte random returns */
    int      closed;       /* recv reports the peer closed once input is drained */
} mock;

void mock_init(mock *m);
void mock_push(mock *m, const uint8_t *b, size_t n);
void mock_callbacks(tgp_callbacks *cb, mock *m);
size_t unhex(const char *s, uint8_t *out, size_t cap);
int same_hex(const uint8_t *b, size_t n, const char *hex);

#endif
