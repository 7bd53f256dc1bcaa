/*
 * tgp_messages.c — encoders and decoders of TGP/1 message bodies
 * (docs/protocol.md §6–§18). Pure functions over byte buffers: the fuzz
 * target drives the decoders directly.
 *
 * Decoders follow §2: a missing required element, a wrong type or a value
 * out of bound is malformed; optional elements may be absent or nil;
 * elements past the ones defined are skipped (forward compatibility).
 */
#include "tgp.h"
#include "tgp_internal.h"

#include <string.h>

#define STATUS_MAX 255u    /* status codes are one byte on our side */
#define PAIR 2u            /* a membership is [group_id, role] */

/* ---- encoders ---- */

static int done(const tgp_mw *w) { return w->err ? TGP_E_TOO_LARGE : 0; }

/* opt_str writes s, or nil when s is NULL. */
static void opt_str(tgp_mw *w, const char *s)
{
    if (s == NULL) tgp_mw_nil(w);
    else tgp_mw_cstr(w, s);
}

int tgp_encode_control(tgp_mw *w, const tgp_control *m)
{
    /* Trailing optional elements are left out when unset, as the Go
     * reference does: [service_id, op, args?, timeout_ms?, request_id?]. */
    uint32_t n = 2, i;
    if (m->nargs > TGP_MAX_ARGS) return TGP_E_ARG;
    if (m->has_request_id) n = 5;
    else if (m->timeout_ms != 0) n = 4;
    else if (m->nargs > 0) n = 3;
    tgp_mw_array(w, n);
    tgp_mw_cstr(w, m->service_id);
    tgp_mw_uint(w, m->op);
    if (n >= 3) {
        tgp_mw_array(w, m->nargs);
        for (i = 0; i < m->nargs; i++) tgp_mw_cstr(w, m->args[i]);
    }
    if (n >= 4) {
        if (m->timeout_ms != 0) tgp_mw_uint(w, m->timeout_ms);
        else tgp_mw_nil(w);
    }
    if (n >= 5) tgp_mw_uint(w, m->request_id);
    return done(w);
}

int tgp_encode_upgrade_query(tgp_mw *w, const tgp_upgrade_query *m)
{
    tgp_mw_array(w, m->launch ? 3u : 2u);
    tgp_mw_cstr(w, m->app_id);
    tgp_mw_cstr(w, m->version);
    if (m->launch) tgp_mw_bool(w, 1);
    return done(w);
}

/* clip returns how many bytes of s (n long) fit max without cutting a
 * UTF-8 sequence: the server refuses invalid UTF-8 (as the Go reference
 * does, it backs up over continuation bytes 10xxxxxx). */
static size_t clip(const char *s, size_t n, size_t max)
{
    const unsigned char cont_mask = 0xC0u, cont = 0x80u;
    if (n <= max) return n;
    while (max > 0 && ((unsigned char)s[max] & cont_mask) == cont) max--;
    return max;
}

int tgp_encode_upgrade_report(tgp_mw *w, const tgp_upgrade_report *m)
{
    size_t n = tgp_strlen(m->message);
    tgp_mw_array(w, 6);
    tgp_mw_cstr(w, m->release_id);
    tgp_mw_uint(w, m->attempt);
    tgp_mw_uint(w, m->stage);
    tgp_mw_uint(w, m->progress);
    tgp_mw_uint(w, m->code);
    /* The server refuses a longer message; clip rather than lose the report. */
    tgp_mw_str(w, m->message, clip(m->message, n, TGP_MAX_MESSAGE));
    return done(w);
}

int tgp_encode_schedule_request(tgp_mw *w, const tgp_schedule_request *m)
{
    tgp_mw_array(w, 5);
    tgp_mw_cstr(w, m->campaign_id);
    tgp_mw_cstr(w, m->version);
    if (m->has_location) {
        tgp_mw_double(w, m->lat);
        tgp_mw_double(w, m->lon);
    } else {
        tgp_mw_nil(w);
        tgp_mw_nil(w);
    }
    tgp_mw_cstr(w, m->system_id);
    return done(w);
}

