/*
 * tgp_frame.c — TGP/1 framing (docs/protocol.md §2) and the MACs of §6 and §8:
 * the incremental frame decoder, K_dev, the frame tag and a constant-time
 * compare. No knowledge of sessions; the session code builds on it.
 */
#include "tgp.h"
#include "tgp_internal.h"

#include <string.h>

/* ---- decoder ---- */

void tgp_decoder_init(tgp_decoder *d, uint8_t *buf, size_t cap)
{
    memset(d, 0, sizeof *d);
    d->buf = buf;
    d->cap = (uint16_t)(cap > TGP_MAX_FRAME ? TGP_MAX_FRAME : cap);
    d->min_len = 1;
}

void tgp_decoder_tagged(tgp_decoder *d) { d->min_len = TGP_TAG_SIZE + 1u; }

uint8_t *tgp_decoder_dst(tgp_decoder *d, size_t *room)
{
    if (d->hdr_have < TGP_HEADER_SIZE) {
        *room = TGP_HEADER_SIZE - d->hdr_have;
        return d->hdr + d->hdr_have;
    }
    *room = (size_t)d->body_len - d->body_have;
    return d->buf + d->body_have;
}

int tgp_decoder_commit(tgp_decoder *d, size_t n)
{
    if (d->hdr_have < TGP_HEADER_SIZE) {
        if (n > (size_t)(TGP_HEADER_SIZE - d->hdr_have)) return TGP_E_MALFORMED;
        d->hdr_have = (uint16_t)(d->hdr_have + n);
        if (d->hdr_have < TGP_HEADER_SIZE) return TGP_FRAME_PENDING;
        /* The header decides before any body byte is buffered (§2). */
        if (d->hdr[0] != TGP_MAGIC) return TGP_E_MALFORMED;
        d->body_len = tgp_get_be16(d->hdr + 4);
        if (d->body_len == 0 || d->body_len > d->cap) return TGP_E_MALFORMED;
        /* §8: len < 9 after HELLO_OK is treated as a bad tag (silent close). */
        if (d->body_len < d->min_len) return TGP_E_BAD_TAG;
        d->body_have = 0;
        return TGP_FRAME_PENDING;
    }
    if (n > (size_t)d->body_len - d->body_have) return TGP_E_MALFORMED;
    d->body_have = (uint16_t)(d->body_have + n);
    return d->body_have == d->body_len ? TGP_FRAME_READY : TGP_FRAME_PENDING;
}

int tgp_decoder_feed(tgp_decoder *d, const uint8_t *in, size_t len, size_t *used)
{
    int rc = TGP_FRAME_PENDING;
    *used = 0;
    while (*used < len) {
        size_t room;
        uint8_t *dst = tgp_decoder_dst(d, &room);
        size_t n = len - *used;
        if (room == 0) return TGP_FRAME_READY; /* a frame waits for tgp_decoder_next */
        if (n > room) n = room;
        memcpy(dst, in + *used, n);
        *used += n;
        rc = tgp_decoder_commit(d, n);
        if (rc != TGP_FRAME_PENDING) return rc;
    }
    return rc;
}

void tgp_decoder_frame(const tgp_decoder *d, tgp_frame *f)
{
    f->header = d->hdr;
    f->type = d->hdr[1];
    f->seq = tgp_get_be16(d->hdr + 2);
    f->len = d->body_len;
    f->body = d->buf;
}

void tgp_decoder_next(tgp_decoder *d)
{
    d->hdr_have = 0;
    d->body_len = 0;
    d->body_have = 0;
}

/* ---- byte order ---- */

uint16_t tgp_get_be16(const uint8_t *p) { return (uint16_t)((uint16_t)p[0] << 8 | p[1]); }

void tgp_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

void tgp_put_be64(uint8_t *p, uint64_t v)
{
    unsigned i;
    for (i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (56 - 8 * i));
}

size_t tgp_strlen(const char *s)
{
    /* Bounded: no TGP string comes near it, a missing terminator cannot
     * run away, and a bounded loop is not turned into a call to libc's
     * strlen by the compiler (the SDK links nothing beyond mem*). */
    size_t n = 0;
    if (s == NULL) return 0;
    while (n < TGP_STRLEN_MAX && s[n] != '\0') n++;
    return n;
}

void tgp_wipe(void *p, size_t n)
{
    /* Through a volatile pointer so the stores are not removed as dead. */
    volatile uint8_t *b = (volatile uint8_t *)p;
    while (n > 0) b[--n] = 0;
}

