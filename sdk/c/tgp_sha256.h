/*
 * tgp_sha256.h — a small SHA-256 and HMAC-SHA256 for the TGP/1 C SDK.
 *
 * Bundled so the SDK needs no crypto library; a platform with a hardware
 * hash engine routes HMAC through tgp_callbacks.hmac instead (tgp.h).
 * C99, no dynamic allocation, no global state: every call works on the
 * caller's context, so it is re-entrant.
 */
#ifndef TGP_SHA256_H
#define TGP_SHA256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Sizes of SHA-256, in bytes. */
#define TGP_SHA256_SIZE  32u /* digest */
#define TGP_SHA256_BLOCK 64u /* compression block; also the HMAC pad size */

/* One running SHA-256 computation (≈108 bytes). */
typedef struct {
    uint32_t state[8];
    uint64_t total;                    /* bytes hashed so far */
    uint8_t  block[TGP_SHA256_BLOCK];  /* partial block */
} tgp_sha256;

void tgp_sha256_init(tgp_sha256 *s);
void tgp_sha256_update(tgp_sha256 *s, const void *data, size_t len);
void tgp_sha256_final(tgp_sha256 *s, uint8_t out[TGP_SHA256_SIZE]);

/* One part of a message given to an HMAC as a list (scatter/gather), so
 * MAC inputs made of labels, ids and counters need no concatenation buffer. */
typedef struct {
    const void *data;
    size_t      len;
} tgp_iov;

/* One running HMAC-SHA256: the inner hash plus the outer pad. */
typedef struct {
    tgp_sha256 inner;
    uint8_t    opad[TGP_SHA256_BLOCK];
} tgp_hmac;

void tgp_hmac_init(tgp_hmac *h, const uint8_t *key, size_t key_len);
void tgp_hmac_update(tgp_hmac *h, const void *data, size_t len);
void tgp_hmac_final(tgp_hmac *h, uint8_t out[TGP_SHA256_SIZE]);

/* tgp_hmac_sha256_iov computes HMAC(key, parts[0] ‖ … ‖ parts[n-1]). */
void tgp_hmac_sha256_iov(const uint8_t *key, size_t key_len,
                         const tgp_iov *parts, size_t nparts,
                         uint8_t out[TGP_SHA256_SIZE]);

#ifdef __cplusplus
}
#endif
#endif /* TGP_SHA256_H */
