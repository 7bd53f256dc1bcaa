/*
 * tgp_msgpack.c — MessagePack writer and bounds-checked reader for TGP/1.
 * Format codes follow the MessagePack specification.
 */
#include "tgp_msgpack.h"

#include <string.h>

/* MessagePack format codes used here. */
enum {
    MP_POSFIXINT_MAX = 0x7f,
    MP_FIXMAP = 0x80,   /* 0x80–0x8f, count in the low nibble */
    MP_FIXARRAY = 0x90, /* 0x90–0x9f */
    MP_FIXSTR = 0xa0,   /* 0xa0–0xbf, length in the low 5 bits */
    MP_NIL = 0xc0,
    MP_FALSE = 0xc2,
    MP_TRUE = 0xc3,
    MP_BIN8 = 0xc4, MP_BIN16 = 0xc5, MP_BIN32 = 0xc6,
    MP_EXT8 = 0xc7, MP_EXT16 = 0xc8, MP_EXT32 = 0xc9,
    MP_FLOAT32 = 0xca, MP_FLOAT64 = 0xcb,
    MP_UINT8 = 0xcc, MP_UINT16 = 0xcd, MP_UINT32 = 0xce, MP_UINT64 = 0xcf,
    MP_INT8 = 0xd0, MP_INT16 = 0xd1, MP_INT32 = 0xd2, MP_INT64 = 0xd3,
    MP_FIXEXT1 = 0xd4, MP_FIXEXT16 = 0xd8,
    MP_STR8 = 0xd9, MP_STR16 = 0xda, MP_STR32 = 0xdb,
    MP_ARRAY16 = 0xdc, MP_ARRAY32 = 0xdd,
    MP_MAP16 = 0xde, MP_MAP32 = 0xdf,
    MP_NEGFIXINT = 0xe0 /* 0xe0–0xff */
};

#define FIX_COUNT_MAX 15u /* fixarray / fixmap */
#define FIXSTR_MAX    31u
#define U8_MAX        0xffu
#define U16_MAX       0xffffu
#define U32_MAX       0xffffffffu

/* ---- writer ---- */

void tgp_mw_init(tgp_mw *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->err = 0;
}

static void put(tgp_mw *w, const void *b, size_t n)
{
    if (w->err || n > w->cap - w->len) {
        w->err = 1;
        return;
    }
    if (n > 0) memcpy(w->buf + w->len, b, n);
    w->len += n;
}

/* put_be writes code followed by v as n big-endian bytes (n ≤ 8). */
static void put_be(tgp_mw *w, uint8_t code, uint64_t v, unsigned n)
{
    uint8_t b[9];
    unsigned i;
    b[0] = code;
    for (i = 0; i < n; i++) b[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    put(w, b, 1 + n);
}

/* put_len writes the shortest header for a counted type. */
static void put_len(tgp_mw *w, uint32_t n, uint8_t fix, uint32_t fix_max,
                    uint8_t c8, uint8_t c16, uint8_t c32)
{
    if (n <= fix_max && fix != 0) put_be(w, (uint8_t)(fix | n), 0, 0);
    else if (n <= U8_MAX && c8 != 0) put_be(w, c8, n, 1);
    else if (n <= U16_MAX) put_be(w, c16, n, 2);
    else put_be(w, c32, n, 4);
}

void tgp_mw_array(tgp_mw *w, uint32_t n) { put_len(w, n, MP_FIXARRAY, FIX_COUNT_MAX, 0, MP_ARRAY16, MP_ARRAY32); }
void tgp_mw_map(tgp_mw *w, uint32_t n) { put_len(w, n, MP_FIXMAP, FIX_COUNT_MAX, 0, MP_MAP16, MP_MAP32); }

void tgp_mw_uint(tgp_mw *w, uint64_t v)
{
    if (v <= MP_POSFIXINT_MAX) put_be(w, (uint8_t)v, 0, 0);
    else if (v <= U8_MAX) put_be(w, MP_UINT8, v, 1);
    else if (v <= U16_MAX) put_be(w, MP_UINT16, v, 2);
    else if (v <= U32_MAX) put_be(w, MP_UINT32, v, 4);
    else put_be(w, MP_UINT64, v, 8);
}

void tgp_mw_int(tgp_mw *w, int64_t v)
{
    /* Negative fixint covers -32..-1. */
    const int64_t negfix_min = -32;
    if (v >= 0) tgp_mw_uint(w, (uint64_t)v);
    else if (v >= negfix_min) put_be(w, (uint8_t)v, 0, 0);
    else if (v >= INT8_MIN) put_be(w, MP_INT8, (uint64_t)v, 1);
    else if (v >= INT16_MIN) put_be(w, MP_INT16, (uint64_t)v, 2);
    else if (v >= INT32_MIN) put_be(w, MP_INT32, (uint64_t)v, 4);
    else put_be(w, MP_INT64, (uint64_t)v, 8);
}

void tgp_mw_double(tgp_mw *w, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits); /* IEEE 754 binary64 on every target we support */
    put_be(w, MP_FLOAT64, bits, 8);
}

