/*
 * test_session.c — docs/protocol.md §9 vectors reproduced byte for byte
 * by a scripted session, and the session's behaviour on pushes, GOAWAY,
 * bad tags, pipelining, the ack deadline and the clock challenge.
 */
#include "testutil.h"

#define VEC_HELLO "a1010000004c96a6542d30303031ce6553f100c410000102030405060708090a0b0c0d0e0f" \
                  "c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6ea5312e" \
                  "302e30a450343030"
#define VEC_HELLO_OK "a1810000003296002acf0000018bcfe5687b1ecd1000c4201b04acbb8d151699f13e597ee8" \
                     "9b973c9ef642239b991dda3d17df243a3451ad"
#define VEC_KDEV "4c217cf407de4cacbec705ef29fa30540a3ee23fd063a1757ee8be1b7befc2cd"
#define VEC_MAC  "d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e"
#define VEC_KS   "972e46541057115aa5356c94f5e8746fd790843c7d59fbc1d178a79824b9828f"
#define VEC_HB0  "a1020001000a9100de040dabe247bf76"
#define VEC_HBACK "a182000100159400cf0000018bcfe56be8001e0ac7a4f74038089b"
#define VEC_HB1  "a1020002000a91004c9fb97566447a7c"

static const char SECRET[] = "dev-fleet-secret";

typedef struct {
    tgp_config    cfg;
    tgp_callbacks cb;
    mock          m;
    tgp_ctx       ctx;
    uint8_t       rx[TGP_RX_BUF_SIZE];
    uint64_t      server_n; /* tagged frames the fake server sent */
    int           responses, pushes;
    uint8_t       last_type;
    uint16_t      last_seq;
} fixture;

static void on_response(void *u, const tgp_msg *m);
static void on_push(void *u, const tgp_msg *m);

static void setup(fixture *f)
{
    memset(f, 0, sizeof *f);
    mock_init(&f->m);
    mock_callbacks(&f->cb, &f->m);
    f->cfg.device_id = "T-0001";
    f->cfg.fw = "1.0.0";
    f->cfg.model = "P400";
    f->cfg.fleet_secret = (const uint8_t *)SECRET;
    f->cfg.fleet_secret_len = sizeof SECRET - 1;
    /* The callbacks get the mock as user data; the fixture's counters are
     * reached through it (mock is the fixture's third member). */
    f->cb.on_response = on_response;
    f->cb.on_push = on_push;
}

static fixture *of(void *mock_ptr)
{
    return (fixture *)((char *)mock_ptr - offsetof(fixture, m));
}

static void on_response(void *u, const tgp_msg *m)
{
    fixture *f = of(u);
    f->responses++;
    f->last_type = m->type;
    f->last_seq = m->seq;
}

static void on_push(void *u, const tgp_msg *m)
{
    fixture *f = of(u);
    f->pushes++;
    f->last_type = m->type;
    f->last_seq = m->seq;
}

/* login_vectors runs the §9 HELLO exchange. */
static int login_vectors(fixture *f)
{
    uint8_t b[256];
    size_t n = unhex(VEC_HELLO_OK, b, sizeof b);
    CHECK_EQ_INT(tgp_init(&f->ctx, &f->cfg, &f->cb, f->rx, sizeof f->rx), 0);
    mock_push(&f->m, b, n);
    return tgp_login(&f->ctx);
}

/* server_frame queues a tagged server frame with body (hex). */
static void server_frame(fixture *f, uint8_t type, uint16_t seq, const uint8_t *body, size_t len)
{
    uint8_t fr[TGP_HEADER_SIZE + 1024 + TGP_TAG_SIZE];
    size_t flen = TGP_HEADER_SIZE + len + TGP_TAG_SIZE;
    fr[0] = TGP_MAGIC;
    fr[1] = type;
    fr[2] = (uint8_t)(seq >> 8);
    fr[3] = (uint8_t)seq;
    fr[4] = (uint8_t)((len + TGP_TAG_SIZE) >> 8);
    fr[5] = (uint8_t)(len + TGP_TAG_SIZE);
    memcpy(fr + TGP_HEADER_SIZE, body, len);
    tgp_frame_tag(NULL, f->ctx.ks, TGP_DIR_SERVER, f->server_n++, fr, TGP_HEADER_SIZE + len,
                  fr + TGP_HEADER_SIZE + len);
    mock_push(&f->m, fr, flen);
}

