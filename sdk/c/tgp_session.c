/*
 * tgp_session.c — one TGP/1 session (docs/protocol.md §3, §6–§8, §13, §18):
 * HELLO and the clock challenge, tagging and verifying frames, the
 * heartbeat schedule, pipelined requests and pushes.
 */
#include "tgp.h"
#include "tgp_internal.h"

#include <string.h>

/* Timing of §6, §7 and §13, in milliseconds or seconds as named. */
#define HELLO_TIMEOUT_MS    10000u /* the server's default hello_timeout */
#define HB_MIN_S            10u    /* hb_interval_s clamp */
#define HB_MAX_S            600u
#define HB_DEFAULT_S        30u
#define ACK_WAIT_MAX_MS     30000u /* ack deadline: min(interval, 30 s) */
#define FIRST_BEAT_PERMILLE 500u   /* first beat in [0.5, 1.0] × interval */
#define NEXT_BEAT_PERMILLE  900u   /* later ones in [0.9, 1.0] × interval */
#define PERMILLE            1000u
#define MS_PER_S            MS_PER_SECOND
#define HELLO_SEQ           0u     /* HELLO is seq 0, its one retry seq 1 */

/* MessagePack array headers a body may start with (§2). */
#define MP_FIXARRAY_MASK 0xf0u
#define MP_FIXARRAY      0x90u
#define MP_FIXARRAY_2    0x92u
#define MP_ARRAY16       0xdcu
#define MP_ARRAY32       0xddu

/* Push types (§3). */
#define PUSH_FIRST 0x40u
#define PUSH_LAST  0x5Fu
#define REQUEST_LAST 0x3Fu

/* Each MAC label is followed by 0x00; sizeof includes the terminator. */
static const char LABEL_HELLO[] = "TGP1 hello";
static const char LABEL_HELLO_OK[] = "TGP1 hello ok";
static const char LABEL_SESSION[] = "TGP1 session";
static const uint8_t ZERO = 0;

static uint64_t now(const tgp_ctx *ctx) { return ctx->cb->now_ms(ctx->cb->user); }

/* offset is server − terminal clock; both are ms since 1970, far below
 * 2^63, so the signed difference cannot overflow. */
static int64_t offset(const tgp_ctx *ctx, uint64_t server_ms)
{
    const uint64_t sane = (uint64_t)INT64_MAX / 2u;
    uint64_t local = ctx->cb->unix_ms(ctx->cb->user);
    if (server_ms > sane || local > sane) return 0;
    return (int64_t)server_ms - (int64_t)local;
}

/* ---- session end ---- */

static int finish(tgp_ctx *ctx, int result, uint8_t code, const tgp_bytes *msg, uint64_t retry_after_ms)
{
    size_t n = 0;
    if (ctx->state == TGP_ST_CLOSED) return ctx->end.result; /* the first cause wins */
    ctx->state = TGP_ST_CLOSED;
    /* Keys are useless after the session and must not linger in RAM. */
    tgp_wipe(ctx->ks, sizeof ctx->ks);
    tgp_wipe(ctx->kdev, sizeof ctx->kdev);
    ctx->end.result = result;
    ctx->end.code = code;
    ctx->end.retry_after_ms = retry_after_ms;
    if (msg != NULL && msg->p != NULL) {
        n = msg->len < TGP_END_MSG_SIZE - 1 ? msg->len : TGP_END_MSG_SIZE - 1;
        memcpy(ctx->end.message, msg->p, n);
    }
    ctx->end.message[n] = '\0';
    return result;
}

/* ---- setup ---- */

static int valid_device_id(const char *id)
{
    size_t n = 0;
    if (id == NULL) return 0;
    for (; id[n] != '\0'; n++) {
        char c = id[n];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok || n >= TGP_MAX_ID) return 0;
    }
    return n > 0;
}

