/*
 * tgp_messages.h — typed TGP/1 messages (docs/protocol.md §6–§18): request
 * encoders, senders that tag and pipeline them, and response and push
 * decoders. Included by tgp.h; not used on its own.
 *
 * Request strings are NUL-terminated C strings (NULL sends ""). Decoded
 * strings and binaries are tgp_bytes into the receive buffer, valid during
 * the callback. Every decoder returns 0 for a well-formed body — check
 * st.code for the server's status — or TGP_E_MALFORMED.
 */
#ifndef TGP_MESSAGES_H
#define TGP_MESSAGES_H

/* The status every response starts with (§3.2, §5). */
typedef struct {
    uint8_t   code;           /* TGP_S_*; the fields below it are valid only when 0 */
    tgp_bytes message;        /* empty when code is 0 */
    uint64_t  retry_after_ms; /* RATE_LIMITED / UNAVAILABLE / duplicate device; 0 if absent */
} tgp_status;

/* ---- §15 service control ---- */
enum { TGP_OP_START = 1, TGP_OP_STOP = 2, TGP_OP_RESTART = 3, TGP_OP_STATUS = 4 };

typedef struct {
    const char        *service_id;
    uint8_t            op;         /* TGP_OP_* */
    const char *const *args;       /* nargs strings (≤ 8, each ≤ 256 bytes) */
    uint8_t            nargs;
    uint64_t           timeout_ms; /* 0: server default (30 s) */
    int                has_request_id;
    uint64_t           request_id; /* idempotency key, 10 minutes */
} tgp_control;

typedef struct {
    tgp_status st;       /* also TIMEOUT (13), which fills the fields below but output */
    tgp_bytes  state;    /* running, stopped, exited, failed */
    uint64_t   pid;
    int64_t    exit_code;
    uint64_t   since_ms;
    tgp_bytes  output;   /* last ≤ 1024 bytes of a one-shot's output */
} tgp_control_ack;

/* ---- §16.1 releases ---- */
typedef struct {
    const char *app_id;
    const char *version; /* installed version */
    int         launch;  /* first query after boot: ask for last_failure */
} tgp_upgrade_query;

typedef struct {
    tgp_bytes release_id, version, url, sha256, notes, release_sig;
    uint64_t  size;
    int       mandatory;
} tgp_offer;

typedef struct {
    tgp_bytes release_id, version, message;
    uint64_t  code, at_ms;
} tgp_last_failure;

typedef struct {
    tgp_bytes campaign_id, version, release_id;
    uint64_t  window_start_ms, window_end_ms;
} tgp_campaign;

typedef struct {
    tgp_status       st;
    int              has_offer, has_last_failure, has_campaign;
    tgp_offer        offer;
    tgp_last_failure last_failure;
    tgp_campaign     campaign;
} tgp_upgrade_query_ack;

enum {
    TGP_STAGE_DOWNLOADING = 1, TGP_STAGE_DOWNLOADED = 2, TGP_STAGE_INSTALLING = 3,
    TGP_STAGE_SUCCEEDED = 4, TGP_STAGE_FAILED = 5, TGP_STAGE_ROLLED_BACK = 6
};

typedef struct {
    const char *release_id;
    uint64_t    attempt;  /* persisted across reboots, from 1 */
    uint8_t     stage;    /* TGP_STAGE_* */
    uint8_t     progress; /* 0–100 */
    uint64_t    code;
    const char *message;  /* ≤ 256 bytes */
} tgp_upgrade_report;

/* A response that carries only its status (UPGRADE_REPORT_ACK, BYE_ACK). */
typedef struct {
    tgp_status st;
} tgp_ack;

enum { TGP_NOTICE_RELEASE = 1, TGP_NOTICE_CAMPAIGN = 2, TGP_NOTICE_WITHDRAWN = 3 };

typedef struct {
    tgp_bytes id, app_id, version;
    uint64_t  kind; /* TGP_NOTICE_*; unknown kinds are acked and ignored */
} tgp_upgrade_notice;

