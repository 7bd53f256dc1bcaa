/*
 * fuzz_tgp.c — fuzz target for the frame decoder and every body decoder.
 * Built as a libFuzzer target under clang (-fsanitize=fuzzer), or linked
 * with fuzz_main.c, a bounded random-input driver, where clang is missing.
 * Either way it runs under ASan and UBSan: any out-of-bounds read or
 * undefined behaviour is a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../tgp.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[TGP_RX_BUF_SIZE];
    tgp_decoder d;
    size_t off = 0, chunk;
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