int tgp_init(tgp_ctx *ctx, const tgp_config *cfg, const tgp_callbacks *cb, uint8_t *rx, size_t rx_cap)
{
    if (ctx == NULL || cfg == NULL || cb == NULL || rx == NULL || rx_cap < TGP_RX_BUF_SIZE ||
        cb->send == NULL || cb->recv == NULL || cb->now_ms == NULL || cb->unix_ms == NULL ||
        cb->random == NULL || !valid_device_id(cfg->device_id) ||
        tgp_strlen(cfg->fw) > TGP_MAX_FW || tgp_strlen(cfg->model) > TGP_MAX_FW ||
        (cfg->device_key == NULL && cfg->fleet_secret_len == 0)) {
        return TGP_E_ARG;
    }
    memset(ctx, 0, sizeof *ctx);
    ctx->cfg = cfg;
    ctx->cb = cb;
    tgp_decoder_init(&ctx->dec, rx, rx_cap);
    ctx->max_frame = TGP_MAX_FRAME;
    ctx->hb_interval_ms = HB_DEFAULT_S * MS_PER_S;
    if (cfg->device_key != NULL) {
        memcpy(ctx->kdev, cfg->device_key, TGP_KEY_SIZE);
        return 0;
    }
    return tgp_device_key(cb, cfg->fleet_secret, cfg->fleet_secret_len, cfg->device_id, ctx->kdev);
}

/* ---- randomness ---- */

static int rand32(tgp_ctx *ctx, uint32_t *v)
{
    uint8_t b[4];
    if (ctx->cb->random(ctx->cb->user, b, sizeof b) != 0) return TGP_E_RANDOM;
    *v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    return 0;
}

/* jitter returns a uniform point in [low‰ × d, d] (§13: fleets that
 * reconnected together must not beat in step). 32-bit arithmetic only:
 * a Cortex-M has no 64-bit divide, and d is at most 600 000 ms. */
static uint32_t jitter(tgp_ctx *ctx, uint32_t d, uint32_t low_permille)
{
    uint32_t lo = d / PERMILLE * low_permille + d % PERMILLE * low_permille / PERMILLE, r = 0;
    (void)rand32(ctx, &r); /* a failing source only loses the spread */
    return lo + r % (d - lo + 1u);
}

/* clamp_interval turns hb_interval_s into the interval in use: within
 * [hb_min_s, hb_max_s] of the config, never above the spec's 600 s (so
 * the result fits 32-bit milliseconds). */
static uint32_t clamp_interval(const tgp_ctx *ctx, uint64_t s)
{
    uint64_t hi = ctx->cfg->hb_max_s != 0 && ctx->cfg->hb_max_s < HB_MAX_S ? ctx->cfg->hb_max_s : HB_MAX_S;
    uint64_t lo = ctx->cfg->hb_min_s != 0 ? ctx->cfg->hb_min_s : HB_MIN_S;
    if (lo > hi) lo = hi;
    if (s < lo) s = lo;
    if (s > hi) s = hi;
    return (uint32_t)s * MS_PER_S;
}

/* ---- sending ---- */

/* send_frame adds header (and tag) around the body already encoded at
 * ctx->tx + TGP_HEADER_SIZE and sends the frame. */
static int send_frame(tgp_ctx *ctx, uint8_t type, uint16_t seq, size_t body_len, int tagged)
{
    size_t len = body_len + (tagged ? TGP_TAG_SIZE : 0u);
    uint8_t *f = ctx->tx;
    int rc;
    if (len > ctx->max_frame || TGP_HEADER_SIZE + len > sizeof ctx->tx) return TGP_E_TOO_LARGE;
    f[0] = TGP_MAGIC;
    f[1] = type;
    tgp_put_be16(f + 2, seq);
    tgp_put_be16(f + 4, (uint16_t)len);
    if (tagged) {
        rc = tgp_frame_tag(ctx->cb, ctx->ks, TGP_DIR_TERMINAL, ctx->out_n,
                           f, TGP_HEADER_SIZE + body_len, f + TGP_HEADER_SIZE + body_len);
        if (rc != 0) return rc;
        ctx->out_n++;
    }
    if (ctx->cb->send(ctx->cb->user, f, TGP_HEADER_SIZE + len) != 0) {
        /* A partial frame breaks the stream and the tag counter. */
        return finish(ctx, TGP_E_IO, 0, NULL, 0);
    }
    return 0;
}

