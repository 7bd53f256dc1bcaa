/*
 * tgp_msgpack.h — the MessagePack subset TGP/1 uses (docs/protocol.md §2).
 *
 * The writer encodes into a caller-supplied buffer and latches an error
 * instead of overrunning it. The reader never copies: strings and binaries
 * it returns point into the buffer being read. Every declared length is
 * checked against the bytes left before it is used, nesting is bounded
 * (TGP_MP_MAX_DEPTH) and unknown trailing elements can be skipped.
 */
#ifndef TGP_MSGPACK_H
#define TGP_MSGPACK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Deepest nesting a body may have; the body array is level 1 (§2). */
#define TGP_MP_MAX_DEPTH 8

/* Writer: encodes into buf[0..cap); err latches on overflow. */
typedef struct {
    uint8_t *buf;
    size_t   cap;
    size_t   len;
    int      err; /* non-zero once something did not fit */
} tgp_mw;

void tgp_mw_init(tgp_mw *w, uint8_t *buf, size_t cap);
void tgp_mw_array(tgp_mw *w, uint32_t n);
void tgp_mw_map(tgp_mw *w, uint32_t n);
void tgp_mw_uint(tgp_mw *w, uint64_t v);
void tgp_mw_int(tgp_mw *w, int64_t v);
void tgp_mw_double(tgp_mw *w, double v);
void tgp_mw_bool(tgp_mw *w, int v);
void tgp_mw_nil(tgp_mw *w);
void tgp_mw_str(tgp_mw *w, const char *s, size_t len);
/* tgp_mw_cstr writes a NUL-terminated string; NULL writes "". */
void tgp_mw_cstr(tgp_mw *w, const char *s);
void tgp_mw_bin(tgp_mw *w, const void *b, size_t len);
/* tgp_mw_raw copies already-encoded MessagePack (a status map, say). */
void tgp_mw_raw(tgp_mw *w, const void *b, size_t len);

/* A string or binary inside a received body: NOT NUL-terminated, valid
 * only while the body's buffer is (for a frame: during the callback). */
typedef struct {
    const uint8_t *p;
    uint32_t       len;
} tgp_bytes;

/* Reader over buf[0..len). Once err is set every later read fails, so a
 * decoder may read all its fields and check err once. */
typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    int            err;
} tgp_mr;

/* Error codes the reader latches in err. */
enum {
    TGP_MP_OK = 0,
    TGP_MP_TRUNCATED = 1, /* a length claims more bytes than remain */
    TGP_MP_TYPE = 2,      /* wrong type for the field */
    TGP_MP_RANGE = 3,     /* value outside the field's bound */
    TGP_MP_DEPTH = 4      /* nested deeper than TGP_MP_MAX_DEPTH */
};

void tgp_mr_init(tgp_mr *r, const uint8_t *buf, size_t len);
/* tgp_mr_array reads an array header; its element count goes to *n. */
int tgp_mr_array(tgp_mr *r, uint32_t *n);
int tgp_mr_map(tgp_mr *r, uint32_t *n);
/* tgp_mr_uint accepts every non-negative integer encoding (§2). */
int tgp_mr_uint(tgp_mr *r, uint64_t *v);
int tgp_mr_int(tgp_mr *r, int64_t *v);
/* tgp_mr_double accepts float 32/64 and any integer (§2). */
int tgp_mr_double(tgp_mr *r, double *v);
int tgp_mr_bool(tgp_mr *r, int *v);
/* tgp_mr_str reads a str of at most max bytes. */
int tgp_mr_str(tgp_mr *r, tgp_bytes *s, uint32_t max);
int tgp_mr_bin(tgp_mr *r, tgp_bytes *b, uint32_t max);
/* tgp_mr_nil consumes a nil and returns 1, or returns 0 and consumes
 * nothing. */
int tgp_mr_nil(tgp_mr *r);
/* tgp_mr_skip skips one value of any type; depth is the level the value
 * sits at (the body's elements are at level 2). */
int tgp_mr_skip(tgp_mr *r, int depth);
/* tgp_mr_skip_rest skips elements read..n-1 of the body array: the ones a
 * newer peer added (forward compatibility, §2). */
int tgp_mr_skip_rest(tgp_mr *r, uint32_t read, uint32_t n);
/* tgp_mr_peek returns the next byte without consuming it, -1 at the end. */
int tgp_mr_peek(const tgp_mr *r);

#ifdef __cplusplus
}
#endif
#endif /* TGP_MSGPACK_H */