int tgp_encode_upgrade_check(tgp_mw *w, const tgp_upgrade_check *m)
{
    tgp_mw_array(w, 2);
    tgp_mw_cstr(w, m->reservation_id);
    tgp_mw_cstr(w, m->version);
    return done(w);
}

int tgp_encode_group_auth(tgp_mw *w, const tgp_group_auth *m)
{
    tgp_mw_array(w, 1);
    tgp_mw_cstr(w, m->group_id);
    return done(w);
}

int tgp_encode_group_change(tgp_mw *w, const tgp_group_change *m)
{
    tgp_mw_array(w, 5);
    tgp_mw_uint(w, m->request_id);
    tgp_mw_uint(w, m->op);
    opt_str(w, m->from);
    opt_str(w, m->to);
    if (m->grant == NULL) tgp_mw_nil(w);
    else tgp_mw_bin(w, m->grant, m->grant_len);
    return done(w);
}

int tgp_encode_group_list(tgp_mw *w, const void *unused)
{
    (void)unused;
    tgp_mw_array(w, 0);
    return done(w);
}

int tgp_encode_group_send(tgp_mw *w, const tgp_group_send *m)
{
    if (m->len > TGP_MAX_PAYLOAD) return TGP_E_ARG;
    tgp_mw_array(w, 2);
    tgp_mw_cstr(w, m->group_id);
    tgp_mw_bin(w, m->payload, m->len);
    return done(w);
}

/* ---- senders: adapters from the typed encoders to the generic one ---- */

