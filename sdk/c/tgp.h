/*
 * tgp.h — C99 firmware SDK for TGP/1, the terminal gateway protocol
 * (docs/protocol.md). It keeps one terminal logged in to termd: HELLO with
 * the clock-challenge retry, a tag on every frame, heartbeats with jitter
 * and an ack deadline, pipelined requests matched by seq, pushes acked
 * where required, GOAWAY and the reconnect backoff.
 *
 * Design for firmware:
 *  - No dynamic allocation and no global state: the caller owns one
 *    tgp_ctx (sizeof(tgp_ctx) ≈ 1.6 KiB with the default TGP_TX_BUF_SIZE)
 *    and one receive buffer of TGP_RX_BUF_SIZE (4 KiB). Several contexts
 *    may run side by side; each is single-threaded (call one context's
 *    functions from one task at a time).
 *  - Transport, clocks, randomness and optionally HMAC and signature
 *    checks are callbacks (tgp_callbacks), so the SDK runs on POSIX
 *    sockets, lwIP or a modem's AT socket alike.
 *  - From libc only memcpy and memset.
 *
 * Strings and binaries in decoded messages (tgp_bytes) point into the
 * receive buffer: they are valid only during the callback that delivered
 * them. Copy what you keep.
 */
#ifndef TGP_H
#define TGP_H

#include <stddef.h>
#include <stdint.h>

#include "tgp_msgpack.h"
#include "tgp_sha256.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- wire constants (docs/protocol.md §2, §6) ---- */

#define TGP_MAGIC          0xA1u /* magic nibble 0xA, protocol version 1 */
#define TGP_HEADER_SIZE    6u    /* magic, type, seq u16, len u16 */
#define TGP_TAG_SIZE       8u    /* truncated HMAC on every frame after HELLO_OK */
#define TGP_MAX_FRAME      4096u /* the server never sends a larger len */
#define TGP_KEY_SIZE       32u   /* K_dev, K_s, every MAC */
#define TGP_NONCE_SIZE     16u   /* HELLO nonce and clock challenge */
#define TGP_MAX_INFLIGHT   16u   /* outstanding requests the server allows */
#define TGP_MAX_ID         64u   /* device, service, app, release … ids */
#define TGP_MAX_VERSION    32u
#define TGP_MAX_FW         32u   /* fw and model */
#define TGP_MAX_URL        256u  /* url, token, notes */
#define TGP_MAX_MESSAGE    256u  /* status messages (128) and report messages (256) */
#define TGP_MAX_ROLE       16u
#define TGP_MAX_NAME       64u
#define TGP_MAX_OUTPUT     1024u /* CONTROL output */
#define TGP_MAX_PAYLOAD    1024u /* GROUP_SEND payload */
#define TGP_MAX_ARGS       8u    /* CONTROL args */
#define TGP_MAX_GRANT      512u  /* group grant (bound the server applies) */
#define TGP_MAX_SIG        64u   /* ECDSA P-256 r ‖ s */
#define TGP_MAX_GROUPS     32u   /* memberships per device */

/* The receive buffer holds one frame's body and tag; the 6-byte header is
 * kept in the context. */
#define TGP_RX_BUF_SIZE TGP_MAX_FRAME

/* The transmit buffer, inside tgp_ctx, holds one outgoing frame. 1280 B
 * fits every request but a CONTROL with very long args; raise it (or
 * lower it to save RAM) with -DTGP_TX_BUF_SIZE=… */
#ifndef TGP_TX_BUF_SIZE
#define TGP_TX_BUF_SIZE 1280u
#endif

/* Bytes of a refusal's or GOAWAY's message kept in tgp_end. */
#define TGP_END_MSG_SIZE 64u

/* ---- frame types (§3) ---- */
enum {
    TGP_T_HELLO = 0x01, TGP_T_HEARTBEAT = 0x02, TGP_T_CONTROL = 0x03,
    TGP_T_UPGRADE_QUERY = 0x04, TGP_T_UPGRADE_REPORT = 0x05,
    TGP_T_SCHEDULE_REQUEST = 0x06, TGP_T_UPGRADE_CHECK = 0x07,
    TGP_T_GROUP_AUTH = 0x08, TGP_T_GROUP_CHANGE = 0x09, TGP_T_GROUP_LIST = 0x0A,
    TGP_T_GROUP_SEND = 0x0B, TGP_T_BYE = 0x0C,
    TGP_T_UPGRADE_NOTICE = 0x41, TGP_T_GROUP_SYNC = 0x42,
    TGP_T_GROUP_MESSAGE = 0x43, TGP_T_GOAWAY = 0x44,
    TGP_T_ERROR = 0xFF,
    TGP_RESPONSE_BIT = 0x80 /* request or push type | 0x80 = its response or ack */
};

