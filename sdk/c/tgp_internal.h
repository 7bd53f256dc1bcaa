/*
 * tgp_internal.h — helpers shared by the SDK's source files; not part of
 * the public API.
 */
#ifndef TGP_INTERNAL_H
#define TGP_INTERNAL_H

#include "tgp.h"

uint16_t tgp_get_be16(const uint8_t *p);
void tgp_put_be16(uint8_t *p, uint16_t v);
void tgp_put_be64(uint8_t *p, uint64_t v);
/* Longest C string the SDK measures; longer ones are clipped (and then
 * do not fit a frame anyway). */
#define TGP_STRLEN_MAX 4096u
size_t tgp_strlen(const char *s);
/* tgp_wipe zeroes key material in a way the compiler keeps. */
void tgp_wipe(void *p, size_t n);
#define MS_PER_SECOND 1000u
/* tgp_ms_to_s divides by 1000 without a 64-bit division helper. */
uint64_t tgp_ms_to_s(uint64_t ms);

int tgp_hmac_parts(const tgp_callbacks *cb, const uint8_t *key, size_t key_len,
                   const tgp_iov *parts, size_t nparts, uint8_t out[TGP_KEY_SIZE]);
int tgp_frame_tag2(const tgp_callbacks *cb, const uint8_t ks[TGP_KEY_SIZE], uint8_t dir, uint64_t n,
                   const uint8_t *hdr, const uint8_t *body, size_t body_len, uint8_t tag[TGP_TAG_SIZE]);

/* A request body encoder as the session's generic sender takes it. */
typedef int (*tgp_encode_fn)(tgp_mw *w, const void *msg);
/* tgp_send_request encodes msg with enc as a request of type, tags it and
 * sends it under a fresh seq that it reserves for the response. */
int tgp_send_request(tgp_ctx *ctx, uint8_t type, tgp_encode_fn enc, const void *msg, uint16_t *seq);

/* Reads [status, message, ...] and leaves r after the message (or after
 * the status when it is 0); *n gets the array's element count. */
int tgp_read_status(tgp_mr *r, uint32_t *n, tgp_status *st);

#endif /* TGP_INTERNAL_H */