/* ---- §16.2 scheduled campaigns ---- */
typedef struct {
    const char *campaign_id;
    const char *version;
    int         has_location;
    double      lat, lon;
    const char *system_id;
} tgp_schedule_request;

typedef struct {
    tgp_status st;
    tgp_bytes  reservation_id, node_id, url, release_id;
    uint64_t   slot_start_ms, slot_end_ms;
} tgp_schedule_ack;

typedef struct {
    const char *reservation_id;
    const char *version;
} tgp_upgrade_check;

enum { TGP_DECISION_PROCEED = 1, TGP_DECISION_UP_TO_DATE = 2, TGP_DECISION_TOO_EARLY = 3, TGP_DECISION_MISSED = 4 };

typedef struct {
    tgp_status st;
    uint64_t   decision, wait_ms, size;
    tgp_bytes  url, sha256, token, release_sig;
} tgp_upgrade_check_ack;

/* ---- §17 groups ---- */
typedef struct {
    const char *group_id;
} tgp_group_auth;

typedef struct {
    tgp_status st;
    tgp_bytes  grant, role, name;
    uint64_t   expires_ms, members;
} tgp_group_auth_ack;

enum { TGP_GROUP_JOIN = 1, TGP_GROUP_LEAVE = 2, TGP_GROUP_SWITCH = 3 };

typedef struct {
    uint64_t       request_id;
    uint8_t        op;        /* TGP_GROUP_* */
    const char    *from;      /* NULL → nil */
    const char    *to;        /* NULL → nil */
    const uint8_t *grant;     /* NULL → nil */
    size_t         grant_len;
} tgp_group_change;

/* Memberships [[group_id, role], ...]: walk them with tgp_groups_next. */
typedef struct {
    tgp_mr   r;     /* positioned at the first pair */
    uint32_t left;  /* pairs not yet returned */
} tgp_groups;

/* GROUP_CHANGE_ACK, GROUP_LIST_ACK and the GROUP_SYNC push. */
typedef struct {
    tgp_status st;  /* always OK for GROUP_SYNC */
    uint64_t   group_version;
    tgp_groups groups;
} tgp_groups_msg;

/* tgp_groups_next returns 1 with the next membership, 0 at the end. */
int tgp_groups_next(tgp_groups *g, tgp_bytes *group_id, tgp_bytes *role);

typedef struct {
    const char    *group_id;
    const uint8_t *payload;
    size_t         len; /* ≤ 1024 */
} tgp_group_send;

typedef struct {
    tgp_status st;
    uint64_t   delivered;
} tgp_group_send_ack;

typedef struct {
    tgp_bytes group_id, from, payload;
    uint64_t  msg_id;
} tgp_group_message;

/* ---- §6, §13, §18 session messages ---- */
typedef struct {
    tgp_status st;
    uint64_t   server_time_ms, flags, hb_interval_s;
} tgp_heartbeat_ack;

typedef struct {
    tgp_status st;
    uint64_t   session_id, server_time_ms, hb_interval_s, max_frame;
    tgp_bytes  server_mac;
    /* EXPIRED (12) refusals carry the clock challenge (§7). */
    int        has_challenge;
    tgp_bytes  challenge;
} tgp_hello_ok;

/* GOAWAY (push) and ERROR frames: [code, message, retry_after_ms?]. */
typedef struct {
    uint8_t   code;
    tgp_bytes message;
    uint64_t  retry_after_ms;
} tgp_goaway;

/* ---- encoders: write one request body; return 0 or TGP_E_TOO_LARGE ---- */
int tgp_encode_control(tgp_mw *w, const tgp_control *m);
int tgp_encode_upgrade_query(tgp_mw *w, const tgp_upgrade_query *m);
int tgp_encode_upgrade_report(tgp_mw *w, const tgp_upgrade_report *m);
int tgp_encode_schedule_request(tgp_mw *w, const tgp_schedule_request *m);
int tgp_encode_upgrade_check(tgp_mw *w, const tgp_upgrade_check *m);
int tgp_encode_group_auth(tgp_mw *w, const tgp_group_auth *m);
int tgp_encode_group_change(tgp_mw *w, const tgp_group_change *m);
int tgp_encode_group_list(tgp_mw *w, const void *unused);
int tgp_encode_group_send(tgp_mw *w, const tgp_group_send *m);

