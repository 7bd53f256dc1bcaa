/*
 * size_main.c — a Cortex-M image that links every public SDK function,
 * so `make size` measures what firmware really pays in flash (libgcc and
 * newlib helpers included) and in static RAM (one context, one receive
 * buffer). Never run; the stubs only satisfy the linker.
 */
#include "../tgp.h"

static tgp_ctx ctx;                 /* the SDK's whole per-terminal state */
static uint8_t rx[TGP_RX_BUF_SIZE]; /* the 4 KiB receive buffer */
static volatile long sink;

static int s_send(void *u, const uint8_t *b, size_t n) { (void)u; (void)b; return (int)n; }
static long s_recv(void *u, uint8_t *b, size_t c, uint32_t t) { (void)u; (void)b; (void)c; return (long)t; }
static uint64_t s_now(void *u) { (void)u; return (uint64_t)sink; }
static int s_rand(void *u, uint8_t *b, size_t n) { (void)u; (void)b; return (int)n; }

int main(void);
int main(void)
{
    static const tgp_callbacks cb = {0, s_send, s_recv, s_now, s_now, s_rand, 0, 0, 0, 0, 0};
    static const tgp_config cfg = {"T-1", "1", "m", (const uint8_t *)"0123456789abcdef", 16, 0, 0, 0, 0, 0, 0};
    static const tgp_control c = {"svc", TGP_OP_STATUS, 0, 0, 0, 0, 0};
    static const tgp_upgrade_query q = {"app", "1", 1};
    static const tgp_upgrade_report r = {"r", 1, 1, 0, 0, ""};
    static const tgp_schedule_request sr = {"c", "1", 0, 0.0, 0.0, "s"};
    static const tgp_upgrade_check uc = {"r", "1"};
    static const tgp_group_auth ga = {"g"};
    static const tgp_group_change gc = {1, 1, 0, "g", 0, 0};
    static const tgp_group_send gs = {"g", 0, 0};
    union {
        tgp_control_ack c; tgp_upgrade_query_ack q; tgp_schedule_ack s; tgp_upgrade_check_ack u;
        tgp_group_auth_ack a; tgp_groups_msg g; tgp_group_send_ack gs; tgp_upgrade_notice n;
        tgp_group_message m; tgp_goaway go; tgp_ack ack;
    } d;
    tgp_bytes b1, b2;
    tgp_backoff bo = {0, 0};
    uint16_t seq;
    const uint8_t *p = (const uint8_t *)&sink;
    sink += tgp_init(&ctx, &cfg, &cb, rx, sizeof rx);
    sink += tgp_login(&ctx);
    sink += tgp_send_control(&ctx, &c, &seq);
    sink += tgp_send_upgrade_query(&ctx, &q, &seq);
    sink += tgp_send_upgrade_report(&ctx, &r, &seq);
    sink += tgp_send_schedule_request(&ctx, &sr, &seq);
    sink += tgp_send_upgrade_check(&ctx, &uc, &seq);
    sink += tgp_send_group_auth(&ctx, &ga, &seq);
    sink += tgp_send_group_change(&ctx, &gc, &seq);
    sink += tgp_send_group_list(&ctx, &seq);
    sink += tgp_send_group_send(&ctx, &gs, &seq);
    sink += tgp_heartbeat(&ctx);
    sink += tgp_wait(&ctx, seq, 10);
    sink += tgp_poll(&ctx, 10);
    sink += tgp_bye(&ctx, "x", &seq);
    sink += tgp_decode_control_ack(p, 1, &d.c);
    sink += tgp_decode_upgrade_query_ack(p, 1, &d.q);
    sink += tgp_decode_schedule_ack(p, 1, &d.s);
    sink += tgp_decode_upgrade_check_ack(p, 1, &d.u);
    sink += tgp_decode_group_auth_ack(p, 1, &d.a);
    sink += tgp_decode_groups_ack(p, 1, &d.g);
    sink += tgp_groups_next(&d.g.groups, &b1, &b2);
    sink += tgp_decode_group_sync(p, 1, &d.g);
    sink += tgp_decode_group_send_ack(p, 1, &d.gs);
    sink += tgp_decode_upgrade_notice(p, 1, &d.n);
    sink += tgp_decode_group_message(p, 1, &d.m);
    sink += tgp_decode_status(p, 1, &d.ack);
    sink += tgp_verify_release(&ctx, "a", &b1, &b2, 1, &b1);
    sink += (long)tgp_backoff_next(&bo, tgp_end_reason(&ctx), 1, 2);
    sink += (long)tgp_server_time_ms(&ctx);
    return (int)sink;
}
