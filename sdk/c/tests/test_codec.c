/*
 * test_codec.c — the MessagePack reader/writer, the frame decoder fed
 * every split of a stream, and the typed message codecs.
 */
#include "testutil.h"

static void test_msgpack_ints(void)
{
    /* Every valid encoding of an integer is accepted (§2). */
    static const struct { const char *hex; uint64_t v; } uints[] = {
        {"05", 5}, {"cc05", 5}, {"cd0005", 5}, {"ce00000005", 5}, {"cf0000000000000005", 5},
        {"d005", 5}, {"d10005", 5}, {"d200000005", 5}, {"d30000000000000005", 5},
        {"cfffffffffffffffff", UINT64_MAX},
    };
    uint8_t b[16], out[16];
    size_t i, n;
    tgp_mr r;
    tgp_mw w;
    uint64_t v;
    int64_t s;
    double d;
    for (i = 0; i < sizeof uints / sizeof uints[0]; i++) {
        n = unhex(uints[i].hex, b, sizeof b);
        tgp_mr_init(&r, b, n);
        CHECK(tgp_mr_uint(&r, &v) == 0 && v == uints[i].v && r.p == r.end);
    }
    /* Negative values are not uints; they are ints. */
    n = unhex("ff", b, sizeof b);
    tgp_mr_init(&r, b, n);
    CHECK(tgp_mr_uint(&r, &v) != 0 && r.err == TGP_MP_RANGE);
    tgp_mr_init(&r, b, n);
    CHECK(tgp_mr_int(&r, &s) == 0 && s == -1);
    n = unhex("d38000000000000000", b, sizeof b);
    tgp_mr_init(&r, b, n);
    CHECK(tgp_mr_int(&r, &s) == 0 && s == INT64_MIN);
    n = unhex("d0ff", b, sizeof b);
    tgp_mr_init(&r, b, n);
    CHECK(tgp_mr_int(&r, &s) == 0 && s == -1);
    /* A float field accepts integers. */
    n = unhex("cd0100", b, sizeof b);
    tgp_mr_init(&r, b, n);
    CHECK(tgp_mr_double(&r, &d) == 0 && d == 256.0);
    /* Truncated integers are refused. */
    n = unhex("cd01", b, sizeof b);
    tgp_mr_init(&r, b, n);
    CHECK(tgp_mr_uint(&r, &v) != 0 && r.err == TGP_MP_TRUNCATED);
    /* The writer uses the shortest encoding. */
    tgp_mw_init(&w, out, sizeof out);
    tgp_mw_uint(&w, 127);
    tgp_mw_uint(&w, 128);
    tgp_mw_uint(&w, 65536);
    tgp_mw_int(&w, -33);
    CHECK(same_hex(out, w.len, "7fcc80ce00010000d0df"));
    /* and latches overflow instead of writing past cap */
    tgp_mw_init(&w, out, 2);
    tgp_mw_uint(&w, 65536);
    CHECK(w.err && w.len == 0);
}