/* ---- senders: encode, tag and send; *seq identifies the response ---- */
int tgp_send_control(tgp_ctx *ctx, const tgp_control *m, uint16_t *seq);
int tgp_send_upgrade_query(tgp_ctx *ctx, const tgp_upgrade_query *m, uint16_t *seq);
int tgp_send_upgrade_report(tgp_ctx *ctx, const tgp_upgrade_report *m, uint16_t *seq);
int tgp_send_schedule_request(tgp_ctx *ctx, const tgp_schedule_request *m, uint16_t *seq);
int tgp_send_upgrade_check(tgp_ctx *ctx, const tgp_upgrade_check *m, uint16_t *seq);
int tgp_send_group_auth(tgp_ctx *ctx, const tgp_group_auth *m, uint16_t *seq);
int tgp_send_group_change(tgp_ctx *ctx, const tgp_group_change *m, uint16_t *seq);
int tgp_send_group_list(tgp_ctx *ctx, uint16_t *seq);
int tgp_send_group_send(tgp_ctx *ctx, const tgp_group_send *m, uint16_t *seq);

/* ---- decoders of response and push bodies ---- */
int tgp_decode_status(const uint8_t *body, size_t len, tgp_ack *out);
int tgp_decode_hello_ok(const uint8_t *body, size_t len, tgp_hello_ok *out);
int tgp_decode_heartbeat_ack(const uint8_t *body, size_t len, tgp_heartbeat_ack *out);
int tgp_decode_control_ack(const uint8_t *body, size_t len, tgp_control_ack *out);
int tgp_decode_upgrade_query_ack(const uint8_t *body, size_t len, tgp_upgrade_query_ack *out);
int tgp_decode_schedule_ack(const uint8_t *body, size_t len, tgp_schedule_ack *out);
int tgp_decode_upgrade_check_ack(const uint8_t *body, size_t len, tgp_upgrade_check_ack *out);
int tgp_decode_group_auth_ack(const uint8_t *body, size_t len, tgp_group_auth_ack *out);
/* GROUP_CHANGE_ACK and GROUP_LIST_ACK */
int tgp_decode_groups_ack(const uint8_t *body, size_t len, tgp_groups_msg *out);
int tgp_decode_group_send_ack(const uint8_t *body, size_t len, tgp_group_send_ack *out);
int tgp_decode_upgrade_notice(const uint8_t *body, size_t len, tgp_upgrade_notice *out);
int tgp_decode_group_sync(const uint8_t *body, size_t len, tgp_groups_msg *out);
int tgp_decode_group_message(const uint8_t *body, size_t len, tgp_group_message *out);
/* GOAWAY and ERROR bodies */
int tgp_decode_goaway(const uint8_t *body, size_t len, tgp_goaway *out);

/* ---- release signatures (§16.1, §22) ---- */

/* tgp_release_digest: SHA-256 of "TGP1 release" ‖ 0 ‖ app_id ‖ 0 ‖ version
 * ‖ 0 ‖ sha256 ‖ be64(size), the message release_sig signs. */
void tgp_release_digest(const uint8_t *app_id, size_t app_id_len,
                        const uint8_t *version, size_t version_len,
                        const uint8_t sha256[TGP_SHA256_SIZE], uint64_t size,
                        uint8_t out[TGP_SHA256_SIZE]);
/* tgp_verify_release checks an offer's or PROCEED's signature with the
 * verify_sig callback: 0 when it verifies or when no key is pinned
 * (verify_sig NULL), TGP_E_SIG otherwise (unsigned included). */
int tgp_verify_release(const tgp_ctx *ctx, const char *app_id, const tgp_bytes *version,
                       const tgp_bytes *sha256, uint64_t size, const tgp_bytes *sig);

#endif /* TGP_MESSAGES_H */