static tgp_mw body_writer(tgp_ctx *ctx)
{
    tgp_mw w;
    tgp_mw_init(&w, ctx->tx + TGP_HEADER_SIZE, sizeof ctx->tx - TGP_HEADER_SIZE - TGP_TAG_SIZE);
    return w;
}

/* pending_index returns the slot of the outstanding request seq, or -1. */
static int pending_index(const tgp_ctx *ctx, uint16_t seq)
{
    int i;
    for (i = 0; i < (int)TGP_MAX_INFLIGHT; i++) {
        if (ctx->pending[i].resp_type != 0 && ctx->pending[i].seq == seq) return i;
    }
    return -1;
}

/* reserve takes a free slot and a seq no outstanding request holds.
 * Applications get TGP_MAX_INFLIGHT - 1 slots: the last one is the
 * heartbeat's, so a burst of slow requests never starves it into an ack
 * timeout, and the server's 16-outstanding limit is never hit. */
static int reserve(tgp_ctx *ctx, uint8_t type, int heartbeat, uint16_t *seq)
{
    unsigned i, used = 0;
    tgp_pending *free_slot = NULL;
    for (i = 0; i < TGP_MAX_INFLIGHT; i++) {
        if (ctx->pending[i].resp_type != 0) used++;
        else if (free_slot == NULL) free_slot = &ctx->pending[i];
    }
    if (free_slot == NULL || (!heartbeat && used + (ctx->hb_outstanding ? 0u : 1u) >= TGP_MAX_INFLIGHT)) {
        return TGP_E_BUSY;
    }
    while (pending_index(ctx, ctx->next_seq) >= 0) ctx->next_seq++; /* ends within 16 steps */
    *seq = ctx->next_seq++;
    free_slot->seq = *seq;
    free_slot->resp_type = (uint8_t)(type | TGP_RESPONSE_BIT);
    return 0;
}

static int send_reserved(tgp_ctx *ctx, uint8_t type, int heartbeat, tgp_mw *w, uint16_t *seq)
{
    int rc, i;
    if (ctx->state != TGP_ST_LIVE) return TGP_E_STATE;
    if (w->err) return TGP_E_TOO_LARGE;
    rc = reserve(ctx, type, heartbeat, seq);
    if (rc != 0) return rc;
    rc = send_frame(ctx, type, *seq, w->len, 1);
    if (rc != 0 && (i = pending_index(ctx, *seq)) >= 0) ctx->pending[i].resp_type = 0;
    return rc;
}

int tgp_send_request(tgp_ctx *ctx, uint8_t type, tgp_encode_fn enc, const void *msg, uint16_t *seq)
{
    tgp_mw w;
    uint16_t ignored;
    int rc;
    if (ctx->state != TGP_ST_LIVE) return TGP_E_STATE;
    w = body_writer(ctx);
    rc = enc(&w, msg); /* TGP_E_ARG (e.g. more than 8 args) or TGP_E_TOO_LARGE */
    if (rc != 0) return rc;
    return send_reserved(ctx, type, 0, &w, seq != NULL ? seq : &ignored);
}