static void test_msgpack_lengths_and_depth(void)
{
    uint8_t b[64];
    size_t n;
    tgp_mr r;
    tgp_bytes s;
    uint32_t cnt;
    /* A str claiming more bytes than remain. */
    n = unhex("d9ff6162", b, sizeof b);
    tgp_mr_init(&r, b, n);
    CHECK(tgp_mr_str(&r, &s, 1000) != 0 && r.err == TGP_MP_TRUNCATED);
    /* An array claiming more elements than bytes remain. */
    n = unhex("dc100001", b, sizeof b);
    tgp_mr_init(&r, b, n);
    CHECK(tgp_mr_array(&r, &cnt) != 0 && r.err == TGP_MP_TRUNCATED);
    /* A string over its field's bound. */
    n = unhex("a3616263", b, sizeof b);
    tgp_mr_init(&r, b, n);
    CHECK(tgp_mr_str(&r, &s, 2) != 0 && r.err == TGP_MP_RANGE);
    /* Nesting: the body is level 1; containers up to level 8 pass. */
    n = unhex("9291919191919191c0", b, sizeof b); /* [x, [[[[[[[nil]]]]]]]] : 8 levels */
    tgp_mr_init(&r, b, n);
    CHECK(tgp_mr_array(&r, &cnt) == 0 && cnt == 2);
    tgp_mr_init(&r, b, n);
    (void)tgp_mr_array(&r, &cnt);
    CHECK(tgp_mr_skip(&r, 2) == 0);
    n = unhex("929191919191919191c0", b, sizeof b); /* 9 levels */
    tgp_mr_init(&r, b, n);
    (void)tgp_mr_array(&r, &cnt);
    CHECK(tgp_mr_skip(&r, 2) != 0 && r.err == TGP_MP_DEPTH);
    /* skip handles every family: map, ext, fixext, bin, float. */
    n = unhex("81a16bc701ff00d40102c40100cb0000000000000000", b, sizeof b);
    tgp_mr_init(&r, b, n);
    CHECK(tgp_mr_skip(&r, 2) == 0 && tgp_mr_skip(&r, 2) == 0 && tgp_mr_skip(&r, 2) == 0 &&
          tgp_mr_skip(&r, 2) == 0 && r.p == r.end);
}

/* A stream of frames decodes the same whatever the segmentation (§2). */
static void test_decoder_splits(void)
{
    static const char *stream_hex =
        "a1810000003296002acf0000018bcfe5687b1ecd1000c4201b04acbb8d151699f13e597ee8"
        "9b973c9ef642239b991dda3d17df243a3451ad"
        "a182000100159400cf0000018bcfe56be8001e0ac7a4f74038089b"
        "a1020002000a91004c9fb97566447a7c";
    static const uint16_t lens[3] = {0x32, 0x15, 0x0a};
    static const uint8_t types[3] = {0x81, 0x82, 0x02};
    /* where each frame's body starts in the stream */
    static const size_t body_at[3] = {6, 6 + 0x32 + 6, 6 + 0x32 + 6 + 0x15 + 6};
    uint8_t stream[256], buf[TGP_RX_BUF_SIZE];
    size_t n = unhex(stream_hex, stream, sizeof stream), split, chunk;
    int all_ok = 1;
    /* every two-piece split, and every fixed chunk size */
    for (split = 0; split <= 2 * n; split++) {
        tgp_decoder d;
        size_t off = 0, frames = 0;
        int ok = 1;
        int two_piece = split <= n;
        chunk = two_piece ? 0 : split - n;
        tgp_decoder_init(&d, buf, sizeof buf);
        while (off < n && ok) {
            size_t end = two_piece ? (off < split ? split : n) : off + chunk;
            size_t used;
            int rc;
            if (end > n) end = n;
            if (end == off) end = n;
            while (off < end) {
                rc = tgp_decoder_feed(&d, stream + off, end - off, &used);
                off += used;
                if (rc == TGP_FRAME_READY) {
                    tgp_frame f;
                    tgp_decoder_frame(&d, &f);
                    if (frames >= 3 || f.type != types[frames] || f.len != lens[frames] ||
                        memcmp(f.body, stream + body_at[frames], f.len) != 0 ||
                        memcmp(f.header, stream + body_at[frames] - TGP_HEADER_SIZE, TGP_HEADER_SIZE) != 0) {
                        ok = 0;
                    }
                    frames++;
                    tgp_decoder_next(&d);
                } else if (rc != TGP_FRAME_PENDING) {
                    ok = 0;
                    break;
                }
            }
        }
        if (!ok || frames != 3) {
            fprintf(stderr, "split %zu: %zu frames\n", split, frames);
            all_ok = 0;
        }
    }
    CHECK(all_ok);
}

