/*
 * posix_terminal.c — a TGP/1 terminal over POSIX sockets, built on the C
 * SDK: it logs in (answering a clock challenge if its clock is off),
 * heartbeats, asks for an upgrade, runs a CONTROL and reports how its
 * session ended and how long it would back off (docs/protocol.md §18).
 *
 * Every step prints one line starting with a fixed word (connected, login,
 * challenge, heartbeat, upgrade, control, goaway, ended, backoff, done)
 * so scripts and tests can follow it.
 *
 *   posix_terminal -addr 127.0.0.1:7000 -device T-1 -secret-file var/fleet-secret \
 *                  -beats 3 -app pos -version 1.0.0 -control demo-sync:start:42
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../tgp.h"

#define MS_PER_S          1000
#define NS_PER_MS         1000000L
#define POLL_SLICE_MS     200u   /* how long one tgp_poll may block */
#define CONTROL_WAIT_MS   30000u /* CONTROL's default server timeout */
#define QUERY_WAIT_MS     10000u
#define BYE_WAIT_MS       2000u
#define SECRET_MAX        256
#define EXIT_GOAWAY       2      /* the session ended with GOAWAY */
#define EXIT_FAILED       1

typedef struct {
    int      fd;
    int64_t  skew_ms;   /* added to the wall clock: tests the clock challenge */
    int      urandom;
    unsigned acks;
} terminal;

/* ---- platform callbacks ---- */

