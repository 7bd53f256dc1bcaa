/*
 * tgp_backoff.c — the reconnect rule of docs/protocol.md §18:
 * wait max(retry_after_ms, random(0, min(300 s, 1 s × 2^k))), k counting
 * consecutive failed connections and sessions shorter than 60 s; at least
 * 60 s after GOAWAY 5 (replaced) on a live connection, doubling up to 1 h
 * while replacements repeat; at least 1 h after a HELLO refused
 * UNAUTHENTICATED or FORBIDDEN.
 */
#include "tgp.h"

#define BACKOFF_BASE_MS      1000u    /* 1 s × 2^k */
#define BACKOFF_CAP_MS       300000u  /* min(300 s, …) */
#define STABLE_SESSION_MS    60000u   /* shorter sessions count as failures */
#define REPLACED_MIN_MS      60000u   /* after GOAWAY 5 … */
#define REPLACED_MAX_MS      3600000u /* … doubling up to 1 h */
#define AUTH_REFUSED_WAIT_MS 3600000u /* after HELLO refused 2 or 3 */

uint32_t tgp_backoff_next(tgp_backoff *b, const tgp_end *end, uint64_t session_ms, uint32_t rnd)
{
    int live = session_ms > 0;
    int stable = session_ms >= STABLE_SESSION_MS;
    uint32_t ceil = BACKOFF_BASE_MS, wait, i;
    if (stable) {
        b->k = 0;
    } else if (b->k < UINT32_MAX) {
        b->k++;
    }
    for (i = 0; i < b->k && ceil < BACKOFF_CAP_MS; i++) ceil *= 2u;
    if (ceil > BACKOFF_CAP_MS) ceil = BACKOFF_CAP_MS;
    wait = rnd % (ceil + 1u); /* ceil ≤ 300 000: no 32-bit overflow */
    if (end->retry_after_ms > wait) wait = end->retry_after_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)end->retry_after_ms;

    if (live && end->result == TGP_E_GOAWAY && end->code == TGP_S_CONFLICT) {
        /* Two terminals sharing a device id replace each other forever:
         * slow down more each time. */
        if (b->replaced_ms == 0) b->replaced_ms = REPLACED_MIN_MS;
        else b->replaced_ms = b->replaced_ms >= REPLACED_MAX_MS / 2u ? REPLACED_MAX_MS : b->replaced_ms * 2u;
        if (b->replaced_ms > wait) wait = b->replaced_ms;
    } else if (stable) {
        b->replaced_ms = 0; /* a long session: no longer fighting a twin */
    } else if (!live && end->result == TGP_E_REFUSED &&
               (end->code == TGP_S_UNAUTHENTICATED || end->code == TGP_S_FORBIDDEN)) {
        if (wait < AUTH_REFUSED_WAIT_MS) wait = AUTH_REFUSED_WAIT_MS;
    }
    return wait;
}