int tgp_heartbeat(tgp_ctx *ctx)
{
    tgp_mw w;
    tgp_mw status;
    int rc;
    if (ctx->state != TGP_ST_LIVE) return TGP_E_STATE;
    if (ctx->hb_outstanding) return TGP_E_BUSY;
    w = body_writer(ctx);
    /* [group_version, status?]: the status map is written after a
     * placeholder fixarray(1) header, which becomes fixarray(2) if the
     * callback wrote one (both are one byte, so nothing moves). */
    tgp_mw_array(&w, 1);
    tgp_mw_uint(&w, ctx->group_version);
    if (ctx->cb->status != NULL) {
        tgp_mw_init(&status, w.buf + w.len, w.cap - w.len);
        if (ctx->cb->status(ctx->cb->user, &status) == 1 && !status.err && status.len > 0) {
            w.len += status.len;
            w.buf[0] = MP_FIXARRAY_2;
        }
    }
    rc = send_reserved(ctx, TGP_T_HEARTBEAT, 1, &w, &ctx->hb_seq);
    if (rc != 0) return rc;
    ctx->hb_outstanding = 1;
    ctx->hb_sent_ms = now(ctx);
    {
        uint32_t wait = ctx->hb_interval_ms < ACK_WAIT_MAX_MS ? ctx->hb_interval_ms : ACK_WAIT_MAX_MS;
        ctx->hb_deadline_ms = ctx->hb_sent_ms + wait;
    }
    return 0;
}

static int encode_bye(tgp_mw *w, const void *reason)
{
    const char *r = (const char *)reason;
    if (r == NULL || r[0] == '\0') {
        tgp_mw_array(w, 0);
    } else {
        tgp_mw_array(w, 1);
        tgp_mw_cstr(w, r);
    }
    return w->err ? TGP_E_TOO_LARGE : 0;
}

int tgp_bye(tgp_ctx *ctx, const char *reason, uint16_t *seq)
{
    return tgp_send_request(ctx, TGP_T_BYE, encode_bye, reason, seq);
}

/* ---- receiving ---- */

/* read_frame receives until a whole frame is buffered (1), the deadline
 * passes (0) or the transport fails (< 0). */
static int read_frame(tgp_ctx *ctx, uint64_t deadline)
{
    for (;;) {
        size_t room;
        uint8_t *dst = tgp_decoder_dst(&ctx->dec, &room);
        uint64_t t = now(ctx);
        uint64_t wait = deadline > t ? deadline - t : 0;
        long n;
        int rc;
        if (room == 0) return 1; /* a frame is ready already */
        n = ctx->cb->recv(ctx->cb->user, dst, room, (uint32_t)(wait > UINT32_MAX ? UINT32_MAX : wait));
        if (n < 0) return finish(ctx, TGP_E_IO, 0, NULL, 0);
        if (n == 0) {
            if (now(ctx) >= deadline) return 0;
            continue;
        }
        rc = tgp_decoder_commit(&ctx->dec, (size_t)n);
        if (rc < 0) return finish(ctx, rc, 0, NULL, 0);
        if (rc == TGP_FRAME_READY) return 1;
    }
}

/* ---- HELLO (§6, §7) ---- */

static int send_hello(tgp_ctx *ctx, uint64_t ts, uint16_t seq)
{
    const tgp_config *c = ctx->cfg;
    uint8_t be_ts[8];
    tgp_iov parts[8];
    tgp_mw w;
    int rc;
    tgp_put_be64(be_ts, ts);
    parts[0].data = LABEL_HELLO;    parts[0].len = sizeof LABEL_HELLO;
    parts[1].data = c->device_id;   parts[1].len = tgp_strlen(c->device_id);
    parts[2].data = &ZERO;          parts[2].len = 1;
    parts[3].data = be_ts;          parts[3].len = sizeof be_ts;
    parts[4].data = ctx->nonce;     parts[4].len = TGP_NONCE_SIZE;
    parts[5].data = c->fw;          parts[5].len = tgp_strlen(c->fw);
    parts[6].data = &ZERO;          parts[6].len = 1;
    parts[7].data = c->model;       parts[7].len = tgp_strlen(c->model);
    rc = tgp_hmac_parts(ctx->cb, ctx->kdev, TGP_KEY_SIZE, parts, 8, ctx->hello_mac);
    if (rc != 0) return rc;
    w = body_writer(ctx);
    tgp_mw_array(&w, c->attrs != NULL ? 7u : 6u);
    tgp_mw_cstr(&w, c->device_id);
    tgp_mw_uint(&w, ts);
    tgp_mw_bin(&w, ctx->nonce, TGP_NONCE_SIZE);
    tgp_mw_bin(&w, ctx->hello_mac, TGP_KEY_SIZE);
    tgp_mw_cstr(&w, c->fw);
    tgp_mw_cstr(&w, c->model);
    if (c->attrs != NULL) tgp_mw_raw(&w, c->attrs, c->attrs_len);
    if (w.err) return TGP_E_TOO_LARGE;
    return send_frame(ctx, TGP_T_HELLO, seq, w.len, 0);
}