void tgp_mw_bool(tgp_mw *w, int v) { put_be(w, v ? MP_TRUE : MP_FALSE, 0, 0); }
void tgp_mw_nil(tgp_mw *w) { put_be(w, MP_NIL, 0, 0); }

void tgp_mw_str(tgp_mw *w, const char *s, size_t len)
{
    if (len > U32_MAX) {
        w->err = 1;
        return;
    }
    put_len(w, (uint32_t)len, MP_FIXSTR, FIXSTR_MAX, MP_STR8, MP_STR16, MP_STR32);
    put(w, s, len);
}

void tgp_mw_cstr(tgp_mw *w, const char *s)
{
    /* Bounded, so the compiler does not turn it into a libc strlen call
     * (the SDK uses no libc beyond mem*). */
    const size_t max = 0xffffu; /* no TGP frame holds a longer string */
    size_t n = 0;
    if (s != NULL) {
        while (n < max && s[n] != '\0') n++;
    }
    tgp_mw_str(w, s, n);
}

void tgp_mw_bin(tgp_mw *w, const void *b, size_t len)
{
    if (len > U32_MAX) {
        w->err = 1;
        return;
    }
    put_len(w, (uint32_t)len, 0, 0, MP_BIN8, MP_BIN16, MP_BIN32);
    put(w, b, len);
}

void tgp_mw_raw(tgp_mw *w, const void *b, size_t len) { put(w, b, len); }

/* ---- reader ---- */

void tgp_mr_init(tgp_mr *r, const uint8_t *buf, size_t len)
{
    r->p = buf;
    r->end = buf + len;
    r->err = TGP_MP_OK;
}

static int fail(tgp_mr *r, int err)
{
    if (r->err == TGP_MP_OK) r->err = err;
    return -1;
}

int tgp_mr_peek(const tgp_mr *r)
{
    if (r->err || r->p >= r->end) return -1;
    return *r->p;
}

/* take reads n big-endian bytes (n ≤ 8) after checking they exist. */
static int take(tgp_mr *r, unsigned n, uint64_t *v)
{
    unsigned i;
    if (r->err) return -1;
    if ((size_t)(r->end - r->p) < n) return fail(r, TGP_MP_TRUNCATED);
    *v = 0;
    for (i = 0; i < n; i++) *v = (*v << 8) | *r->p++;
    return 0;
}

static int code(tgp_mr *r, uint8_t *c)
{
    uint64_t v;
    if (take(r, 1, &v) != 0) return -1;
    *c = (uint8_t)v;
    return 0;
}

/* count reads the header of an array (is_map 0) or map (1). */
static int count(tgp_mr *r, uint32_t *n, int is_map)
{
    uint8_t c;
    uint64_t v;
    const uint8_t fix = is_map ? MP_FIXMAP : MP_FIXARRAY;
    const uint8_t c16 = is_map ? MP_MAP16 : MP_ARRAY16;
    if (code(r, &c) != 0) return -1;
    if ((c & 0xf0u) == fix) {
        *n = c & 0x0fu;
        return 0;
    }
    if (c == c16 || c == c16 + 1) {
        if (take(r, c == c16 ? 2u : 4u, &v) != 0) return -1;
        /* Every element needs at least one byte: a count above the bytes
         * left is a lie, caught here before anyone loops over it. */
        if (v > (uint64_t)(r->end - r->p)) return fail(r, TGP_MP_TRUNCATED);
        *n = (uint32_t)v;
        return 0;
    }
    r->p--; /* leave the byte for the caller's error report */
    return fail(r, TGP_MP_TYPE);
}