/* ---- status codes on the wire (§5) ---- */
enum {
    TGP_S_OK = 0, TGP_S_BAD_REQUEST = 1, TGP_S_UNAUTHENTICATED = 2,
    TGP_S_FORBIDDEN = 3, TGP_S_NOT_FOUND = 4, TGP_S_CONFLICT = 5,
    TGP_S_RATE_LIMITED = 6, TGP_S_UNAVAILABLE = 7, TGP_S_INTERNAL = 8,
    TGP_S_BAD_VERSION = 9, TGP_S_FRAME_TOO_LARGE = 10, TGP_S_UNKNOWN_TYPE = 11,
    TGP_S_EXPIRED = 12, TGP_S_TIMEOUT = 13
};

/* ---- SDK results: 0 is success, negatives are failures ---- */
enum {
    TGP_E_IO = -1,          /* send/recv callback failed or peer closed */
    TGP_E_MALFORMED = -2,   /* a server frame or body broke the protocol */
    TGP_E_BAD_TAG = -3,     /* a frame's tag did not verify (or len < 9) */
    TGP_E_SERVER_MAC = -4,  /* HELLO_OK's server_mac did not verify */
    TGP_E_REFUSED = -5,     /* HELLO refused: tgp_end.code says why */
    TGP_E_ERROR_FRAME = -6, /* the server sent ERROR and closed */
    TGP_E_GOAWAY = -7,      /* the server sent GOAWAY and closed */
    TGP_E_ACK_TIMEOUT = -8, /* no HEARTBEAT_ACK within min(interval, 30 s) */
    TGP_E_TIMEOUT = -9,     /* HELLO or a tgp_wait did not finish in time */
    TGP_E_BUSY = -10,       /* 15 requests outstanding already */
    TGP_E_TOO_LARGE = -11,  /* request does not fit TGP_TX_BUF_SIZE or max_frame */
    TGP_E_STATE = -12,      /* wrong call for the session's state */
    TGP_E_ARG = -13,        /* invalid argument (device id, fw, …) */
    TGP_E_RANDOM = -14,     /* the random callback failed */
    TGP_E_SIG = -15         /* release signature missing or invalid */
};

/* ---- frame decoder (any split of the byte stream) ---- */

typedef struct {
    uint8_t        type;
    uint16_t       seq;
    uint16_t       len;      /* header len: body plus tag */
    const uint8_t *header;   /* the 6 header bytes */
    const uint8_t *body;     /* len bytes: body, then the tag if tagged */
} tgp_frame;

typedef struct {
    uint8_t  hdr[TGP_HEADER_SIZE];
    uint16_t hdr_have;  /* header bytes received */
    uint16_t body_len;  /* len of the frame being received */
    uint16_t body_have; /* body bytes received */
    uint8_t *buf;       /* caller's receive buffer */
    uint16_t cap;
    uint16_t min_len;   /* smallest acceptable len: 1, or 9 once frames are tagged */
} tgp_decoder;

/* Decoder results besides TGP_E_MALFORMED (bad magic, len 0, len above
 * the buffer) and TGP_E_BAD_TAG (len below min_len: no room for a tag). */
#define TGP_FRAME_PENDING 0 /* need more bytes */
#define TGP_FRAME_READY   1 /* a whole frame is in the buffer */

void tgp_decoder_init(tgp_decoder *d, uint8_t *buf, size_t cap);
/* tgp_decoder_tagged makes every later frame need room for a body and a
 * tag (len ≥ 9), checked as soon as the header is in. */
void tgp_decoder_tagged(tgp_decoder *d);
/* Where the next received bytes go and how many may go there without
 * reading past the current frame (recv straight into the decoder). */
uint8_t *tgp_decoder_dst(tgp_decoder *d, size_t *room);
/* tgp_decoder_commit accounts n bytes written at tgp_decoder_dst. */
int tgp_decoder_commit(tgp_decoder *d, size_t n);
/* tgp_decoder_feed copies from in until a frame is complete; *used says
 * how much of in it took. */
int tgp_decoder_feed(tgp_decoder *d, const uint8_t *in, size_t len, size_t *used);
/* tgp_decoder_frame describes the READY frame; tgp_decoder_next drops it. */
void tgp_decoder_frame(const tgp_decoder *d, tgp_frame *f);
void tgp_decoder_next(tgp_decoder *d);

/* ---- callbacks ---- */

/* A message the session delivers: a response (type = request | 0x80) or a
 * push (0x41–0x43). body is the MessagePack body without the tag, valid
 * during the callback; decode it with the matching tgp_decode_* function. */
typedef struct {
    uint8_t        type;
    uint16_t       seq;
    const uint8_t *body;
    size_t         len;
} tgp_msg;