/* hello_ok checks server_mac and derives the session (§6). */
static int hello_ok(tgp_ctx *ctx, const tgp_hello_ok *ok)
{
    uint8_t be_sid[8], be_time[8], want[TGP_KEY_SIZE];
    tgp_iov parts[4];
    int rc;
    tgp_put_be64(be_sid, ok->session_id);
    tgp_put_be64(be_time, ok->server_time_ms);
    parts[0].data = LABEL_HELLO_OK;  parts[0].len = sizeof LABEL_HELLO_OK;
    parts[1].data = ctx->hello_mac; parts[1].len = TGP_KEY_SIZE;
    parts[2].data = be_sid;         parts[2].len = sizeof be_sid;
    parts[3].data = be_time;        parts[3].len = sizeof be_time;
    rc = tgp_hmac_parts(ctx->cb, ctx->kdev, TGP_KEY_SIZE, parts, 4, want);
    if (rc != 0) return finish(ctx, rc, 0, NULL, 0);
    if (ok->server_mac.len != TGP_KEY_SIZE || !tgp_ct_equal(want, ok->server_mac.p, TGP_KEY_SIZE)) {
        return finish(ctx, TGP_E_SERVER_MAC, 0, NULL, 0);
    }
    /* Only now is server_time_ms trustworthy. */
    ctx->clock_offset_ms = offset(ctx, ok->server_time_ms);
    parts[0].data = LABEL_SESSION;  parts[0].len = sizeof LABEL_SESSION;
    parts[1].data = ctx->nonce;     parts[1].len = TGP_NONCE_SIZE;
    parts[2].data = be_sid;         parts[2].len = sizeof be_sid;
    rc = tgp_hmac_parts(ctx->cb, ctx->kdev, TGP_KEY_SIZE, parts, 3, ctx->ks);
    if (rc != 0) return finish(ctx, rc, 0, NULL, 0);
    ctx->session_id = ok->session_id;
    /* max_frame is at least 4096 (its floor); the terminal keeps its own
     * frames within 4096 even when the server announces more, as the
     * protocol guide's client checklist asks, so ctx->max_frame stays. */
    tgp_decoder_tagged(&ctx->dec);
    ctx->hb_interval_ms = clamp_interval(ctx, ok->hb_interval_s);
    ctx->hb_next_ms = now(ctx) + jitter(ctx, ctx->hb_interval_ms, FIRST_BEAT_PERMILLE);
    ctx->state = TGP_ST_LIVE;
    return 0;
}

/* error_frame ends the session with an ERROR or GOAWAY body. */
static int error_frame(tgp_ctx *ctx, int result, const uint8_t *body, size_t len)
{
    tgp_goaway g;
    if (tgp_decode_goaway(body, len, &g) != 0) return finish(ctx, TGP_E_MALFORMED, 0, NULL, 0);
    return finish(ctx, result, g.code, &g.message, g.retry_after_ms);
}