static void test_decoder_rejects(void)
{
    uint8_t buf[TGP_RX_BUF_SIZE];
    tgp_decoder d;
    size_t used;
    static const uint8_t bad_magic[] = {0xA2, 0x81, 0, 0, 0, 1, 0x90};
    static const uint8_t len0[] = {0xA1, 0x81, 0, 0, 0, 0};
    static const uint8_t too_long[] = {0xA1, 0x81, 0, 0, 0x10, 0x01}; /* 4097 */
    static const uint8_t max_len[] = {0xA1, 0x81, 0, 0, 0x10, 0x00};  /* 4096 is fine */
    tgp_decoder_init(&d, buf, sizeof buf);
    CHECK_EQ_INT(tgp_decoder_feed(&d, bad_magic, sizeof bad_magic, &used), TGP_E_MALFORMED);
    tgp_decoder_init(&d, buf, sizeof buf);
    CHECK_EQ_INT(tgp_decoder_feed(&d, len0, sizeof len0, &used), TGP_E_MALFORMED);
    tgp_decoder_init(&d, buf, sizeof buf);
    CHECK_EQ_INT(tgp_decoder_feed(&d, too_long, sizeof too_long, &used), TGP_E_MALFORMED);
    tgp_decoder_init(&d, buf, sizeof buf);
    CHECK_EQ_INT(tgp_decoder_feed(&d, max_len, sizeof max_len, &used), TGP_FRAME_PENDING);
    /* After HELLO_OK a len below 9 has no room for a tag: refused at the
     * header, before any body byte (§8). */
    {
        static const uint8_t short_len[] = {0xA1, 0x82, 0, 1, 0, 8};
        tgp_decoder_init(&d, buf, sizeof buf);
        tgp_decoder_tagged(&d);
        CHECK_EQ_INT(tgp_decoder_feed(&d, short_len, sizeof short_len, &used), TGP_E_BAD_TAG);
    }
}

static void test_encoders(void)
{
    uint8_t out[256];
    tgp_mw w;
    static const char *const args[] = {"42"};
    tgp_control c;
    tgp_schedule_request sr;
    tgp_group_change gc;
    memset(&c, 0, sizeof c);
    c.service_id = "demo-sync";
    c.op = TGP_OP_START;
    c.args = args;
    c.nargs = 1;
    tgp_mw_init(&w, out, sizeof out);
    CHECK_EQ_INT(tgp_encode_control(&w, &c), 0);
    CHECK(same_hex(out, w.len, "93a964656d6f2d73796e630191a23432"));
    c.has_request_id = 1;
    c.request_id = 7;
    tgp_mw_init(&w, out, sizeof out);
    tgp_encode_control(&w, &c);
    CHECK(same_hex(out, w.len, "95a964656d6f2d73796e630191a23432c007"));
    memset(&sr, 0, sizeof sr);
    sr.campaign_id = "c1";
    sr.version = "1.0";
    sr.system_id = "s";
    tgp_mw_init(&w, out, sizeof out);
    tgp_encode_schedule_request(&w, &sr);
    CHECK(same_hex(out, w.len, "95a26331a3312e30c0c0a173"));
    /* A report message over 256 bytes is clipped on a UTF-8 boundary. */
    {
        static char msg[300];
        static uint8_t big[400];
        tgp_upgrade_report r;
        memset(msg, 'a', sizeof msg - 1);
        msg[255] = (char)0xC3; /* "é" straddling the 256-byte limit */
        msg[256] = (char)0xA9;
        memset(&r, 0, sizeof r);
        r.release_id = "r";
        r.attempt = 1;
        r.stage = TGP_STAGE_FAILED;
        r.message = msg;
        tgp_mw_init(&w, big, sizeof big);
        CHECK_EQ_INT(tgp_encode_upgrade_report(&w, &r), 0);
        /* 96 a1 72 01 05 00 00, then str8 d9 ff: 255 bytes, the "é" dropped whole */
        CHECK(w.len == 9 + 255 && big[7] == 0xd9 && big[8] == 0xff);
    }
    memset(&gc, 0, sizeof gc);
    gc.request_id = 1;
    gc.op = TGP_GROUP_LEAVE;
    gc.from = "g";
    tgp_mw_init(&w, out, sizeof out);
    tgp_encode_group_change(&w, &gc);
    CHECK(same_hex(out, w.len, "950102a167c0c0"));
}