#define SENDER(name, type, msgtype)                                                   \
    static int enc_##name(tgp_mw *w, const void *m) { return tgp_encode_##name(w, (const msgtype *)m); } \
    int tgp_send_##name(tgp_ctx *ctx, const msgtype *m, uint16_t *seq)                \
    {                                                                                  \
        return tgp_send_request(ctx, type, enc_##name, m, seq);                        \
    }

SENDER(control, TGP_T_CONTROL, tgp_control)
SENDER(upgrade_query, TGP_T_UPGRADE_QUERY, tgp_upgrade_query)
SENDER(upgrade_report, TGP_T_UPGRADE_REPORT, tgp_upgrade_report)
SENDER(schedule_request, TGP_T_SCHEDULE_REQUEST, tgp_schedule_request)
SENDER(upgrade_check, TGP_T_UPGRADE_CHECK, tgp_upgrade_check)
SENDER(group_auth, TGP_T_GROUP_AUTH, tgp_group_auth)
SENDER(group_change, TGP_T_GROUP_CHANGE, tgp_group_change)
SENDER(group_send, TGP_T_GROUP_SEND, tgp_group_send)

int tgp_send_group_list(tgp_ctx *ctx, uint16_t *seq)
{
    return tgp_send_request(ctx, TGP_T_GROUP_LIST, tgp_encode_group_list, NULL, seq);
}

/* ---- decoders ---- */

/* body opens the body array; *n is its element count. */
static int body(tgp_mr *r, const uint8_t *b, size_t len, uint32_t *n)
{
    tgp_mr_init(r, b, len);
    return tgp_mr_array(r, n);
}

/* end finishes a decode: skip what a newer server added, then nothing
 * may follow the array (§2). */
static int end(tgp_mr *r, uint32_t read, uint32_t n)
{
    if (read > n || tgp_mr_skip_rest(r, read, n) != 0 || r->err || r->p != r->end) return TGP_E_MALFORMED;
    return 0;
}

int tgp_read_status(tgp_mr *r, uint32_t *n, tgp_status *st)
{
    uint64_t code;
    memset(st, 0, sizeof *st);
    if (tgp_mr_array(r, n) != 0 || *n < 1 || tgp_mr_uint(r, &code) != 0 || code > STATUS_MAX) return -1;
    st->code = (uint8_t)code;
    if (code == TGP_S_OK) return 0;
    if (*n < 2 || tgp_mr_str(r, &st->message, TGP_MAX_MESSAGE) != 0) return -1;
    return 0;
}

/* refusal finishes a [status, message, retry_after_ms?] body. */
static int refusal(tgp_mr *r, uint32_t n, tgp_status *st)
{
    uint32_t read = 2;
    if (n > 2 && !tgp_mr_nil(r)) {
        if (tgp_mr_uint(r, &st->retry_after_ms) != 0) return TGP_E_MALFORMED;
    }
    if (n > 2) read = 3;
    return end(r, read, n);
}

/* open_ok starts decoding a response into out (size bytes, zeroed
 * first). It returns 1 when the status is OK and the body has at least
 * min elements, for the caller to read the fields; otherwise 0 with *rc
 * the decode's result: 0 for a well-formed refusal, TGP_E_MALFORMED. */
static int open_ok(tgp_mr *r, const uint8_t *b, size_t len, void *out, size_t size,
                   tgp_status *st, uint32_t *n, uint32_t min, int *rc)
{
    memset(out, 0, size);
    tgp_mr_init(r, b, len);
    *rc = TGP_E_MALFORMED;
    if (tgp_read_status(r, n, st) != 0) return 0;
    if (st->code != TGP_S_OK) {
        *rc = refusal(r, *n, st);
        return 0;
    }
    return *n >= min;
}

/* str / bin / uint read one required element, latching errors in r. */
static void str(tgp_mr *r, tgp_bytes *s, uint32_t max) { (void)tgp_mr_str(r, s, max); }
static void bin(tgp_mr *r, tgp_bytes *b, uint32_t max) { (void)tgp_mr_bin(r, b, max); }
static void uint_(tgp_mr *r, uint64_t *v) { (void)tgp_mr_uint(r, v); }

/* digest_bin reads a bin of exactly size bytes, or an empty one where the
 * field is unset (UPGRADE_CHECK_ACK's sha256 outside PROCEED). */
static void digest_bin(tgp_mr *r, tgp_bytes *b, uint32_t size)
{
    if (tgp_mr_bin(r, b, size) == 0 && b->len != 0 && b->len != size) r->err = TGP_MP_RANGE;
}

int tgp_decode_status(const uint8_t *b, size_t len, tgp_ack *out)
{
    tgp_mr r;
    uint32_t n;
    tgp_mr_init(&r, b, len);
    if (tgp_read_status(&r, &n, &out->st) != 0) return TGP_E_MALFORMED;
    if (out->st.code != TGP_S_OK) return refusal(&r, n, &out->st);
    return end(&r, 1, n);
}

int tgp_decode_hello_ok(const uint8_t *b, size_t len, tgp_hello_ok *out)
{
    tgp_mr r;
    uint32_t n;
    memset(out, 0, sizeof *out);
    tgp_mr_init(&r, b, len);
    if (tgp_read_status(&r, &n, &out->st) != 0) return TGP_E_MALFORMED;
    if (out->st.code == TGP_S_EXPIRED && n >= 4) {
        /* [12, message, server_time_ms, challenge] (§7) */
        uint_(&r, &out->server_time_ms);
        bin(&r, &out->challenge, TGP_NONCE_SIZE);
        if (r.err || out->challenge.len != TGP_NONCE_SIZE) return TGP_E_MALFORMED;
        out->has_challenge = 1;
        return end(&r, 4, n);
    }
    if (out->st.code != TGP_S_OK) return refusal(&r, n, &out->st);
    if (n < 6) return TGP_E_MALFORMED;
    uint_(&r, &out->session_id);
    uint_(&r, &out->server_time_ms);
    uint_(&r, &out->hb_interval_s);
    uint_(&r, &out->max_frame);
    bin(&r, &out->server_mac, TGP_KEY_SIZE);
    if (r.err || out->server_mac.len != TGP_KEY_SIZE) return TGP_E_MALFORMED;
    return end(&r, 6, n);
}

int tgp_decode_heartbeat_ack(const uint8_t *b, size_t len, tgp_heartbeat_ack *out)
{
    tgp_mr r;
    uint32_t n;
    int rc;
    if (!open_ok(&r, b, len, out, sizeof *out, &out->st, &n, 4, &rc)) return rc;
    uint_(&r, &out->server_time_ms);
    uint_(&r, &out->flags);
    uint_(&r, &out->hb_interval_s);
    return end(&r, 4, n);
}

int tgp_decode_control_ack(const uint8_t *b, size_t len, tgp_control_ack *out)
{
    tgp_mr r;
    uint32_t n, read;
    memset(out, 0, sizeof *out);
    tgp_mr_init(&r, b, len);
    if (tgp_read_status(&r, &n, &out->st) != 0) return TGP_E_MALFORMED;
    if (out->st.code == TGP_S_OK) {
        if (n < 6) return TGP_E_MALFORMED;
        read = 6;
    } else if (out->st.code == TGP_S_TIMEOUT && n >= 6) {
        /* [13, message, state, pid, exit_code, since_ms] (§15) */
        read = 6;
    } else {
        return refusal(&r, n, &out->st);
    }
    str(&r, &out->state, TGP_MAX_ID);
    uint_(&r, &out->pid);
    (void)tgp_mr_int(&r, &out->exit_code);
    uint_(&r, &out->since_ms);
    if (out->st.code == TGP_S_OK) str(&r, &out->output, TGP_MAX_OUTPUT);
    else read = 6; /* TIMEOUT has no output element */
    return end(&r, read, n);
}

static int offer(tgp_mr *r, tgp_offer *o)
{
    uint32_t n;
    if (tgp_mr_array(r, &n) != 0 || n < 8) return -1;
    str(r, &o->release_id, TGP_MAX_ID);
    str(r, &o->version, TGP_MAX_VERSION);
    str(r, &o->url, TGP_MAX_URL);
    digest_bin(r, &o->sha256, TGP_SHA256_SIZE);
    uint_(r, &o->size);
    (void)tgp_mr_bool(r, &o->mandatory);
    str(r, &o->notes, TGP_MAX_URL);
    bin(r, &o->release_sig, TGP_MAX_SIG);
    if (r->err || o->sha256.len != TGP_SHA256_SIZE) return -1;
    return tgp_mr_skip_rest(r, 8, n);
}

static int last_failure(tgp_mr *r, tgp_last_failure *f)
{
    uint32_t n;
    if (tgp_mr_array(r, &n) != 0 || n < 5) return -1;
    str(r, &f->release_id, TGP_MAX_ID);
    str(r, &f->version, TGP_MAX_VERSION);
    uint_(r, &f->code);
    str(r, &f->message, TGP_MAX_MESSAGE);
    uint_(r, &f->at_ms);
    return r->err ? -1 : tgp_mr_skip_rest(r, 5, n);
}

static int campaign(tgp_mr *r, tgp_campaign *c)
{
    uint32_t n;
    /* release_id (5th) was added after the first servers (protocol
     * changes 2026-12-04); an older server's 4-element campaign is read
     * with release_id empty. */
    if (tgp_mr_array(r, &n) != 0 || n < 4) return -1;
    str(r, &c->campaign_id, TGP_MAX_ID);
    str(r, &c->version, TGP_MAX_VERSION);
    uint_(r, &c->window_start_ms);
    uint_(r, &c->window_end_ms);
    if (n >= 5) str(r, &c->release_id, TGP_MAX_ID);
    return r->err ? -1 : tgp_mr_skip_rest(r, n >= 5 ? 5u : 4u, n);
}

int tgp_decode_upgrade_query_ack(const uint8_t *b, size_t len, tgp_upgrade_query_ack *out)
{
    tgp_mr r;
    uint32_t n;
    int rc;
    if (!open_ok(&r, b, len, out, sizeof *out, &out->st, &n, 4, &rc)) return rc;
    if (!tgp_mr_nil(&r)) {
        if (offer(&r, &out->offer) != 0) return TGP_E_MALFORMED;
        out->has_offer = 1;
    }
    if (!tgp_mr_nil(&r)) {
        if (last_failure(&r, &out->last_failure) != 0) return TGP_E_MALFORMED;
        out->has_last_failure = 1;
    }
    if (!tgp_mr_nil(&r)) {
        if (campaign(&r, &out->campaign) != 0) return TGP_E_MALFORMED;
        out->has_campaign = 1;
    }
    return end(&r, 4, n);
}

int tgp_decode_schedule_ack(const uint8_t *b, size_t len, tgp_schedule_ack *out)
{
    tgp_mr r;
    uint32_t n;
    int rc;
    if (!open_ok(&r, b, len, out, sizeof *out, &out->st, &n, 6, &rc)) return rc;
    str(&r, &out->reservation_id, TGP_MAX_ID);
    str(&r, &out->node_id, TGP_MAX_ID);
    str(&r, &out->url, TGP_MAX_URL);
    uint_(&r, &out->slot_start_ms);
    uint_(&r, &out->slot_end_ms);
    /* release_id is the 7th element since 2026-12-04; optional for older servers. */
    if (n >= 7) str(&r, &out->release_id, TGP_MAX_ID);
    return end(&r, n >= 7 ? 7u : 6u, n);
}

int tgp_decode_upgrade_check_ack(const uint8_t *b, size_t len, tgp_upgrade_check_ack *out)
{
    tgp_mr r;
    uint32_t n;
    int rc;
    if (!open_ok(&r, b, len, out, sizeof *out, &out->st, &n, 8, &rc)) return rc;
    uint_(&r, &out->decision);
    uint_(&r, &out->wait_ms);
    str(&r, &out->url, TGP_MAX_URL);
    digest_bin(&r, &out->sha256, TGP_SHA256_SIZE);
    uint_(&r, &out->size);
    str(&r, &out->token, TGP_MAX_URL);
    bin(&r, &out->release_sig, TGP_MAX_SIG);
    if (!r.err && out->decision == TGP_DECISION_PROCEED && out->sha256.len != TGP_SHA256_SIZE) return TGP_E_MALFORMED;
    return end(&r, 8, n);
}

int tgp_decode_group_auth_ack(const uint8_t *b, size_t len, tgp_group_auth_ack *out)
{
    tgp_mr r;
    uint32_t n;
    int rc;
    if (!open_ok(&r, b, len, out, sizeof *out, &out->st, &n, 6, &rc)) return rc;
    bin(&r, &out->grant, TGP_MAX_GRANT);
    uint_(&r, &out->expires_ms);
    str(&r, &out->role, TGP_MAX_ROLE);
    str(&r, &out->name, TGP_MAX_NAME);
    uint_(&r, &out->members);
    return end(&r, 6, n);
}

/* groups validates [[group_id, role], ...] (at most 32, §19) once, so that tgp_groups_next
 * can walk it later without failing. */
static int groups(tgp_mr *r, tgp_groups *g)
{
    uint32_t n, i, m;
    tgp_bytes id, role;
    if (tgp_mr_array(r, &n) != 0 || n > TGP_MAX_GROUPS) return -1;
    g->r = *r;
    g->left = n;
    for (i = 0; i < n; i++) {
        if (tgp_mr_array(r, &m) != 0 || m < PAIR) return -1;
        str(r, &id, TGP_MAX_ID);
        str(r, &role, TGP_MAX_ROLE);
        if (r->err || tgp_mr_skip_rest(r, PAIR, m) != 0) return -1;
    }
    return 0;
}

int tgp_groups_next(tgp_groups *g, tgp_bytes *group_id, tgp_bytes *role)
{
    uint32_t m;
    if (g->left == 0) return 0;
    /* Already validated: these reads cannot fail. */
    (void)tgp_mr_array(&g->r, &m);
    (void)tgp_mr_str(&g->r, group_id, TGP_MAX_ID);
    (void)tgp_mr_str(&g->r, role, TGP_MAX_ROLE);
    (void)tgp_mr_skip_rest(&g->r, PAIR, m);
    g->left--;
    return g->r.err ? 0 : 1;
}

int tgp_decode_groups_ack(const uint8_t *b, size_t len, tgp_groups_msg *out)
{
    tgp_mr r;
    uint32_t n;
    int rc;
    if (!open_ok(&r, b, len, out, sizeof *out, &out->st, &n, 3, &rc)) return rc;
    uint_(&r, &out->group_version);
    if (r.err || groups(&r, &out->groups) != 0) return TGP_E_MALFORMED;
    return end(&r, 3, n);
}

int tgp_decode_group_sync(const uint8_t *b, size_t len, tgp_groups_msg *out)
{
    tgp_mr r;
    uint32_t n;
    memset(out, 0, sizeof *out);
    if (body(&r, b, len, &n) != 0 || n < 2) return TGP_E_MALFORMED;
    uint_(&r, &out->group_version);
    if (r.err || groups(&r, &out->groups) != 0) return TGP_E_MALFORMED;
    return end(&r, 2, n);
}

int tgp_decode_group_send_ack(const uint8_t *b, size_t len, tgp_group_send_ack *out)
{
    tgp_mr r;
    uint32_t n;
    int rc;
    if (!open_ok(&r, b, len, out, sizeof *out, &out->st, &n, 2, &rc)) return rc;
    uint_(&r, &out->delivered);
    return end(&r, 2, n);
}

int tgp_decode_upgrade_notice(const uint8_t *b, size_t len, tgp_upgrade_notice *out)
{
    tgp_mr r;
    uint32_t n;
    memset(out, 0, sizeof *out);
    if (body(&r, b, len, &n) != 0 || n < 4) return TGP_E_MALFORMED;
    str(&r, &out->id, TGP_MAX_ID);
    str(&r, &out->app_id, TGP_MAX_ID);
    str(&r, &out->version, TGP_MAX_VERSION);
    uint_(&r, &out->kind);
    return end(&r, 4, n);
}

int tgp_decode_group_message(const uint8_t *b, size_t len, tgp_group_message *out)
{
    tgp_mr r;
    uint32_t n;
    memset(out, 0, sizeof *out);
    if (body(&r, b, len, &n) != 0 || n < 4) return TGP_E_MALFORMED;
    str(&r, &out->group_id, TGP_MAX_ID);
    str(&r, &out->from, TGP_MAX_ID);
    uint_(&r, &out->msg_id);
    bin(&r, &out->payload, TGP_MAX_PAYLOAD);
    return end(&r, 4, n);
}

int tgp_decode_goaway(const uint8_t *b, size_t len, tgp_goaway *out)
{
    tgp_mr r;
    uint32_t n, read = 2;
    uint64_t code;
    memset(out, 0, sizeof *out);
    if (body(&r, b, len, &n) != 0 || n < 2) return TGP_E_MALFORMED;
    uint_(&r, &code);
    str(&r, &out->message, TGP_MAX_MESSAGE);
    if (r.err || code > STATUS_MAX) return TGP_E_MALFORMED;
    out->code = (uint8_t)code;
    if (n > 2) {
        read = 3;
        if (!tgp_mr_nil(&r)) uint_(&r, &out->retry_after_ms);
    }
    return end(&r, read, n);
}

/* ---- release signatures ---- */

void tgp_release_digest(const uint8_t *app_id, size_t app_id_len,
                        const uint8_t *version, size_t version_len,
                        const uint8_t sha256[TGP_SHA256_SIZE], uint64_t size,
                        uint8_t out[TGP_SHA256_SIZE])
{
    static const char label[] = "TGP1 release"; /* sizeof includes the 0x00 separator */
    static const uint8_t zero = 0;
    uint8_t be_size[8];
    tgp_sha256 s;
    tgp_put_be64(be_size, size);
    tgp_sha256_init(&s);
    tgp_sha256_update(&s, label, sizeof label);
    tgp_sha256_update(&s, app_id, app_id_len);
    tgp_sha256_update(&s, &zero, 1);
    tgp_sha256_update(&s, version, version_len);
    tgp_sha256_update(&s, &zero, 1);
    tgp_sha256_update(&s, sha256, TGP_SHA256_SIZE);
    tgp_sha256_update(&s, be_size, sizeof be_size);
    tgp_sha256_final(&s, out);
}

int tgp_verify_release(const tgp_ctx *ctx, const char *app_id, const tgp_bytes *version,
                       const tgp_bytes *sha256, uint64_t size, const tgp_bytes *sig)
{
    uint8_t digest[TGP_SHA256_SIZE];
    if (ctx->cb->verify_sig == NULL) return 0; /* no key pinned */
    /* A pinned key refuses unsigned releases (§16.1). */
    if (sig->len != TGP_MAX_SIG || sha256->len != TGP_SHA256_SIZE) return TGP_E_SIG;
    tgp_release_digest((const uint8_t *)app_id, tgp_strlen(app_id), version->p, version->len,
                       sha256->p, size, digest);
    return ctx->cb->verify_sig(ctx->cb->user, digest, sig->p, sig->len) == 0 ? 0 : TGP_E_SIG;
}