static int t_send(void *u, const uint8_t *b, size_t n)
{
    terminal *t = (terminal *)u;
    while (n > 0) {
        ssize_t w = send(t->fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static long t_recv(void *u, uint8_t *b, size_t cap, uint32_t timeout_ms)
{
    terminal *t = (terminal *)u;
    struct pollfd p;
    int rc;
    ssize_t n;
    p.fd = t->fd;
    p.events = POLLIN;
    p.revents = 0;
    rc = poll(&p, 1, timeout_ms > (uint32_t)INT32_MAX ? INT32_MAX : (int)timeout_ms);
    if (rc < 0) return errno == EINTR ? 0 : -1;
    if (rc == 0) return 0;
    n = recv(t->fd, b, cap, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 0;
    return n > 0 ? (long)n : -1; /* 0: the server closed */
}

static uint64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * MS_PER_S + (uint64_t)(ts.tv_nsec / NS_PER_MS);
}

static uint64_t t_now(void *u)
{
    (void)u;
    return clock_ms(CLOCK_MONOTONIC);
}

static uint64_t t_unix(void *u)
{
    terminal *t = (terminal *)u;
    int64_t ms = (int64_t)clock_ms(CLOCK_REALTIME) + t->skew_ms;
    return ms > 0 ? (uint64_t)ms : 0;
}

static int t_random(void *u, uint8_t *b, size_t n)
{
    terminal *t = (terminal *)u;
    while (n > 0) {
        ssize_t r = read(t->urandom, b, n);
        if (r <= 0) return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

/* ---- responses and pushes ---- */

static void print_bytes(const char *name, const tgp_bytes *b)
{
    uint32_t i;
    printf(" %s=", name);
    for (i = 0; i < b->len; i++) putchar(b->p[i] == '\n' ? '|' : b->p[i]);
}

static void on_response(void *u, const tgp_msg *m)
{
    terminal *t = (terminal *)u;
    switch (m->type & ~TGP_RESPONSE_BIT) {
    case TGP_T_HEARTBEAT: {
        tgp_heartbeat_ack a;
        if (tgp_decode_heartbeat_ack(m->body, m->len, &a) != 0) break;
        t->acks += a.st.code == TGP_S_OK;
        printf("heartbeat ack n=%u status=%u flags=%llu interval_s=%llu\n", t->acks, a.st.code,
               (unsigned long long)a.flags, (unsigned long long)a.hb_interval_s);
        break;
    }
    case TGP_T_UPGRADE_QUERY: {
        tgp_upgrade_query_ack a;
        if (tgp_decode_upgrade_query_ack(m->body, m->len, &a) != 0) {
            printf("upgrade malformed\n");
            break;
        }
        printf("upgrade status=%u", a.st.code);
        if (a.has_offer) {
            print_bytes("offer", &a.offer.release_id);
            print_bytes("version", &a.offer.version);
        } else if (a.has_campaign) {
            print_bytes("campaign", &a.campaign.campaign_id);
        } else {
            printf(" offer=none");
        }
        printf("\n");
        break;
    }
    case TGP_T_CONTROL: {
        tgp_control_ack a;
        if (tgp_decode_control_ack(m->body, m->len, &a) != 0) {
            printf("control malformed\n");
            break;
        }
        printf("control status=%u", a.st.code);
        if (a.st.code == TGP_S_OK || a.st.code == TGP_S_TIMEOUT) {
            print_bytes("state", &a.state);
            printf(" pid=%llu exit_code=%lld", (unsigned long long)a.pid, (long long)a.exit_code);
            print_bytes("output", &a.output);
        } else {
            print_bytes("message", &a.st.message);
        }
        printf("\n");
        break;
    }
    default:
        printf("response type=0x%02x seq=%u\n", m->type, m->seq);
    }
    fflush(stdout);
}

static void on_push(void *u, const tgp_msg *m)
{
    (void)u;
    printf("push type=0x%02x seq=%u\n", m->type, m->seq);
    fflush(stdout);
}

/* ---- command line ---- */

typedef struct {
    const char *addr, *device, *secret, *secret_file, *key_hex, *app, *version, *control;
    long        skew_s, beats, run_ms, hb_min_s;
} options;

static void usage(void)
{
    fprintf(stderr,
            "usage: posix_terminal -device ID (-secret S | -secret-file F | -key HEX64) [options]\n"
            "  -addr HOST:PORT      server (default 127.0.0.1:7000)\n"
            "  -skew SECONDS        add to the wall clock (test the clock challenge)\n"
            "  -beats N             stop after N heartbeat acks (default 3)\n"
            "  -run-ms MS           stop after MS milliseconds at most (default 60000)\n"
            "  -hb-min S            lowest heartbeat interval accepted (default 10; tests lower it)\n"
            "  -app ID -version V   send UPGRADE_QUERY for this installed app\n"
            "  -control SVC:OP[:ARG] run a CONTROL (OP start|stop|restart|status)\n"
            "A second terminal with the same -device takes the session over; the\n"
            "first prints 'goaway code=5' and exits %d.\n", EXIT_GOAWAY);
    exit(EXIT_FAILED);
}

static void parse(int argc, char **argv, options *o)
{
    int i;
    memset(o, 0, sizeof *o);
    o->addr = "127.0.0.1:7000";
    o->beats = 3;
    o->run_ms = 60000;
    for (i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) usage();
        i++;
        if (!strcmp(f, "-addr")) o->addr = v;
        else if (!strcmp(f, "-device")) o->device = v;
        else if (!strcmp(f, "-secret")) o->secret = v;
        else if (!strcmp(f, "-secret-file")) o->secret_file = v;
        else if (!strcmp(f, "-key")) o->key_hex = v;
        else if (!strcmp(f, "-skew")) o->skew_s = strtol(v, NULL, 10);
        else if (!strcmp(f, "-beats")) o->beats = strtol(v, NULL, 10);
        else if (!strcmp(f, "-run-ms")) o->run_ms = strtol(v, NULL, 10);
        else if (!strcmp(f, "-hb-min")) o->hb_min_s = strtol(v, NULL, 10);
        else if (!strcmp(f, "-app")) o->app = v;
        else if (!strcmp(f, "-version")) o->version = v;
        else if (!strcmp(f, "-control")) o->control = v;
        else usage();
    }
    if (o->device == NULL || (o->secret == NULL && o->secret_file == NULL && o->key_hex == NULL)) usage();
}

static int dial(const char *addr)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, one = 1;
    size_t hl;
    if (colon == NULL || (hl = (size_t)(colon - addr)) >= sizeof host) return -1;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0) return -1;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    /* Frames are small and latency matters more than packet count. */
    if (fd >= 0) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int load_secret(const options *o, uint8_t *buf, size_t *len, uint8_t key[TGP_KEY_SIZE], int *has_key)
{
    *has_key = 0;
    if (o->key_hex != NULL) {
        size_t i;
        if (strlen(o->key_hex) != 2 * TGP_KEY_SIZE) return -1;
        for (i = 0; i < TGP_KEY_SIZE; i++) {
            unsigned v;
            if (sscanf(o->key_hex + 2 * i, "%2x", &v) != 1) return -1;
            key[i] = (uint8_t)v;
        }
        *has_key = 1;
        return 0;
    }
    if (o->secret != NULL) {
        *len = strlen(o->secret);
        if (*len > SECRET_MAX) return -1;
        memcpy(buf, o->secret, *len);
        return 0;
    } else {
        FILE *f = fopen(o->secret_file, "rb");
        if (f == NULL) return -1;
        *len = fread(buf, 1, SECRET_MAX, f);
        fclose(f);
        while (*len > 0 && (buf[*len - 1] == '\n' || buf[*len - 1] == '\r')) (*len)--;
        return *len > 0 ? 0 : -1;
    }
}

static int op_code(const char *s)
{
    if (!strcmp(s, "start")) return TGP_OP_START;
    if (!strcmp(s, "stop")) return TGP_OP_STOP;
    if (!strcmp(s, "restart")) return TGP_OP_RESTART;
    if (!strcmp(s, "status")) return TGP_OP_STATUS;
    return 0;
}

/* run_control sends "SVC:OP[:ARG]" and waits for its answer. */
static int run_control(tgp_ctx *ctx, const char *spec)
{
    char buf[256];
    char *op, *arg;
    const char *args[1];
    tgp_control c;
    uint16_t seq;
    int rc;
    if (strlen(spec) >= sizeof buf) return TGP_E_ARG;
    strcpy(buf, spec);
    op = strchr(buf, ':');
    if (op == NULL) return TGP_E_ARG;
    *op++ = '\0';
    arg = strchr(op, ':');
    if (arg != NULL) *arg++ = '\0';
    memset(&c, 0, sizeof c);
    c.service_id = buf;
    c.op = (uint8_t)op_code(op);
    if (c.op == 0) return TGP_E_ARG;
    if (arg != NULL) {
        args[0] = arg;
        c.args = args;
        c.nargs = 1;
    }
    rc = tgp_send_control(ctx, &c, &seq);
    if (rc == 0) rc = tgp_wait(ctx, seq, CONTROL_WAIT_MS);
    return rc;
}

int main(int argc, char **argv)
{
    static tgp_ctx ctx;                 /* ≈1.6 KiB: static, not on the stack */
    static uint8_t rx[TGP_RX_BUF_SIZE]; /* the 4 KiB receive buffer */
    options o;
    terminal t;
    tgp_config cfg;
    tgp_callbacks cb;
    tgp_backoff backoff;
    uint8_t secret[SECRET_MAX], key[TGP_KEY_SIZE];
    size_t secret_len = 0;
    int has_key, rc;
    uint64_t start, live_since;
    uint32_t rnd = 0;
    const tgp_end *end;

    setvbuf(stdout, NULL, _IOLBF, 0);
    parse(argc, argv, &o);
    if (load_secret(&o, secret, &secret_len, key, &has_key) != 0) {
        fprintf(stderr, "cannot read the fleet secret or key\n");
        return EXIT_FAILED;
    }
    memset(&t, 0, sizeof t);
    t.skew_ms = (int64_t)o.skew_s * MS_PER_S;
    t.urandom = open("/dev/urandom", O_RDONLY);
    memset(&cfg, 0, sizeof cfg);
    cfg.device_id = o.device;
    cfg.fw = "posix-1.0";
    cfg.model = "posix";
    cfg.fleet_secret = secret;
    cfg.fleet_secret_len = secret_len;
    cfg.device_key = has_key ? key : NULL;
    cfg.hb_min_s = (uint32_t)(o.hb_min_s > 0 ? o.hb_min_s : 0);
    memset(&cb, 0, sizeof cb);
    cb.user = &t;
    cb.send = t_send;
    cb.recv = t_recv;
    cb.now_ms = t_now;
    cb.unix_ms = t_unix;
    cb.random = t_random;
    cb.on_response = on_response;
    cb.on_push = on_push;
    memset(&backoff, 0, sizeof backoff);

    printf("sizeof(tgp_ctx)=%zu rx=%u\n", sizeof ctx, (unsigned)sizeof rx);
    t.fd = dial(o.addr);
    if (t.fd < 0 || t.urandom < 0) {
        printf("ended result=%d connect failed\n", TGP_E_IO);
        return EXIT_FAILED;
    }
    printf("connected addr=%s device=%s skew_s=%ld\n", o.addr, o.device, o.skew_s);
    rc = tgp_init(&ctx, &cfg, &cb, rx, sizeof rx);
    if (rc == 0) rc = tgp_login(&ctx);
    if (tgp_challenged(&ctx)) printf("challenge clock_off_by_s=%ld retried\n", o.skew_s);
    start = live_since = t_now(&t);
    if (rc == 0) {
        printf("login ok session_id=%llu hb_interval_ms=%u clock_offset_ms=%lld\n",
               (unsigned long long)tgp_session_id(&ctx), tgp_hb_interval_ms(&ctx),
               (long long)tgp_clock_offset_ms(&ctx));
        if (o.app != NULL) {
            tgp_upgrade_query q;
            uint16_t seq;
            memset(&q, 0, sizeof q);
            q.app_id = o.app;
            q.version = o.version != NULL ? o.version : "0";
            q.launch = 1;
            rc = tgp_send_upgrade_query(&ctx, &q, &seq);
            if (rc == 0) rc = tgp_wait(&ctx, seq, QUERY_WAIT_MS);
        }
        if (rc == 0 && o.control != NULL) rc = run_control(&ctx, o.control);
        while (rc == 0 && t.acks < (unsigned long)o.beats && t_now(&t) - start < (uint64_t)o.run_ms) {
            rc = tgp_poll(&ctx, POLL_SLICE_MS);
        }
        if (rc == 0) {
            uint16_t seq;
            if (tgp_bye(&ctx, "done", &seq) == 0) (void)tgp_wait(&ctx, seq, BYE_WAIT_MS);
            printf("done heartbeats=%u\n", t.acks);
            close(t.fd);
            return 0;
        }
    }
    end = tgp_end_reason(&ctx);
    if (end->result == TGP_E_GOAWAY) {
        printf("goaway code=%u message=%s retry_after_ms=%llu\n", end->code, end->message,
               (unsigned long long)end->retry_after_ms);
    }
    printf("ended result=%d code=%u message=%s\n", rc, end->code, end->message);
    (void)t_random(&t, (uint8_t *)&rnd, sizeof rnd);
    /* A session that was live counts its length (at least 1 ms); a failed
     * login counts 0. */
    printf("backoff wait_ms=%u\n",
           tgp_backoff_next(&backoff, end, tgp_session_id(&ctx) != 0 ? t_now(&t) - live_since + 1 : 0, rnd));
    close(t.fd);
    return end->result == TGP_E_GOAWAY ? EXIT_GOAWAY : EXIT_FAILED;
}