typedef struct {
    void *user; /* passed to every callback */
    /* send writes all len bytes; returns 0, or < 0 on failure. */
    int (*send)(void *user, const uint8_t *buf, size_t len);
    /* recv reads up to cap bytes, waiting at most timeout_ms: returns the
     * count (> 0), 0 on timeout, < 0 when the connection closed or failed. */
    long (*recv)(void *user, uint8_t *buf, size_t cap, uint32_t timeout_ms);
    /* now_ms is a monotonic clock in milliseconds (any epoch). */
    uint64_t (*now_ms)(void *user);
    /* unix_ms is the terminal's wall clock (HELLO's ts); may be wrong by
     * any amount — the clock challenge copes (§7). */
    uint64_t (*unix_ms)(void *user);
    /* random fills buf with len unpredictable bytes (nonces, jitter);
     * returns 0, or < 0 on failure. Must be a real entropy source. */
    int (*random)(void *user, uint8_t *buf, size_t len);
    /* hmac (optional): HMAC-SHA256 on a hardware engine; NULL uses the
     * bundled software implementation. Returns 0 on success. */
    int (*hmac)(void *user, const uint8_t *key, size_t key_len,
                const tgp_iov *parts, size_t nparts, uint8_t out[TGP_KEY_SIZE]);
    /* on_response (optional) receives every response, status included. */
    void (*on_response)(void *user, const tgp_msg *m);
    /* on_push (optional) receives UPGRADE_NOTICE, GROUP_SYNC and
     * GROUP_MESSAGE; the SDK acks the first two after it returns. Do not
     * block in it: nothing is read meanwhile. */
    void (*on_push)(void *user, const tgp_msg *m);
    /* status (optional) writes the heartbeat's status map into w and
     * returns 1, or returns 0 to send none. */
    int (*status)(void *user, tgp_mw *w);
    /* verify_sig (optional): ECDSA P-256 verification of a 64-byte r ‖ s
     * over digest with the pinned release key(s); returns 0 when valid.
     * When set, unsigned releases are refused (§16.1). */
    int (*verify_sig)(void *user, const uint8_t digest[TGP_SHA256_SIZE],
                      const uint8_t *sig, size_t sig_len);
} tgp_callbacks;

/* ---- configuration (read, never written, by the SDK; must outlive ctx) ---- */
typedef struct {
    const char    *device_id; /* 1–64 bytes of [A-Za-z0-9._:-] */
    const char    *fw;        /* ≤ 32 bytes, sent in HELLO */
    const char    *model;     /* ≤ 32 bytes */
    const uint8_t *fleet_secret; /* derives K_dev unless device_key is set */
    size_t         fleet_secret_len;
    const uint8_t *device_key;   /* optional provisioned 32-byte K_dev */
    const uint8_t *attrs;        /* optional pre-encoded attrs map */
    size_t         attrs_len;
    uint32_t       hb_min_s;     /* clamp of hb_interval_s; 0 → 10 (tests lower it) */
    uint32_t       hb_max_s;     /* 0 → 600 */
    uint32_t       hello_timeout_ms; /* 0 → 10 000, the server's default */
} tgp_config;

/* Why a session or login ended: the result plus what the server said. */
typedef struct {
    int      result;         /* TGP_E_* */
    uint8_t  code;           /* status of a refusal, ERROR or GOAWAY */
    uint64_t retry_after_ms; /* from the refusal or GOAWAY, 0 if none */
    char     message[TGP_END_MSG_SIZE]; /* NUL-terminated, clipped */
} tgp_end;

/* Session states. */
enum { TGP_ST_IDLE = 0, TGP_ST_HELLO = 1, TGP_ST_LIVE = 2, TGP_ST_CLOSED = 3 };

/* One outstanding request: its seq and the response type it expects. */
typedef struct {
    uint16_t seq;
    uint8_t  resp_type; /* 0 = free slot */
} tgp_pending;

/* The session context. Treat the fields as private; read them through
 * the accessors below. */
typedef struct {
    const tgp_config    *cfg;
    const tgp_callbacks *cb;
    tgp_decoder dec;
    uint8_t  kdev[TGP_KEY_SIZE];
    uint8_t  ks[TGP_KEY_SIZE];
    uint8_t  hello_mac[TGP_KEY_SIZE];
    uint8_t  nonce[TGP_NONCE_SIZE];
    uint64_t out_n;           /* tagged frames sent this session */
    uint64_t in_n;            /* tagged frames received */
    uint64_t session_id;
    int64_t  clock_offset_ms; /* server clock − terminal clock, set after HELLO_OK */
    uint64_t group_version;   /* sent in heartbeats; updated from group answers */
    uint64_t hb_next_ms;      /* now_ms when the next heartbeat is due */
    uint64_t hb_sent_ms;      /* when the outstanding heartbeat was sent */
    uint64_t hb_deadline_ms;  /* its ack deadline */
    uint32_t hb_interval_ms;  /* clamped interval in use */
    uint32_t flags;           /* last HEARTBEAT_ACK flags */
    uint32_t heartbeats;      /* acks received this session */
    uint16_t max_frame;
    uint16_t next_seq;
    uint16_t hb_seq;
    uint8_t  hb_outstanding;
    uint8_t  challenged;      /* HELLO was clock-challenged and retried (§7) */
    uint8_t  state;
    tgp_end  end;
    tgp_pending pending[TGP_MAX_INFLIGHT];
    uint8_t  tx[TGP_TX_BUF_SIZE];
} tgp_ctx;