static void server_hex(fixture *f, uint8_t type, uint16_t seq, const char *hex)
{
    uint8_t b[1024];
    size_t n = unhex(hex, b, sizeof b);
    server_frame(f, type, seq, b, n);
}

static void test_crypto(void)
{
    uint8_t out[32], key[32];
    tgp_sha256 s;
    tgp_iov part;
    /* FIPS 180-2 "abc" */
    tgp_sha256_init(&s);
    tgp_sha256_update(&s, "abc", 3);
    tgp_sha256_final(&s, out);
    CHECK(same_hex(out, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    /* RFC 4231 test case 2 */
    part.data = "what do ya want for nothing?";
    part.len = 28;
    tgp_hmac_sha256_iov((const uint8_t *)"Jefe", 4, &part, 1, out);
    CHECK(same_hex(out, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
    /* RFC 4231 test case 6: a key longer than the block is hashed first. */
    {
        uint8_t longkey[131];
        memset(longkey, 0xaa, sizeof longkey);
        part.data = "Test Using Larger Than Block-Size Key - Hash Key First";
        part.len = 54;
        tgp_hmac_sha256_iov(longkey, sizeof longkey, &part, 1, out);
        CHECK(same_hex(out, 32, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"));
    }
    CHECK_EQ_INT(tgp_device_key(NULL, (const uint8_t *)SECRET, sizeof SECRET - 1, "T-0001", key), 0);
    CHECK(same_hex(key, 32, VEC_KDEV));
}

static void test_vectors_session(void)
{
    static fixture f;
    setup(&f);
    CHECK_EQ_INT(login_vectors(&f), 0);
    CHECK(same_hex(f.m.out, f.m.out_len, VEC_HELLO));
    CHECK(same_hex(f.ctx.hello_mac, 32, VEC_MAC));
    CHECK(same_hex(f.ctx.kdev, 32, VEC_KDEV));
    CHECK(same_hex(f.ctx.ks, 32, VEC_KS));
    CHECK_EQ_INT(tgp_session_id(&f.ctx), 42);
    CHECK_EQ_INT(tgp_hb_interval_ms(&f.ctx), 30000);
    /* server_time_ms 1700000000123 against the terminal's 1700000000000 */
    CHECK_EQ_INT(tgp_clock_offset_ms(&f.ctx), 123);

    f.m.out_len = 0;
    CHECK_EQ_INT(tgp_heartbeat(&f.ctx), 0);
    CHECK(same_hex(f.m.out, f.m.out_len, VEC_HB0));
    CHECK_EQ_INT(tgp_heartbeat(&f.ctx), TGP_E_BUSY); /* one beat at a time */
    {
        uint8_t b[64];
        size_t n = unhex(VEC_HBACK, b, sizeof b);
        mock_push(&f.m, b, n);
    }
    f.server_n = 1;
    CHECK_EQ_INT(tgp_poll(&f.ctx, 0), 0);
    CHECK_EQ_INT(f.ctx.heartbeats, 1);
    CHECK_EQ_INT(f.responses, 1);
    CHECK_EQ_INT(f.last_type, 0x82);
    f.m.out_len = 0;
    CHECK_EQ_INT(tgp_heartbeat(&f.ctx), 0);
    CHECK(same_hex(f.m.out, f.m.out_len, VEC_HB1));
}

/* The SDK schedules heartbeats itself: the first in [0.5, 1.0] × interval,
 * and closes when the ack misses min(interval, 30 s). */
static void test_heartbeat_schedule(void)
{
    static fixture f;
    setup(&f);
    CHECK_EQ_INT(login_vectors(&f), 0);
    f.m.out_len = 0;
    CHECK_EQ_INT(tgp_poll(&f.ctx, 14999), 0); /* before 0.5 × 30 s nothing is sent */
    CHECK_EQ_INT(f.m.out_len, 0);
    CHECK_EQ_INT(tgp_poll(&f.ctx, 15001), 0); /* by 30 s a beat went out */
    CHECK_EQ_INT(f.m.out_len, 16);
    CHECK(f.ctx.hb_outstanding);
    CHECK(f.ctx.hb_sent_ms >= 15000 && f.ctx.hb_sent_ms <= 30000);
    /* No ack: the session ends 30 s (min(30 s, 30 s)) after the beat. */
    CHECK_EQ_INT(tgp_poll(&f.ctx, (uint32_t)(f.ctx.hb_sent_ms + 30000 - f.m.now - 1)), 0);
    CHECK_EQ_INT(tgp_poll(&f.ctx, 2000), TGP_E_ACK_TIMEOUT);
    CHECK_EQ_INT(tgp_end_reason(&f.ctx)->result, TGP_E_ACK_TIMEOUT);
}

static void test_pushes_and_goaway(void)
{
    static fixture f;
    size_t before;
    setup(&f);
    CHECK_EQ_INT(login_vectors(&f), 0);
    f.m.out_len = 0;
    /* UPGRADE_NOTICE ["r1","pos","2.0.0",1] seq 7: delivered, then acked [0]. */
    server_hex(&f, TGP_T_UPGRADE_NOTICE, 7, "94a27231a3706f73a5322e302e3001");
    CHECK_EQ_INT(tgp_poll(&f.ctx, 0), 0);
    CHECK_EQ_INT(f.pushes, 1);
    CHECK_EQ_INT(f.m.out_len, TGP_HEADER_SIZE + 2 + TGP_TAG_SIZE);
    CHECK(f.m.out[1] == 0xC1 && f.m.out[2] == 0 && f.m.out[3] == 7 && f.m.out[6] == 0x91 && f.m.out[7] == 0);
    {
        uint8_t tag[TGP_TAG_SIZE];
        tgp_frame_tag(NULL, f.ctx.ks, TGP_DIR_TERMINAL, 0, f.m.out, TGP_HEADER_SIZE + 2, tag);
        CHECK(memcmp(tag, f.m.out + TGP_HEADER_SIZE + 2, TGP_TAG_SIZE) == 0);
    }
    /* An unknown push (0x5E) is ignored and not acked. */
    before = f.m.out_len;
    server_hex(&f, 0x5E, 8, "9100");
    CHECK_EQ_INT(tgp_poll(&f.ctx, 0), 0);
    CHECK_EQ_INT(f.pushes, 1);
    CHECK_EQ_INT(f.m.out_len, before);
    /* GROUP_SYNC [5, [["g1","member"]]] updates the heartbeat's group_version. */
    server_hex(&f, TGP_T_GROUP_SYNC, 9, "92059192a26731a66d656d626572");
    CHECK_EQ_INT(tgp_poll(&f.ctx, 0), 0);
    CHECK_EQ_INT(f.ctx.group_version, 5);
    CHECK_EQ_INT(f.pushes, 2);
    /* GOAWAY [5, "replaced"] ends the session with its code. */
    server_hex(&f, TGP_T_GOAWAY, 10, "9205a87265706c61636564");
    CHECK_EQ_INT(tgp_poll(&f.ctx, 0), TGP_E_GOAWAY);
    CHECK_EQ_INT(tgp_end_reason(&f.ctx)->code, 5);
    CHECK(strcmp(tgp_end_reason(&f.ctx)->message, "replaced") == 0);
    CHECK_EQ_INT(tgp_poll(&f.ctx, 0), TGP_E_GOAWAY); /* stays ended */
}

static void test_bad_tag(void)
{
    static fixture f;
    setup(&f);
    CHECK_EQ_INT(login_vectors(&f), 0);
    server_hex(&f, TGP_T_GROUP_MESSAGE, 1, "94a26731a001c40101");
    f.m.in[f.m.in_len - 1] ^= 1; /* flip a tag bit */
    CHECK_EQ_INT(tgp_poll(&f.ctx, 0), TGP_E_BAD_TAG);
    CHECK_EQ_INT(f.pushes, 0);
    /* A frame too short for a tag is a bad tag as well (§8). */
    setup(&f);
    CHECK_EQ_INT(login_vectors(&f), 0);
    {
        const uint8_t short_frame[] = {TGP_MAGIC, 0x43, 0, 1, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};
        mock_push(&f.m, short_frame, sizeof short_frame);
    }
    CHECK_EQ_INT(tgp_poll(&f.ctx, 0), TGP_E_BAD_TAG);
}

/* Pipelined requests: responses in any order reach the right seq, and at
 * most 15 application requests are outstanding. */
static void test_pipelining(void)
{
    static fixture f;
    uint16_t seqs[TGP_MAX_INFLIGHT];
    unsigned i;
    int rc = 0;
    tgp_upgrade_query q;
    setup(&f);
    CHECK_EQ_INT(login_vectors(&f), 0);
    memset(&q, 0, sizeof q);
    q.app_id = "pos";
    q.version = "1.0.0";
    for (i = 0; i < TGP_MAX_INFLIGHT - 1; i++) {
        rc |= tgp_send_upgrade_query(&f.ctx, &q, &seqs[i]);
    }
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(seqs[0], 1);
    CHECK_EQ_INT(seqs[14], 15);
    CHECK_EQ_INT(tgp_send_upgrade_query(&f.ctx, &q, &seqs[15]), TGP_E_BUSY);
    /* Answer seq 9 first: [0, nil, nil, nil] */
    server_hex(&f, TGP_T_UPGRADE_QUERY | 0x80, 9, "9400c0c0c0");
    CHECK_EQ_INT(tgp_wait(&f.ctx, 9, 0), 0);
    CHECK_EQ_INT(f.last_seq, 9);
    CHECK_EQ_INT(f.responses, 1);
    /* The freed slot is reused with a seq nobody holds. */
    CHECK_EQ_INT(tgp_send_upgrade_query(&f.ctx, &q, &seqs[15]), 0);
    CHECK_EQ_INT(seqs[15], 16);
    /* More than 8 CONTROL args is refused before anything is sent. */
    {
        static const char *const nine[9] = {"1", "2", "3", "4", "5", "6", "7", "8", "9"};
        tgp_control c;
        uint16_t s;
        memset(&c, 0, sizeof c);
        c.service_id = "svc";
        c.op = TGP_OP_START;
        c.args = nine;
        c.nargs = 9;
        CHECK_EQ_INT(tgp_send_control(&f.ctx, &c, &s), TGP_E_ARG);
    }
    /* A response with the wrong type for its seq is a protocol fault. */
    server_hex(&f, TGP_T_CONTROL | 0x80, 3, "9201a0");
    CHECK_EQ_INT(tgp_poll(&f.ctx, 0), TGP_E_MALFORMED);
}

/* §7: an EXPIRED refusal with a challenge is answered by exactly one
 * retry whose nonce is the challenge and whose ts is the server's time. */
static void test_clock_challenge(void)
{
    static fixture f;
    uint8_t expect_prefix[64];
    setup(&f);
    f.m.unix_ms = 1000; /* a terminal that thinks it is 1970 */
    CHECK_EQ_INT(tgp_init(&f.ctx, &f.cfg, &f.cb, f.rx, sizeof f.rx), 0);
    /* [12, "clock", 1700000000123, challenge ff×16] */
    {
        uint8_t b[64];
        size_t n = unhex("940ca5636c6f636bcf0000018bcfe5687bc410ffffffffffffffffffffffffffffffff", b + 6, sizeof b - 6);
        b[0] = TGP_MAGIC;
        b[1] = 0x81;
        b[2] = b[3] = b[4] = 0;
        b[5] = (uint8_t)n;
        mock_push(&f.m, b, 6 + n);
        /* Then refuse the retry [2, "no"]; the session must end REFUSED. */
        mock_push(&f.m, (const uint8_t *)"\xa1\x81\x00\x01\x00\x05\x92\x02\xa2no", 11);
    }
    CHECK_EQ_INT(tgp_login(&f.ctx), TGP_E_REFUSED);
    CHECK_EQ_INT(tgp_end_reason(&f.ctx)->code, 2);
    /* Two HELLOs went out; the second is seq 1 with ts 1700000000 and the
     * challenge as nonce. */
    {
        size_t first = TGP_HEADER_SIZE + ((size_t)f.m.out[4] << 8 | f.m.out[5]);
        const uint8_t *h2 = f.m.out + first;
        size_t n = unhex("a1010001004c96a6542d30303031ce6553f100c410ffffffffffffffffffffffffffffffff", expect_prefix, sizeof expect_prefix);
        CHECK(f.m.out_len == first + TGP_HEADER_SIZE + 0x4c);
        CHECK(memcmp(h2, expect_prefix, n) == 0);
        /* the first HELLO carried the terminal's own (wrong) ts = 1 */
        CHECK(f.m.out[6 + 8] == 0x01);
    }
}

/* A HELLO_OK whose server_mac does not verify ends the login. */
static void test_bad_server_mac(void)
{
    static fixture f;
    uint8_t b[256];
    size_t n;
    setup(&f);
    n = unhex(VEC_HELLO_OK, b, sizeof b);
    b[n - 1] ^= 0x80;
    CHECK_EQ_INT(tgp_init(&f.ctx, &f.cfg, &f.cb, f.rx, sizeof f.rx), 0);
    mock_push(&f.m, b, n);
    CHECK_EQ_INT(tgp_login(&f.ctx), TGP_E_SERVER_MAC);
    CHECK(f.ctx.state == TGP_ST_CLOSED);
}

static void test_backoff(void)
{
    tgp_backoff b;
    tgp_end e;
    uint32_t w;
    memset(&b, 0, sizeof b);
    memset(&e, 0, sizeof e);
    e.result = TGP_E_IO;
    /* k = 1: random(0, 2 s) */
    w = tgp_backoff_next(&b, &e, 0, 0xffffffffu);
    CHECK(w <= 2000);
    /* k grows to the 300 s cap */
    {
        int i;
        for (i = 0; i < 20; i++) w = tgp_backoff_next(&b, &e, 0, 299999u + 1u);
        CHECK(w <= 300000);
        CHECK_EQ_INT(tgp_backoff_next(&b, &e, 0, 300000u), 300000);
    }
    /* retry_after wins when larger */
    e.retry_after_ms = 123456;
    CHECK_EQ_INT(tgp_backoff_next(&b, &e, 0, 0), 123456);
    /* GOAWAY 5 on a live session: ≥ 60 s, doubling to 1 h */
    memset(&e, 0, sizeof e);
    e.result = TGP_E_GOAWAY;
    e.code = TGP_S_CONFLICT;
    CHECK_EQ_INT(tgp_backoff_next(&b, &e, 5000, 0), 60000);
    CHECK_EQ_INT(tgp_backoff_next(&b, &e, 5000, 0), 120000);
    {
        int i;
        for (i = 0; i < 10; i++) w = tgp_backoff_next(&b, &e, 5000, 0);
        CHECK_EQ_INT(w, 3600000);
    }
    /* HELLO refused UNAUTHENTICATED: ≥ 1 h */
    memset(&e, 0, sizeof e);
    e.result = TGP_E_REFUSED;
    e.code = TGP_S_UNAUTHENTICATED;
    CHECK_EQ_INT(tgp_backoff_next(&b, &e, 0, 0), 3600000);
    /* a stable session resets k */
    e.result = TGP_E_IO;
    e.code = 0;
    tgp_backoff_next(&b, &e, 120000, 0);
    CHECK_EQ_INT(b.k, 0);
    CHECK_EQ_INT(b.replaced_ms, 0);
}


/* The §9 exchange again with the server's bytes arriving 1, 2, … 7 at a
 * time: the session must reach the same state whatever the segmentation. */
static void test_vectors_any_split(void)
{
    static fixture f;
    size_t chunk;
    int ok = 1;
    for (chunk = 1; chunk <= 7; chunk++) {
        uint8_t b[64];
        size_t n;
        setup(&f);
        f.m.chunk = chunk;
        if (login_vectors(&f) != 0 || tgp_session_id(&f.ctx) != 42) ok = 0;
        if (tgp_heartbeat(&f.ctx) != 0) ok = 0;
        n = unhex(VEC_HBACK, b, sizeof b);
        mock_push(&f.m, b, n);
        if (tgp_poll(&f.ctx, 0) != 0 || f.ctx.heartbeats != 1) ok = 0;
    }
    CHECK(ok);
}

static int status_map(void *u, tgp_mw *w)
{
    (void)u;
    tgp_mw_map(w, 1);
    tgp_mw_cstr(w, "k");
    tgp_mw_uint(w, 1);
    return 1;
}

/* HEARTBEAT carries group_version and the status map: [gv, {k: 1}]. */
static void test_heartbeat_status(void)
{
    static fixture f;
    setup(&f);
    f.cb.status = status_map;
    CHECK_EQ_INT(login_vectors(&f), 0);
    tgp_set_group_version(&f.ctx, 300);
    f.m.out_len = 0;
    CHECK_EQ_INT(tgp_heartbeat(&f.ctx), 0);
    CHECK(f.m.out_len == TGP_HEADER_SIZE + 8 + TGP_TAG_SIZE);
    CHECK(same_hex(f.m.out + TGP_HEADER_SIZE, 8, "92cd012c81a16b01"));
    /* The ack's flags are kept for the application (§13). */
    server_hex(&f, 0x82, f.ctx.hb_seq, "9400cf0000018bcfe56be8031e");
    CHECK_EQ_INT(tgp_poll(&f.ctx, 0), 0);
    CHECK_EQ_INT(tgp_flags(&f.ctx), TGP_FLAG_GROUP_STALE | TGP_FLAG_UPGRADE_PENDING);
    /* A malformed ack (interval missing) ends the session (§12). */
    CHECK_EQ_INT(tgp_heartbeat(&f.ctx), 0);
    server_hex(&f, 0x82, f.ctx.hb_seq, "9300cf0000018bcfe56be803");
    CHECK_EQ_INT(tgp_poll(&f.ctx, 0), TGP_E_MALFORMED);
}

/* A HELLO refused with retry_after (server over its cap, §6). */
static void test_hello_refused_retry_after(void)
{
    static fixture f;
    setup(&f);
    CHECK_EQ_INT(tgp_init(&f.ctx, &f.cfg, &f.cb, f.rx, sizeof f.rx), 0);
    /* [7, "busy", 5000] */
    mock_push(&f.m, (const uint8_t *)"\xa1\x81\x00\x00\x00\x0a\x93\x07\xa4\x62\x75\x73\x79\xcd\x13", 15);
    mock_push(&f.m, (const uint8_t *)"\x88", 1);
    CHECK_EQ_INT(tgp_login(&f.ctx), TGP_E_REFUSED);
    CHECK_EQ_INT(tgp_end_reason(&f.ctx)->code, 7);
    CHECK_EQ_INT(tgp_end_reason(&f.ctx)->retry_after_ms, 5000);
    CHECK(strcmp(tgp_end_reason(&f.ctx)->message, "busy") == 0);
    /* An ERROR frame instead of HELLO_OK (bad version, say). */
    setup(&f);
    CHECK_EQ_INT(tgp_init(&f.ctx, &f.cfg, &f.cb, f.rx, sizeof f.rx), 0);
    mock_push(&f.m, (const uint8_t *)"\xa1\xff\x00\x00\x00\x04\x92\x09\xa1\x31", 10);
    CHECK_EQ_INT(tgp_login(&f.ctx), TGP_E_ERROR_FRAME);
    CHECK_EQ_INT(tgp_end_reason(&f.ctx)->code, 9);
    /* No answer within hello_timeout. */
    setup(&f);
    f.cfg.hello_timeout_ms = 500;
    CHECK_EQ_INT(tgp_init(&f.ctx, &f.cfg, &f.cb, f.rx, sizeof f.rx), 0);
    CHECK_EQ_INT(tgp_login(&f.ctx), TGP_E_TIMEOUT);
    CHECK(f.m.now >= 500 && f.m.now < 1000);
}

static int verify_calls;
static uint8_t verified_digest[32];
static int verify_ok(void *u, const uint8_t digest[32], const uint8_t *sig, size_t len)
{
    (void)u;
    verify_calls++;
    memcpy(verified_digest, digest, 32);
    return len == 64 && sig[0] == 0x5a ? 0 : -1;
}

/* §16.1: with a pinned key, unsigned and badly signed releases are refused. */
static void test_release_verification(void)
{
    static fixture f;
    uint8_t sha[32], sig[64], want[32];
    tgp_bytes version, digest, signature;
    setup(&f);
    CHECK_EQ_INT(login_vectors(&f), 0);
    memset(sha, 0x11, sizeof sha);
    memset(sig, 0x5a, sizeof sig);
    version.p = (const uint8_t *)"2.0.0";
    version.len = 5;
    digest.p = sha;
    digest.len = 32;
    signature.p = sig;
    signature.len = 0;
    /* No key pinned: accepted as is. */
    CHECK_EQ_INT(tgp_verify_release(&f.ctx, "pos", &version, &digest, 1000, &signature), 0);
    f.cb.verify_sig = verify_ok;
    CHECK_EQ_INT(tgp_verify_release(&f.ctx, "pos", &version, &digest, 1000, &signature), TGP_E_SIG);
    CHECK_EQ_INT(verify_calls, 0);
    signature.len = 64;
    CHECK_EQ_INT(tgp_verify_release(&f.ctx, "pos", &version, &digest, 1000, &signature), 0);
    tgp_release_digest((const uint8_t *)"pos", 3, version.p, version.len, sha, 1000, want);
    CHECK(verify_calls == 1 && memcmp(want, verified_digest, 32) == 0);
    sig[0] = 0;
    CHECK_EQ_INT(tgp_verify_release(&f.ctx, "pos", &version, &digest, 1000, &signature), TGP_E_SIG);
}

static int hw_calls;
/* A stand-in for a hash engine: counts calls, computes in software. */
static int hw_hmac(void *u, const uint8_t *key, size_t key_len, const tgp_iov *parts, size_t n, uint8_t out[32])
{
    (void)u;
    hw_calls++;
    tgp_hmac_sha256_iov(key, key_len, parts, n, out);
    return 0;
}

/* With the hmac callback set every MAC goes through it, byte for byte the
 * same (§9 vectors). */
static void test_hmac_callback(void)
{
    static fixture f;
    setup(&f);
    f.cb.hmac = hw_hmac;
    CHECK_EQ_INT(login_vectors(&f), 0);
    CHECK(same_hex(f.m.out, f.m.out_len, VEC_HELLO));
    /* K_dev, hello mac, server_mac, K_s */
    CHECK_EQ_INT(hw_calls, 4);
    f.m.out_len = 0;
    CHECK_EQ_INT(tgp_heartbeat(&f.ctx), 0);
    CHECK(same_hex(f.m.out, f.m.out_len, VEC_HB0));
    CHECK_EQ_INT(hw_calls, 5);
}

void test_session(void)
{
    test_crypto();
    test_vectors_session();
    test_heartbeat_schedule();
    test_pushes_and_goaway();
    test_bad_tag();
    test_pipelining();
    test_clock_challenge();
    test_bad_server_mac();
    test_backoff();
    test_vectors_any_split();
    test_heartbeat_status();
    test_hello_refused_retry_after();
    test_release_verification();
    test_hmac_callback();
}