int tgp_mr_array(tgp_mr *r, uint32_t *n) { return count(r, n, 0); }
int tgp_mr_map(tgp_mr *r, uint32_t *n) { return count(r, n, 1); }

/* integer reads any integer encoding as a sign and magnitude. */
static int integer(tgp_mr *r, uint64_t *mag, int *neg)
{
    uint8_t c;
    uint64_t v;
    *neg = 0;
    if (code(r, &c) != 0) return -1;
    if (c <= MP_POSFIXINT_MAX) {
        *mag = c;
        return 0;
    }
    if (c >= MP_NEGFIXINT) {
        *neg = 1;
        *mag = (uint64_t)(256u - c);
        return 0;
    }
    if (c >= MP_UINT8 && c <= MP_UINT64) {
        return take(r, 1u << (c - MP_UINT8), mag);
    }
    if (c >= MP_INT8 && c <= MP_INT64) {
        unsigned n = 1u << (c - MP_INT8);
        if (take(r, n, &v) != 0) return -1;
        if (n < 8 && (v >> (8 * n - 1)) != 0) v |= ~(uint64_t)0 << (8 * n); /* sign-extend */
        if ((int64_t)v < 0) {
            *neg = 1;
            *mag = ~v + 1u; /* two's complement magnitude, also right for INT64_MIN */
        } else {
            *mag = v;
        }
        return 0;
    }
    r->p--;
    return fail(r, TGP_MP_TYPE);
}

int tgp_mr_uint(tgp_mr *r, uint64_t *v)
{
    int neg;
    if (integer(r, v, &neg) != 0) return -1;
    if (neg) return fail(r, TGP_MP_RANGE);
    return 0;
}

int tgp_mr_int(tgp_mr *r, int64_t *v)
{
    int neg;
    uint64_t mag;
    const uint64_t int64_max = (uint64_t)INT64_MAX;
    if (integer(r, &mag, &neg) != 0) return -1;
    if (!neg) {
        if (mag > int64_max) return fail(r, TGP_MP_RANGE);
        *v = (int64_t)mag;
    } else if (mag > int64_max) {
        *v = INT64_MIN; /* only INT64_MIN itself has a magnitude past INT64_MAX */
    } else {
        *v = -(int64_t)mag;
    }
    return 0;
}

int tgp_mr_double(tgp_mr *r, double *v)
{
    int c = tgp_mr_peek(r);
    uint64_t bits;
    if (c == MP_FLOAT32 || c == MP_FLOAT64) {
        r->p++;
        if (c == MP_FLOAT32) {
            float f;
            uint32_t b32;
            if (take(r, 4, &bits) != 0) return -1;
            b32 = (uint32_t)bits;
            memcpy(&f, &b32, sizeof f);
            *v = f;
        } else {
            if (take(r, 8, &bits) != 0) return -1;
            memcpy(v, &bits, sizeof *v);
        }
        return 0;
    } else {
        int neg;
        uint64_t mag;
        if (integer(r, &mag, &neg) != 0) return -1;
        *v = neg ? -(double)mag : (double)mag;
        return 0;
    }
}

int tgp_mr_bool(tgp_mr *r, int *v)
{
    uint8_t c;
    if (code(r, &c) != 0) return -1;
    if (c != MP_TRUE && c != MP_FALSE) {
        r->p--;
        return fail(r, TGP_MP_TYPE);
    }
    *v = c == MP_TRUE;
    return 0;
}

int tgp_mr_nil(tgp_mr *r)
{
    if (tgp_mr_peek(r) != MP_NIL) return 0;
    r->p++;
    return 1;
}