int tgp_login(tgp_ctx *ctx)
{
    uint32_t timeout = ctx->cfg->hello_timeout_ms ? ctx->cfg->hello_timeout_ms : HELLO_TIMEOUT_MS;
    uint64_t deadline = now(ctx) + timeout;
    uint64_t ts = tgp_ms_to_s(ctx->cb->unix_ms(ctx->cb->user));
    uint16_t attempt;
    int rc;
    if (ctx->state != TGP_ST_IDLE) return TGP_E_STATE;
    ctx->state = TGP_ST_HELLO;
    if (ctx->cb->random(ctx->cb->user, ctx->nonce, TGP_NONCE_SIZE) != 0) return finish(ctx, TGP_E_RANDOM, 0, NULL, 0);
    for (attempt = HELLO_SEQ;; attempt++) {
        tgp_frame f;
        tgp_hello_ok ok;
        rc = send_hello(ctx, ts, attempt);
        if (rc != 0) return finish(ctx, rc, 0, NULL, 0);
        rc = read_frame(ctx, deadline);
        if (rc < 0) return rc;
        if (rc == 0) return finish(ctx, TGP_E_TIMEOUT, 0, NULL, 0);
        tgp_decoder_frame(&ctx->dec, &f);
        if (f.type == TGP_T_ERROR) return error_frame(ctx, TGP_E_ERROR_FRAME, f.body, f.len);
        if (f.type != (TGP_T_HELLO | TGP_RESPONSE_BIT) || tgp_decode_hello_ok(f.body, f.len, &ok) != 0) {
            return finish(ctx, TGP_E_MALFORMED, 0, NULL, 0);
        }
        if (ok.st.code == TGP_S_OK) {
            rc = hello_ok(ctx, &ok);
            tgp_decoder_next(&ctx->dec);
            ctx->next_seq = (uint16_t)(attempt + 1u);
            return rc;
        }
        if (ok.st.code == TGP_S_EXPIRED && ok.has_challenge && attempt == HELLO_SEQ) {
            /* §7: the challenge proves freshness; the refusal is not
             * authenticated, so the terminal's clock is left alone and
             * server_time_ms only builds the retry. */
            memcpy(ctx->nonce, ok.challenge.p, TGP_NONCE_SIZE);
            ts = tgp_ms_to_s(ok.server_time_ms);
            ctx->challenged = 1;
            tgp_decoder_next(&ctx->dec);
            continue;
        }
        return finish(ctx, TGP_E_REFUSED, ok.st.code, &ok.st.message, ok.st.retry_after_ms);
    }
}

/* ---- live session ---- */

static int is_array_start(const uint8_t *b, size_t len)
{
    return len > 0 && ((b[0] & MP_FIXARRAY_MASK) == MP_FIXARRAY || b[0] == MP_ARRAY16 || b[0] == MP_ARRAY32);
}

static int heartbeat_ack(tgp_ctx *ctx, const uint8_t *body, size_t len)
{
    tgp_heartbeat_ack a;
    uint32_t wait;
    uint64_t t = now(ctx);
    ctx->hb_outstanding = 0;
    if (tgp_decode_heartbeat_ack(body, len, &a) != 0) return finish(ctx, TGP_E_MALFORMED, 0, NULL, 0);
    if (a.st.code == TGP_S_OK) {
        ctx->hb_interval_ms = clamp_interval(ctx, a.hb_interval_s);
        ctx->flags = (uint32_t)a.flags;
        ctx->clock_offset_ms = offset(ctx, a.server_time_ms);
        ctx->heartbeats++;
    }
    wait = jitter(ctx, ctx->hb_interval_ms, NEXT_BEAT_PERMILLE);
    /* A refused beat still proves the server alive: beat again, no sooner
     * than it asked. */
    if (a.st.code != TGP_S_OK && a.st.retry_after_ms > wait) {
        wait = a.st.retry_after_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)a.st.retry_after_ms;
    }
    ctx->hb_next_ms = ctx->hb_sent_ms + wait;
    if (ctx->hb_next_ms < t) ctx->hb_next_ms = t;
    return 0;
}