static void test_decoders(void)
{
    uint8_t b[512];
    size_t n;
    tgp_control_ack ca;
    tgp_upgrade_query_ack qa;
    tgp_schedule_ack sa;
    tgp_groups_msg g;
    tgp_bytes id, role;
    tgp_ack a;
    /* CONTROL_ACK with an extra trailing element a newer server added. */
    n = unhex("9700a6657869746564000301a36f6b0ac3", b, sizeof b);
    CHECK_EQ_INT(tgp_decode_control_ack(b, n, &ca), 0);
    CHECK(ca.st.code == 0 && ca.state.len == 6 && memcmp(ca.state.p, "exited", 6) == 0);
    CHECK(ca.exit_code == 3 && ca.since_ms == 1 && ca.output.len == 3);
    /* …but bytes after the array are refused. */
    b[n] = 0xc0;
    CHECK_EQ_INT(tgp_decode_control_ack(b, n + 1, &ca), TGP_E_MALFORMED);
    /* TIMEOUT carries what is known. */
    n = unhex("960da474696d65a772756e6e696e670a0005", b, sizeof b);
    CHECK_EQ_INT(tgp_decode_control_ack(b, n, &ca), 0);
    CHECK(ca.st.code == 13 && ca.pid == 10 && ca.since_ms == 5);
    /* A refusal with retry_after_ms. */
    n = unhex("9306a4736c6f77cd03e8", b, sizeof b);
    CHECK_EQ_INT(tgp_decode_status(b, n, &a), 0);
    CHECK(a.st.code == 6 && a.st.retry_after_ms == 1000);
    /* Missing required element. */
    n = unhex("9300a17201", b, sizeof b);
    CHECK_EQ_INT(tgp_decode_control_ack(b, n, &ca), TGP_E_MALFORMED);
    /* UPGRADE_QUERY_ACK: no offer, no failure, a 5-element campaign. */
    n = unhex("9400c0c095a26331a5322e302e30010aa27231", b, sizeof b);
    CHECK_EQ_INT(tgp_decode_upgrade_query_ack(b, n, &qa), 0);
    CHECK(!qa.has_offer && !qa.has_last_failure && qa.has_campaign && qa.campaign.window_end_ms == 10 &&
          qa.campaign.release_id.len == 2);
    /* An offer with a short sha256 is malformed. */
    n = unhex("940098a172a131a175c401000100c2a0c400c0c0", b, sizeof b);
    CHECK_EQ_INT(tgp_decode_upgrade_query_ack(b, n, &qa), TGP_E_MALFORMED);
    /* SCHEDULE_ACK with the 7th element release_id. */
    n = unhex("9700a27273a16ea1750102a27231", b, sizeof b);
    CHECK_EQ_INT(tgp_decode_schedule_ack(b, n, &sa), 0);
    CHECK(sa.slot_end_ms == 2 && sa.release_id.len == 2);
    /* GROUP_LIST_ACK with two memberships, walked without copying. */
    n = unhex("93000792" "92a16ba16d" "93a162a16fc3", b, sizeof b);
    CHECK_EQ_INT(tgp_decode_groups_ack(b, n, &g), 0);
    CHECK(g.group_version == 7);
    CHECK(tgp_groups_next(&g.groups, &id, &role) == 1 && id.p[0] == 'k' && role.p[0] == 'm');
    CHECK(tgp_groups_next(&g.groups, &id, &role) == 1 && id.p[0] == 'b' && role.p[0] == 'o');
    CHECK(tgp_groups_next(&g.groups, &id, &role) == 0);
}

static void test_release_digest(void)
{
    /* The digest binds app_id, version, sha256 and size; a verify
     * callback that is set refuses an unsigned release. */
    uint8_t sha[32], d1[32], d2[32];
    memset(sha, 0x11, sizeof sha);
    tgp_release_digest((const uint8_t *)"pos", 3, (const uint8_t *)"2.0.0", 5, sha, 1000, d1);
    tgp_release_digest((const uint8_t *)"pos", 3, (const uint8_t *)"2.0.0", 5, sha, 1001, d2);
    CHECK(memcmp(d1, d2, 32) != 0);
}


