/* testutil.c — see testutil.h. */
#include "testutil.h"

int tests_passed, tests_failed;

void mock_init(mock *m)
{
    memset(m, 0, sizeof *m);
    m->unix_ms = 1700000000000ull; /* the spec's vector time */
}

void mock_push(mock *m, const uint8_t *b, size_t n)
{
    if (m->in_off > 0) { /* compact */
        memmove(m->in, m->in + m->in_off, m->in_len - m->in_off);
        m->in_len -= m->in_off;
        m->in_off = 0;
    }
    if (n > sizeof m->in - m->in_len) {
        fprintf(stderr, "mock input overflow\n");
        return;
    }
    memcpy(m->in + m->in_len, b, n);
    m->in_len += n;
}

static int m_send(void *u, const uint8_t *b, size_t n)
{
    mock *m = (mock *)u;
    if (n > sizeof m->out - m->out_len) return -1;
    memcpy(m->out + m->out_len, b, n);
    m->out_len += n;
    return 0;
}

static long m_recv(void *u, uint8_t *b, size_t cap, uint32_t timeout_ms)
{
    mock *m = (mock *)u;
    size_t n = m->in_len - m->in_off;
    if (n == 0) {
        if (m->closed) return -1;
        m->now += timeout_ms ? timeout_ms : 1; /* waiting passes virtual time */
        return 0;
    }
    if (n > cap) n = cap;
    if (m->chunk && n > m->chunk) n = m->chunk;
    memcpy(b, m->in + m->in_off, n);
    m->in_off += n;
    return (long)n;
}

static uint64_t m_now(void *u) { return ((mock *)u)->now; }
static uint64_t m_unix(void *u) { return ((mock *)u)->unix_ms + ((mock *)u)->now; }

static int m_random(void *u, uint8_t *b, size_t n)
{
    mock *m = (mock *)u;
    size_t i;
    for (i = 0; i < n; i++) b[i] = m->rnd++; /* the spec's nonce 00 01 … 0f first */
    return 0;
}

void mock_callbacks(tgp_callbacks *cb, mock *m)
{
    memset(cb, 0, sizeof *cb);
    cb->user = m;
    cb->send = m_send;
    cb->recv = m_recv;
    cb->now_ms = m_now;
    cb->unix_ms = m_unix;
    cb->random = m_random;
}

static int nib(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (; *s; s++) {
        int v = nib(*s);
        if (v < 0) continue; /* whitespace */
        if (hi < 0) {
            hi = v;
        } else {
            if (n < cap) out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    return n;
}

int same_hex(const uint8_t *b, size_t n, const char *hex)
{
    uint8_t want[MOCK_BUF];
    size_t wn = unhex(hex, want, sizeof want);
    if (wn != n || memcmp(b, want, n) != 0) {
        size_t i;
        fprintf(stderr, "  got  ");
        for (i = 0; i < n; i++) fprintf(stderr, "%02x", b[i]);
        fprintf(stderr, "\n  want %s\n", hex);
        return 0;
    }
    return 1;
}
