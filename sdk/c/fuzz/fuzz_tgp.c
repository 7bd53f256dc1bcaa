/*
 * fuzz_tgp.c — fuzz target for the frame decoder and every body decoder.
 * It also drives a live session: the input is cut into (type, seq, body)
 * records that are wrapped in correctly tagged server frames, so the
 * session's dispatch (responses matched by seq, heartbeat acks, pushes and
 * their acks, GOAWAY, ERROR) sees arbitrary bodies past the tag check.
 * Built as a libFuzzer target under clang (-fsanitize=fuzzer), or linked
 * with fuzz_main.c, a bounded random-input driver, where clang is missing.
 * Either way it runs under ASan and UBSan: any out-of-bounds read or
 * undefined behaviour is a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../tgp.h"
#include "../tests/testutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* decode_all runs every body decoder on b and walks what they return. */
static void decode_all(const uint8_t *b, size_t n)
{
    union {
        tgp_ack a;
        tgp_hello_ok h;
        tgp_heartbeat_ack hb;
        tgp_control_ack c;
        tgp_upgrade_query_ack q;
        tgp_schedule_ack s;
        tgp_upgrade_check_ack uc;
        tgp_group_auth_ack ga;
        tgp_groups_msg g;
        tgp_group_send_ack gs;
        tgp_upgrade_notice un;
        tgp_group_message gm;
        tgp_goaway go;
    } u;
    volatile uint32_t sink = 0; /* keeps the reads from being optimised away */
    tgp_bytes id, role;
    (void)tgp_decode_status(b, n, &u.a);
    if (tgp_decode_hello_ok(b, n, &u.h) == 0 && u.h.has_challenge) sink += u.h.challenge.p[15];
    (void)tgp_decode_heartbeat_ack(b, n, &u.hb);
    if (tgp_decode_control_ack(b, n, &u.c) == 0 && u.c.output.len > 0) sink += u.c.output.p[u.c.output.len - 1];
    if (tgp_decode_upgrade_query_ack(b, n, &u.q) == 0 && u.q.has_offer) sink += u.q.offer.sha256.p[31];
    (void)tgp_decode_schedule_ack(b, n, &u.s);
    (void)tgp_decode_upgrade_check_ack(b, n, &u.uc);
    (void)tgp_decode_group_auth_ack(b, n, &u.ga);
    if (tgp_decode_groups_ack(b, n, &u.g) == 0) {
        while (tgp_groups_next(&u.g.groups, &id, &role)) sink += id.len + role.len;
    }
    if (tgp_decode_group_sync(b, n, &u.g) == 0) {
        while (tgp_groups_next(&u.g.groups, &id, &role)) sink += id.len + role.len;
    }
    (void)tgp_decode_group_send_ack(b, n, &u.gs);
    (void)tgp_decode_upgrade_notice(b, n, &u.un);
    (void)tgp_decode_group_message(b, n, &u.gm);
    (void)tgp_decode_goaway(b, n, &u.go);
    {
        tgp_mr r;
        tgp_mr_init(&r, b, n);
        (void)tgp_mr_skip(&r, 1);
    }
    (void)sink;
}

/* The §9 HELLO_OK (session 42) that the fuzzed session starts from. */
static const char HELLO_OK_HEX[] =
    "a1810000003296002acf0000018bcfe5687b1ecd1000c4201b04acbb8d151699f13e597ee8"
    "9b973c9ef642239b991dda3d17df243a3451ad";
static const char SECRET[] = "dev-fleet-secret";

/* Each record: type, seq, body length, body (clipped to what is left). */
#define RECORD_HEADER 3u
#define SESSION_MARKER 0xA5u /* first byte selecting the session phase */

static void fuzz_session(const uint8_t *data, size_t size)
{
    static mock m;
    static tgp_ctx ctx;
    static uint8_t rx[TGP_RX_BUF_SIZE];
    static uint8_t frame[TGP_HEADER_SIZE + 256 + TGP_TAG_SIZE];
    tgp_config cfg;
    tgp_callbacks cb;
    uint8_t b[128];
    uint64_t server_n = 0;
    size_t off = 0, n;
    uint16_t seq;
    static const tgp_upgrade_query q = {"pos", "1.0.0", 1};
    static const tgp_control c = {"svc", TGP_OP_STATUS, NULL, 0, 0, 0, 0};
    memset(&cfg, 0, sizeof cfg);
    cfg.device_id = "T-0001";
    cfg.fw = "1.0.0";
    cfg.model = "P400";
    cfg.fleet_secret = (const uint8_t *)SECRET;
    cfg.fleet_secret_len = sizeof SECRET - 1;
    mock_init(&m);
    mock_callbacks(&cb, &m);
    m.closed = 1; /* once the input is used up the server "closes" */
    n = unhex(HELLO_OK_HEX, b, sizeof b);
    mock_push(&m, b, n);
    if (tgp_init(&ctx, &cfg, &cb, rx, sizeof rx) != 0 || tgp_login(&ctx) != 0) return;
    /* Outstanding requests of several types for responses to match. */
    (void)tgp_send_upgrade_query(&ctx, &q, &seq);
    (void)tgp_send_control(&ctx, &c, &seq);
    (void)tgp_send_group_list(&ctx, &seq);
    (void)tgp_heartbeat(&ctx);
    while (off + RECORD_HEADER <= size) {
        size_t blen = data[off + 2];
        if (blen > size - off - RECORD_HEADER) blen = size - off - RECORD_HEADER;
        frame[0] = TGP_MAGIC;
        frame[1] = data[off];
        frame[2] = 0;
        frame[3] = data[off + 1];
        frame[4] = (uint8_t)((blen + TGP_TAG_SIZE) >> 8);
        frame[5] = (uint8_t)(blen + TGP_TAG_SIZE);
        memcpy(frame + TGP_HEADER_SIZE, data + off + RECORD_HEADER, blen);
        (void)tgp_frame_tag(NULL, ctx.ks, TGP_DIR_SERVER, server_n++, frame, TGP_HEADER_SIZE + blen,
                            frame + TGP_HEADER_SIZE + blen);
        mock_push(&m, frame, TGP_HEADER_SIZE + blen + TGP_TAG_SIZE);
        off += RECORD_HEADER + blen;
        m.out_len = 0; /* the terminal's acks are not inspected */
    }
    while (tgp_poll(&ctx, 0) == 0 && m.in_off < m.in_len) {
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[TGP_RX_BUF_SIZE];
    tgp_decoder d;
    size_t off = 0, chunk;
    if (size > 0 && data[0] == SESSION_MARKER) {
        fuzz_session(data + 1, size - 1);
        return 0;
    }
    decode_all(data, size);
    if (size == 0) return 0;
    /* The first byte picks the segment size, so splits are fuzzed too. */
    chunk = (size_t)data[0] % 17u + 1u;
    tgp_decoder_init(&d, buf, sizeof buf);
    for (off = 1; off < size;) {
        size_t n = size - off < chunk ? size - off : chunk, used;
        int rc = tgp_decoder_feed(&d, data + off, n, &used);
        off += used;
        if (rc == TGP_FRAME_READY) {
            tgp_frame f;
            tgp_decoder_frame(&d, &f);
            decode_all(f.body, f.len);
            if (f.len > TGP_TAG_SIZE) decode_all(f.body, f.len - TGP_TAG_SIZE);
            tgp_decoder_next(&d);
        } else if (rc < 0) {
            break;
        }
    }
    return 0;
}