/* HEARTBEAT_ACK flags (§13). */
#define TGP_FLAG_GROUP_STALE     0x1u /* send GROUP_LIST */
#define TGP_FLAG_UPGRADE_PENDING 0x2u /* send UPGRADE_QUERY per installed app */

/* tgp_init prepares ctx for a new connection; rx must hold
 * TGP_RX_BUF_SIZE bytes. Call it again before every reconnect. */
int tgp_init(tgp_ctx *ctx, const tgp_config *cfg, const tgp_callbacks *cb,
             uint8_t *rx, size_t rx_cap);
/* tgp_login runs HELLO on a freshly connected transport, including the
 * single clock-challenge retry; it blocks up to hello_timeout_ms. On
 * TGP_E_REFUSED, tgp_end(ctx) has the status and retry_after. */
int tgp_login(tgp_ctx *ctx);
/* tgp_poll reads and handles frames for up to max_wait_ms, sending
 * heartbeats when due. Returns 0 while the session lives, else the TGP_E_*
 * that ended it (then close the transport and back off). */
int tgp_poll(tgp_ctx *ctx, uint32_t max_wait_ms);
/* tgp_wait polls until the response to seq was delivered (0), the session
 * ended (its TGP_E_*), or timeout_ms passed (TGP_E_TIMEOUT). */
int tgp_wait(tgp_ctx *ctx, uint16_t seq, uint32_t timeout_ms);
/* tgp_heartbeat sends a HEARTBEAT now (the SDK also sends them itself). */
int tgp_heartbeat(tgp_ctx *ctx);
/* tgp_bye sends BYE; the server answers and closes. reason may be NULL. */
int tgp_bye(tgp_ctx *ctx, const char *reason, uint16_t *seq);

const tgp_end *tgp_end_reason(const tgp_ctx *ctx);
uint64_t tgp_session_id(const tgp_ctx *ctx);
/* tgp_server_time_ms is the terminal's clock corrected by the offset
 * learnt from HELLO_OK and heartbeat acks. */
uint64_t tgp_server_time_ms(const tgp_ctx *ctx);
int64_t tgp_clock_offset_ms(const tgp_ctx *ctx);
uint32_t tgp_hb_interval_ms(const tgp_ctx *ctx);
uint32_t tgp_flags(const tgp_ctx *ctx);
/* tgp_challenged reports whether the login needed the clock-challenge
 * retry: the terminal's clock was more than 300 s off (log it, fix it). */
int tgp_challenged(const tgp_ctx *ctx);
void tgp_set_group_version(tgp_ctx *ctx, uint64_t v);

/* ---- MAC helpers (exposed for tests and for checking vectors) ---- */
int tgp_device_key(const tgp_callbacks *cb, const uint8_t *secret, size_t secret_len,
                   const char *device_id, uint8_t out[TGP_KEY_SIZE]);
/* tgp_frame_tag computes the 8-byte tag of header ‖ body (§8). */
int tgp_frame_tag(const tgp_callbacks *cb, const uint8_t ks[TGP_KEY_SIZE], uint8_t dir,
                  uint64_t n, const uint8_t *frame, size_t len, uint8_t tag[TGP_TAG_SIZE]);
#define TGP_DIR_TERMINAL 0x01u
#define TGP_DIR_SERVER   0x02u
/* tgp_ct_equal compares in constant time (MACs and tags). */
int tgp_ct_equal(const uint8_t *a, const uint8_t *b, size_t n);

#include "tgp_messages.h"

/* ---- reconnect backoff (§18) ---- */

typedef struct {
    uint32_t k;           /* consecutive failures */
    uint32_t replaced_ms; /* last wait after GOAWAY 5, 0 if none */
} tgp_backoff;

/* tgp_backoff_next returns how long to wait before the next connection
 * attempt, in ms. end is why the last attempt ended (tgp_end_reason);
 * session_ms is how long its session was live, 0 if login failed; rnd is
 * a uniform random 32-bit value. */
uint32_t tgp_backoff_next(tgp_backoff *b, const tgp_end *end, uint64_t session_ms, uint32_t rnd);

#ifdef __cplusplus
}
#endif
#endif /* TGP_H */