/* group_version_of keeps the heartbeat's group_version current from a
 * GROUP_CHANGE_ACK, GROUP_LIST_ACK or GROUP_SYNC. */
static void group_version_of(tgp_ctx *ctx, uint8_t type, const uint8_t *body, size_t len)
{
    tgp_groups_msg g;
    int rc = type == TGP_T_GROUP_SYNC ? tgp_decode_group_sync(body, len, &g)
                                      : tgp_decode_groups_ack(body, len, &g);
    if (rc == 0 && g.st.code == TGP_S_OK) ctx->group_version = g.group_version;
}

static int push(tgp_ctx *ctx, const tgp_msg *m)
{
    tgp_mw w;
    if (m->type != TGP_T_UPGRADE_NOTICE && m->type != TGP_T_GROUP_SYNC && m->type != TGP_T_GROUP_MESSAGE) {
        return 0; /* unknown push: ignored, not acked (§3.3) */
    }
    if (m->type == TGP_T_GROUP_SYNC) group_version_of(ctx, m->type, m->body, m->len);
    if (ctx->cb->on_push != NULL) ctx->cb->on_push(ctx->cb->user, m);
    if (m->type == TGP_T_GROUP_MESSAGE) return 0;
    w = body_writer(ctx);
    tgp_mw_array(&w, 1);
    tgp_mw_uint(&w, TGP_S_OK);
    return send_frame(ctx, (uint8_t)(m->type | TGP_RESPONSE_BIT), m->seq, w.len, 1);
}

static int response(tgp_ctx *ctx, const tgp_msg *m)
{
    int i = pending_index(ctx, m->seq);
    if (i < 0) return 0; /* nothing waits for it (e.g. a given-up wait) */
    if (ctx->pending[i].resp_type != m->type) return finish(ctx, TGP_E_MALFORMED, 0, NULL, 0);
    ctx->pending[i].resp_type = 0;
    if (m->type == (TGP_T_HEARTBEAT | TGP_RESPONSE_BIT) && ctx->hb_outstanding && m->seq == ctx->hb_seq) {
        if (heartbeat_ack(ctx, m->body, m->len) != 0) return ctx->end.result;
    } else if (m->type == (TGP_T_GROUP_CHANGE | TGP_RESPONSE_BIT) || m->type == (TGP_T_GROUP_LIST | TGP_RESPONSE_BIT)) {
        group_version_of(ctx, m->type, m->body, m->len);
    }
    if (ctx->cb->on_response != NULL) ctx->cb->on_response(ctx->cb->user, m);
    return 0;
}

/* handle verifies and dispatches the buffered frame (§3, §8). */
static int handle(tgp_ctx *ctx)
{
    tgp_frame f;
    tgp_msg m;
    uint8_t tag[TGP_TAG_SIZE];
    uint8_t t;
    int rc;
    tgp_decoder_frame(&ctx->dec, &f);
    if (f.len < TGP_TAG_SIZE + 1u) return finish(ctx, TGP_E_BAD_TAG, 0, NULL, 0);
    m.type = t = f.type;
    m.seq = f.seq;
    m.body = f.body;
    m.len = f.len - TGP_TAG_SIZE;
    rc = tgp_frame_tag2(ctx->cb, ctx->ks, TGP_DIR_SERVER, ctx->in_n, f.header, m.body, m.len, tag);
    if (rc != 0) return finish(ctx, rc, 0, NULL, 0);
    if (!tgp_ct_equal(tag, m.body + m.len, TGP_TAG_SIZE)) return finish(ctx, TGP_E_BAD_TAG, 0, NULL, 0);
    ctx->in_n++;
    if (!is_array_start(m.body, m.len)) return finish(ctx, TGP_E_MALFORMED, 0, NULL, 0);
    if (t == TGP_T_ERROR) return error_frame(ctx, TGP_E_ERROR_FRAME, m.body, m.len);
    if (t == TGP_T_GOAWAY) return error_frame(ctx, TGP_E_GOAWAY, m.body, m.len);
    if (t >= PUSH_FIRST && t <= PUSH_LAST) rc = push(ctx, &m);
    else if ((t & TGP_RESPONSE_BIT) && (t & ~TGP_RESPONSE_BIT) >= TGP_T_HELLO && (t & ~TGP_RESPONSE_BIT) <= REQUEST_LAST) rc = response(ctx, &m);
    else rc = finish(ctx, TGP_E_MALFORMED, 0, NULL, 0);
    tgp_decoder_next(&ctx->dec);
    return rc;
}

