/*
 * tgp_sha256.c — SHA-256 (FIPS 180-4) and HMAC (RFC 2104), written for
 * small code size rather than speed: TGP hashes a few hundred bytes per
 * frame, far below what a Cortex-M needs to optimise for.
 */
#include "tgp_sha256.h"

#include <string.h>

/* HMAC pad bytes (RFC 2104). */
#define HMAC_IPAD 0x36u
#define HMAC_OPAD 0x5cu

/* Where the 64-bit message length goes in the last block. */
#define SHA256_LEN_OFFSET (TGP_SHA256_BLOCK - 8u)

static const uint32_t K[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

static uint32_t ror(uint32_t x, unsigned n) { return (x >> n) | (x << (32u - n)); }

static void compress(uint32_t st[8], const uint8_t blk[TGP_SHA256_BLOCK])
{
    uint32_t w[16], v[8];
    unsigned i;
    for (i = 0; i < 8; i++) v[i] = st[i];
    for (i = 0; i < 64; i++) {
        uint32_t t1, t2;
        if (i < 16) {
            w[i] = (uint32_t)blk[4 * i] << 24 | (uint32_t)blk[4 * i + 1] << 16 |
                   (uint32_t)blk[4 * i + 2] << 8 | (uint32_t)blk[4 * i + 3];
        } else {
            /* A 16-word ring instead of the 64-word schedule saves 192 B of stack. */
            uint32_t w15 = w[(i - 15) & 15], w2 = w[(i - 2) & 15];
            uint32_t s0 = ror(w15, 7) ^ ror(w15, 18) ^ (w15 >> 3);
            uint32_t s1 = ror(w2, 17) ^ ror(w2, 19) ^ (w2 >> 10);
            w[i & 15] += s0 + w[(i - 7) & 15] + s1;
        }
        t1 = v[7] + (ror(v[4], 6) ^ ror(v[4], 11) ^ ror(v[4], 25)) +
             ((v[4] & v[5]) ^ (~v[4] & v[6])) + K[i] + w[i & 15];
        t2 = (ror(v[0], 2) ^ ror(v[0], 13) ^ ror(v[0], 22)) +
             ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
        v[7] = v[6]; v[6] = v[5]; v[5] = v[4]; v[4] = v[3] + t1;
        v[3] = v[2]; v[2] = v[1]; v[1] = v[0]; v[0] = t1 + t2;
    }
    for (i = 0; i < 8; i++) st[i] += v[i];
}

void tgp_sha256_init(tgp_sha256 *s)
{
    static const uint32_t iv[8] = {
        0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
        0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
    };
    memcpy(s->state, iv, sizeof iv);
    s->total = 0;
}

void tgp_sha256_update(tgp_sha256 *s, const void *data, size_t len)
{
    const uint8_t *p = (const uint8_t *)data;
    while (len > 0) {
        size_t have = (size_t)(s->total % TGP_SHA256_BLOCK);
        size_t n = TGP_SHA256_BLOCK - have;
        if (n > len) n = len;
        memcpy(s->block + have, p, n);
        s->total += n;
        p += n;
        len -= n;
        if (have + n == TGP_SHA256_BLOCK) compress(s->state, s->block);
    }
}

void tgp_sha256_final(tgp_sha256 *s, uint8_t out[TGP_SHA256_SIZE])
{
    uint64_t bits = s->total * 8u;
    size_t have = (size_t)(s->total % TGP_SHA256_BLOCK);
    unsigned i;
    s->block[have++] = 0x80u;
    if (have > SHA256_LEN_OFFSET) {
        memset(s->block + have, 0, TGP_SHA256_BLOCK - have);
        compress(s->state, s->block);
        have = 0;
    }
    memset(s->block + have, 0, SHA256_LEN_OFFSET - have);
    for (i = 0; i < 8; i++) s->block[SHA256_LEN_OFFSET + i] = (uint8_t)(bits >> (56 - 8 * i));
    compress(s->state, s->block);
    for (i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->state[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->state[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->state[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->state[i];
    }
}

void tgp_hmac_init(tgp_hmac *h, const uint8_t *key, size_t key_len)
{
    uint8_t k[TGP_SHA256_BLOCK];
    unsigned i;
    memset(k, 0, sizeof k);
    if (key_len > TGP_SHA256_BLOCK) {
        /* HMAC hashes a key longer than the block first. */
        tgp_sha256_init(&h->inner);
        tgp_sha256_update(&h->inner, key, key_len);
        tgp_sha256_final(&h->inner, k);
    } else if (key_len > 0) {
        memcpy(k, key, key_len);
    }
    for (i = 0; i < TGP_SHA256_BLOCK; i++) {
        h->opad[i] = (uint8_t)(k[i] ^ HMAC_OPAD);
        k[i] ^= HMAC_IPAD;
    }
    tgp_sha256_init(&h->inner);
    tgp_sha256_update(&h->inner, k, sizeof k);
}

void tgp_hmac_update(tgp_hmac *h, const void *data, size_t len)
{
    tgp_sha256_update(&h->inner, data, len);
}

void tgp_hmac_final(tgp_hmac *h, uint8_t out[TGP_SHA256_SIZE])
{
    uint8_t inner[TGP_SHA256_SIZE];
    tgp_sha256_final(&h->inner, inner);
    tgp_sha256_init(&h->inner);
    tgp_sha256_update(&h->inner, h->opad, sizeof h->opad);
    tgp_sha256_update(&h->inner, inner, sizeof inner);
    tgp_sha256_final(&h->inner, out);
}

void tgp_hmac_sha256_iov(const uint8_t *key, size_t key_len,
                         const tgp_iov *parts, size_t nparts,
                         uint8_t out[TGP_SHA256_SIZE])
{
    tgp_hmac h;
    size_t i;
    tgp_hmac_init(&h, key, key_len);
    for (i = 0; i < nparts; i++) tgp_hmac_update(&h, parts[i].data, parts[i].len);
    tgp_hmac_final(&h, out);
}