uint64_t tgp_ms_to_s(uint64_t ms)
{
    /* Long division in 16-bit digits: every step fits 32 bits, so no
     * 64-bit division helper (≈700 B of libgcc on a Cortex-M) is linked. */
    uint64_t q = 0;
    uint32_t r = 0;
    int shift;
    for (shift = 48; shift >= 0; shift -= 16) {
        uint32_t cur = r << 16 | ((uint32_t)(ms >> shift) & 0xffffu);
        q = q << 16 | cur / MS_PER_SECOND;
        r = cur % MS_PER_SECOND;
    }
    return q;
}

/* ---- MACs ---- */

int tgp_hmac_parts(const tgp_callbacks *cb, const uint8_t *key, size_t key_len,
                   const tgp_iov *parts, size_t nparts, uint8_t out[TGP_KEY_SIZE])
{
    if (cb != NULL && cb->hmac != NULL) {
        return cb->hmac(cb->user, key, key_len, parts, nparts, out) == 0 ? 0 : TGP_E_IO;
    }
    tgp_hmac_sha256_iov(key, key_len, parts, nparts, out);
    return 0;
}

/* Each label of a MAC input is followed by a 0x00 byte (§6); the
 * string literals' own terminators supply it, so the iov covers
 * sizeof(label), NUL included. */
static const char LABEL_DEVICE[] = "TGP1 device";
static const char LABEL_FRAME[] = "TGP1 frame";

int tgp_device_key(const tgp_callbacks *cb, const uint8_t *secret, size_t secret_len,
                   const char *device_id, uint8_t out[TGP_KEY_SIZE])
{
    tgp_iov parts[2];
    parts[0].data = LABEL_DEVICE;
    parts[0].len = sizeof LABEL_DEVICE;
    parts[1].data = device_id;
    parts[1].len = tgp_strlen(device_id);
    return tgp_hmac_parts(cb, secret, secret_len, parts, 2, out);
}

int tgp_frame_tag(const tgp_callbacks *cb, const uint8_t ks[TGP_KEY_SIZE], uint8_t dir,
                  uint64_t n, const uint8_t *frame, size_t len, uint8_t tag[TGP_TAG_SIZE])
{
    uint8_t dn[1 + 8], mac[TGP_KEY_SIZE];
    tgp_iov parts[3];
    int rc;
    dn[0] = dir;
    tgp_put_be64(dn + 1, n);
    parts[0].data = LABEL_FRAME;
    parts[0].len = sizeof LABEL_FRAME;
    parts[1].data = dn;
    parts[1].len = sizeof dn;
    parts[2].data = frame;
    parts[2].len = len;
    rc = tgp_hmac_parts(cb, ks, TGP_KEY_SIZE, parts, 3, mac);
    if (rc == 0) memcpy(tag, mac, TGP_TAG_SIZE);
    return rc;
}

/* tgp_frame_tag2 is tgp_frame_tag over a header and body kept apart (the
 * decoder keeps the header in the context). */
int tgp_frame_tag2(const tgp_callbacks *cb, const uint8_t ks[TGP_KEY_SIZE], uint8_t dir, uint64_t n,
                   const uint8_t *hdr, const uint8_t *body, size_t body_len, uint8_t tag[TGP_TAG_SIZE])
{
    uint8_t dn[1 + 8], mac[TGP_KEY_SIZE];
    tgp_iov parts[4];
    int rc;
    dn[0] = dir;
    tgp_put_be64(dn + 1, n);
    parts[0].data = LABEL_FRAME;
    parts[0].len = sizeof LABEL_FRAME;
    parts[1].data = dn;
    parts[1].len = sizeof dn;
    parts[2].data = hdr;
    parts[2].len = TGP_HEADER_SIZE;
    parts[3].data = body;
    parts[3].len = body_len;
    rc = tgp_hmac_parts(cb, ks, TGP_KEY_SIZE, parts, 4, mac);
    if (rc == 0) memcpy(tag, mac, TGP_TAG_SIZE);
    return rc;
}

int tgp_ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    /* volatile keeps the compiler from ending the loop at the first
     * difference, which would leak how many bytes of a forged MAC match. */
    volatile uint8_t diff = 0;
    size_t i;
    for (i = 0; i < n; i++) diff |= (uint8_t)(a[i] ^ b[i]);
    return diff == 0;
}