static void test_more_decoders(void)
{
    uint8_t b[512];
    size_t n;
    tgp_upgrade_check_ack uc;
    tgp_group_auth_ack ga;
    tgp_goaway g;
    tgp_hello_ok h;
    tgp_upgrade_notice un;
    tgp_group_message gm;
    /* PROCEED with url, sha256, size, token and an empty release_sig. */
    n = unhex("9800010ba175c420" "3333333333333333333333333333333333333333333333333333333333333333" "05a174c400", b, sizeof b);
    CHECK_EQ_INT(tgp_decode_upgrade_check_ack(b, n, &uc), 0);
    CHECK(uc.decision == 1 && uc.wait_ms == 11 && uc.sha256.len == 32 && uc.size == 5 && uc.token.len == 1);
    /* TOO_EARLY leaves sha256 empty, which is fine outside PROCEED. */
    n = unhex("980003cd1388a0c40000a0c400", b, sizeof b);
    CHECK_EQ_INT(tgp_decode_upgrade_check_ack(b, n, &uc), 0);
    CHECK(uc.decision == 3 && uc.wait_ms == 5000);
    /* PROCEED without a digest is malformed. */
    n = unhex("980001 00a0c40000a0c400", b, sizeof b);
    CHECK_EQ_INT(tgp_decode_upgrade_check_ack(b, n, &uc), TGP_E_MALFORMED);
    n = unhex("9600c403010203cd1000a16da46e616d6503", b, sizeof b);
    CHECK_EQ_INT(tgp_decode_group_auth_ack(b, n, &ga), 0);
    CHECK(ga.grant.len == 3 && ga.expires_ms == 4096 && ga.members == 3);
    /* GOAWAY with retry_after_ms; and without it. */
    n = unhex("9307a873687574646f776ecd2710", b, sizeof b);
    CHECK_EQ_INT(tgp_decode_goaway(b, n, &g), 0);
    CHECK(g.code == 7 && g.retry_after_ms == 10000 && g.message.len == 8);
    n = unhex("9205a87265706c61636564", b, sizeof b);
    CHECK_EQ_INT(tgp_decode_goaway(b, n, &g), 0);
    CHECK(g.code == 5 && g.retry_after_ms == 0);
    /* HELLO_OK from a newer server with a 7th element. */
    n = unhex("97002acf0000018bcfe5687b1ecd1000c420" "1b04acbb8d151699f13e597ee89b973c9ef642239b991dda3d17df243a3451ad" "a3787878", b, sizeof b);
    CHECK_EQ_INT(tgp_decode_hello_ok(b, n, &h), 0);
    CHECK(h.session_id == 42 && h.hb_interval_s == 30 && h.max_frame == 4096);
    /* A challenge of the wrong size is malformed. */
    n = unhex("940ca0cf0000018bcfe5687bc40fffffffffffffffffffffffffffffffff", b, sizeof b);
    CHECK_EQ_INT(tgp_decode_hello_ok(b, n, &h), TGP_E_MALFORMED);
    /* UPGRADE_NOTICE kind 3 (withdrawn); GROUP_MESSAGE from an operator. */
    n = unhex("94a27231a3706f73a5322e302e3003", b, sizeof b);
    CHECK(tgp_decode_upgrade_notice(b, n, &un) == 0 && un.kind == TGP_NOTICE_WITHDRAWN);
    n = unhex("94a26731a001c40101", b, sizeof b);
    CHECK(tgp_decode_group_message(b, n, &gm) == 0 && gm.from.len == 0 && gm.msg_id == 1 && gm.payload.len == 1);
    /* Not an array at all. */
    n = unhex("a0", b, sizeof b);
    CHECK_EQ_INT(tgp_decode_goaway(b, n, &g), TGP_E_MALFORMED);
}

void test_codec(void)
{
    test_msgpack_ints();
    test_msgpack_lengths_and_depth();
    test_decoder_splits();
    test_decoder_rejects();
    test_encoders();
    test_decoders();
    test_release_digest();
    test_more_decoders();
}