/* tick sends a due heartbeat and enforces the ack deadline (§13). */
static int tick(tgp_ctx *ctx)
{
    uint64_t t = now(ctx);
    if (ctx->hb_outstanding) {
        if (t >= ctx->hb_deadline_ms) return finish(ctx, TGP_E_ACK_TIMEOUT, 0, NULL, 0);
        return 0;
    }
    if (t >= ctx->hb_next_ms) {
        int rc = tgp_heartbeat(ctx);
        /* BUSY cannot happen (the heartbeat has its own slot). */
        if (rc != 0 && ctx->state == TGP_ST_CLOSED) return rc;
    }
    return 0;
}

/* next_event is when tick has something to do. */
static uint64_t next_event(const tgp_ctx *ctx)
{
    return ctx->hb_outstanding ? ctx->hb_deadline_ms : ctx->hb_next_ms;
}

/* run handles frames until the deadline, or until seq's response arrived
 * when wait_seq is set. Frames already received are handled even when
 * the deadline has passed, so tgp_poll(ctx, 0) drains what is there. */
static int run(tgp_ctx *ctx, uint64_t deadline, int wait_seq, uint16_t seq)
{
    for (;;) {
        uint64_t until;
        int rc;
        if (ctx->state != TGP_ST_LIVE) return ctx->state == TGP_ST_CLOSED ? ctx->end.result : TGP_E_STATE;
        rc = tick(ctx);
        if (rc != 0) return rc;
        if (wait_seq && pending_index(ctx, seq) < 0) return 0;
        until = next_event(ctx) < deadline ? next_event(ctx) : deadline;
        rc = read_frame(ctx, until);
        if (rc < 0) return rc;
        if (rc == 1) {
            rc = handle(ctx);
            if (rc != 0) return rc;
            continue;
        }
        if (now(ctx) >= deadline) {
            if (wait_seq && pending_index(ctx, seq) >= 0) return TGP_E_TIMEOUT;
            return 0;
        }
    }
}

int tgp_poll(tgp_ctx *ctx, uint32_t max_wait_ms)
{
    return run(ctx, now(ctx) + max_wait_ms, 0, 0);
}

int tgp_wait(tgp_ctx *ctx, uint16_t seq, uint32_t timeout_ms)
{
    return run(ctx, now(ctx) + timeout_ms, 1, seq);
}

/* ---- accessors ---- */

const tgp_end *tgp_end_reason(const tgp_ctx *ctx) { return &ctx->end; }
uint64_t tgp_session_id(const tgp_ctx *ctx) { return ctx->session_id; }
int64_t tgp_clock_offset_ms(const tgp_ctx *ctx) { return ctx->clock_offset_ms; }
uint32_t tgp_hb_interval_ms(const tgp_ctx *ctx) { return ctx->hb_interval_ms; }
uint32_t tgp_flags(const tgp_ctx *ctx) { return ctx->flags; }
int tgp_challenged(const tgp_ctx *ctx) { return ctx->challenged; }
void tgp_set_group_version(tgp_ctx *ctx, uint64_t v) { ctx->group_version = v; }

uint64_t tgp_server_time_ms(const tgp_ctx *ctx)
{
    return ctx->cb->unix_ms(ctx->cb->user) + (uint64_t)ctx->clock_offset_ms;
}