/* blob reads a str (is_bin 0) or bin (1) of at most max bytes. */
static int blob(tgp_mr *r, tgp_bytes *out, uint32_t max, int is_bin)
{
    uint8_t c;
    uint64_t n;
    if (code(r, &c) != 0) return -1;
    if (!is_bin && (c & 0xe0u) == MP_FIXSTR) {
        n = c & FIXSTR_MAX;
    } else if (!is_bin && c >= MP_STR8 && c <= MP_STR32) {
        if (take(r, 1u << (c - MP_STR8), &n) != 0) return -1;
    } else if (is_bin && c >= MP_BIN8 && c <= MP_BIN32) {
        if (take(r, 1u << (c - MP_BIN8), &n) != 0) return -1;
    } else {
        r->p--;
        return fail(r, TGP_MP_TYPE);
    }
    if (n > (uint64_t)(r->end - r->p)) return fail(r, TGP_MP_TRUNCATED);
    if (n > max) return fail(r, TGP_MP_RANGE);
    out->p = r->p;
    out->len = (uint32_t)n;
    r->p += n;
    return 0;
}

int tgp_mr_str(tgp_mr *r, tgp_bytes *s, uint32_t max) { return blob(r, s, max, 0); }
int tgp_mr_bin(tgp_mr *r, tgp_bytes *b, uint32_t max) { return blob(r, b, max, 1); }

/* skip_bytes advances over n payload bytes after checking they exist. */
static int skip_bytes(tgp_mr *r, uint64_t n)
{
    if (r->err) return -1;
    if (n > (uint64_t)(r->end - r->p)) return fail(r, TGP_MP_TRUNCATED);
    r->p += n;
    return 0;
}

int tgp_mr_skip(tgp_mr *r, int depth)
{
    uint8_t c;
    uint64_t n = 0;
    uint32_t items, i;
    if (code(r, &c) != 0) return -1;
    if (c <= MP_POSFIXINT_MAX || c >= MP_NEGFIXINT || c == MP_NIL || c == MP_TRUE || c == MP_FALSE) return 0;
    if ((c & 0xe0u) == MP_FIXSTR) return skip_bytes(r, c & FIXSTR_MAX);
    if ((c & 0xf0u) == MP_FIXARRAY || (c & 0xf0u) == MP_FIXMAP ||
        c == MP_ARRAY16 || c == MP_ARRAY32 || c == MP_MAP16 || c == MP_MAP32) {
        int is_map = (c & 0xf0u) == MP_FIXMAP || c == MP_MAP16 || c == MP_MAP32;
        if (depth > TGP_MP_MAX_DEPTH) return fail(r, TGP_MP_DEPTH);
        r->p--;
        if (count(r, &items, is_map) != 0) return -1;
        for (i = 0; i < items; i++) {
            if (tgp_mr_skip(r, depth + 1) != 0) return -1;
            if (is_map && tgp_mr_skip(r, depth + 1) != 0) return -1;
        }
        return 0;
    }
    switch (c) {
    case MP_UINT8: case MP_INT8: return skip_bytes(r, 1);
    case MP_UINT16: case MP_INT16: return skip_bytes(r, 2);
    case MP_UINT32: case MP_INT32: case MP_FLOAT32: return skip_bytes(r, 4);
    case MP_UINT64: case MP_INT64: case MP_FLOAT64: return skip_bytes(r, 8);
    case MP_STR8: case MP_BIN8: case MP_EXT8:
    case MP_STR16: case MP_BIN16: case MP_EXT16:
    case MP_STR32: case MP_BIN32: case MP_EXT32: {
        /* The length field is 1, 2 or 4 bytes by the code's position in
         * its family of three; ext adds one type byte. */
        unsigned width = c >= MP_STR8 ? 1u << (c - MP_STR8)
                       : c >= MP_EXT8 ? 1u << (c - MP_EXT8)
                                      : 1u << (c - MP_BIN8);
        if (take(r, width, &n) != 0) return -1;
        return skip_bytes(r, n + (c >= MP_EXT8 && c <= MP_EXT32 ? 1u : 0u));
    }
    default:
        break;
    }
    if (c >= MP_FIXEXT1 && c <= MP_FIXEXT16) return skip_bytes(r, 1u + (1u << (c - MP_FIXEXT1)));
    r->p--;
    return fail(r, TGP_MP_TYPE); /* 0xc1, never used */
}

int tgp_mr_skip_rest(tgp_mr *r, uint32_t read, uint32_t n)
{
    /* The body's elements sit at level 2. */
    const int element_depth = 2;
    for (; read < n; read++) {
        if (tgp_mr_skip(r, element_depth) != 0) return -1;
    }
    return r->err ? -1 : 0;
}
