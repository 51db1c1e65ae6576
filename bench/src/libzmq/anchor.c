/*
 * The libzmq side of `anchor-libzmq`: one socket and the few calls the benchmark
 * makes on it, behind a small C API that src/bin/anchor-libzmq.rs declares. The Rust
 * side parses the command line, keeps the clock and prints READY/RESULT, exactly as
 * for the other anchors; this file only talks to libzmq (the system's 4.3).
 *
 * Every function returns 0 on success and -1 on failure, with the reason in
 * lza_error(). Throughput messages are checked like zmtp-bench checks them: PULL
 * gets [body], ROUTER gets [id, body], and the body must have the expected size.
 * REP echoes whatever it gets (lza_echo); REQ hands each reply to the Rust side
 * (lza_recv_into), which checks it is the request echoed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* How long closing waits for queued messages to go out (ZMQ_LINGER), in ms. */
#define LINGER_MS 60000

/* The most frames lza_echo echoes in one message. */
#define MAX_ECHO_FRAMES 64

/* lza_open's `pattern`. */
enum { PUSHPULL = 0, DEALERROUTER = 1, REQREP = 2 };

struct lza {
    void *ctx;
    void *socket;
    int router;
    char error[256];
};

static int fail(struct lza *a, const char *what)
{
    snprintf(a->error, sizeof a->error, "%s: %s", what, zmq_strerror(zmq_errno()));
    return -1;
}

const char *lza_error(const struct lza *a)
{
    return a->error;
}

/*
 * A new socket of `pattern` (PUSHPULL, DEALERROUTER or REQREP): its binding side
 * (PULL, ROUTER, REP) if `binds`, else its connecting side (PUSH, DEALER, REQ).
 * With `curve`, the binding side is a CURVE server with `server_secret`, the
 * connecting side a CURVE client with `client_public`/`client_secret` that trusts
 * `server_public` (all Z85, 40 characters). NULL if out of memory; otherwise check
 * lza_error() is empty (free with lza_close() either way).
 */
struct lza *lza_open(int binds, int pattern, int hwm, int curve,
                     const char *server_public, const char *server_secret,
                     const char *client_public, const char *client_secret)
{
    struct lza *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->router = binds && pattern == DEALERROUTER;
    int type;
    switch (pattern) {
    case PUSHPULL:
        type = binds ? ZMQ_PULL : ZMQ_PUSH;
        break;
    case DEALERROUTER:
        type = binds ? ZMQ_ROUTER : ZMQ_DEALER;
        break;
    case REQREP:
        type = binds ? ZMQ_REP : ZMQ_REQ;
        break;
    default:
        snprintf(a->error, sizeof a->error, "unknown pattern %d", pattern);
        return a;
    }
    a->ctx = zmq_ctx_new();
    if (!a->ctx) {
        fail(a, "zmq_ctx_new");
        return a;
    }
    a->socket = zmq_socket(a->ctx, type);
    if (!a->socket) {
        fail(a, "zmq_socket");
        return a;
    }
    int linger = LINGER_MS;
    int one = 1;
    if (zmq_setsockopt(a->socket, ZMQ_SNDHWM, &hwm, sizeof hwm)
        || zmq_setsockopt(a->socket, ZMQ_RCVHWM, &hwm, sizeof hwm)
        || zmq_setsockopt(a->socket, ZMQ_LINGER, &linger, sizeof linger)) {
        fail(a, "zmq_setsockopt");
        return a;
    }
    if (curve) {
        int rc;
        if (binds) {
            rc = zmq_setsockopt(a->socket, ZMQ_CURVE_SERVER, &one, sizeof one)
                 || zmq_setsockopt(a->socket, ZMQ_CURVE_SECRETKEY, server_secret, 40);
        } else {
            rc = zmq_setsockopt(a->socket, ZMQ_CURVE_SERVERKEY, server_public, 40)
                 || zmq_setsockopt(a->socket, ZMQ_CURVE_PUBLICKEY, client_public, 40)
                 || zmq_setsockopt(a->socket, ZMQ_CURVE_SECRETKEY, client_secret, 40);
        }
        if (rc) {
            fail(a, "CURVE options (is libzmq built with CURVE?)");
            return a;
        }
    }
    return a;
}

/* Binds `endpoint` and writes the endpoint actually bound (port resolved) to `bound`. */
int lza_bind(struct lza *a, const char *endpoint, char *bound, size_t bound_len)
{
    if (zmq_bind(a->socket, endpoint))
        return fail(a, "zmq_bind");
    if (zmq_getsockopt(a->socket, ZMQ_LAST_ENDPOINT, bound, &bound_len))
        return fail(a, "ZMQ_LAST_ENDPOINT");
    return 0;
}

int lza_connect(struct lza *a, const char *endpoint)
{
    if (zmq_connect(a->socket, endpoint))
        return fail(a, "zmq_connect");
    return 0;
}

/* Receives one frame; `*more` tells whether another one follows. */
static int recv_frame(struct lza *a, zmq_msg_t *msg, size_t *len, int *more)
{
    int rc;
    do {
        rc = zmq_msg_recv(msg, a->socket, 0);
    } while (rc < 0 && zmq_errno() == EINTR);
    if (rc < 0)
        return fail(a, "zmq_msg_recv");
    *len = zmq_msg_size(msg);
    *more = zmq_msg_more(msg);
    return 0;
}

/* Receives one message and checks its shape and body size. */
int lza_recv(struct lza *a, size_t size)
{
    zmq_msg_t msg;
    size_t len;
    int more;
    zmq_msg_init(&msg);
    if (a->router) {
        if (recv_frame(a, &msg, &len, &more)) {
            zmq_msg_close(&msg);
            return -1;
        }
        if (!more) {
            zmq_msg_close(&msg);
            snprintf(a->error, sizeof a->error, "expected 2 frame(s), got 1");
            return -1;
        }
    }
    if (recv_frame(a, &msg, &len, &more)) {
        zmq_msg_close(&msg);
        return -1;
    }
    zmq_msg_close(&msg);
    if (more) {
        snprintf(a->error, sizeof a->error, "expected %d frame(s), got more",
                 a->router ? 2 : 1);
        return -1;
    }
    if (len != size) {
        snprintf(a->error, sizeof a->error, "expected a %zu-byte body, got %zu bytes",
                 size, len);
        return -1;
    }
    return 0;
}

/*
 * REP: receives one request, whatever its frames, and sends it back as the reply
 * (the frames themselves, no copy).
 */
int lza_echo(struct lza *a)
{
    zmq_msg_t frames[MAX_ECHO_FRAMES];
    size_t n = 0, len;
    int more = 1, rc = 0;
    while (more) {
        if (n == MAX_ECHO_FRAMES) {
            snprintf(a->error, sizeof a->error, "a request of more than %d frames",
                     MAX_ECHO_FRAMES);
            rc = -1;
            break;
        }
        zmq_msg_init(&frames[n]);
        n++;
        if (recv_frame(a, &frames[n - 1], &len, &more)) {
            rc = -1;
            break;
        }
    }
    /* Sending a frame hands it to libzmq (which leaves the zmq_msg_t empty). */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int sent;
        do {
            sent = zmq_msg_send(&frames[i], a->socket, i + 1 < n ? ZMQ_SNDMORE : 0);
        } while (sent < 0 && zmq_errno() == EINTR);
        if (sent < 0)
            rc = fail(a, "zmq_msg_send");
    }
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&frames[i]);
    return rc;
}

/*
 * Receives one message, all its frames: `*frames` is their number, `*len` the size
 * of the first one, whose first min(*len, cap) bytes are copied to `buf`.
 */
int lza_recv_into(struct lza *a, void *buf, size_t cap, size_t *len, size_t *frames)
{
    zmq_msg_t msg;
    size_t frame_len;
    int more = 1;
    *frames = 0;
    *len = 0;
    zmq_msg_init(&msg);
    while (more) {
        if (recv_frame(a, &msg, &frame_len, &more)) {
            zmq_msg_close(&msg);
            return -1;
        }
        if (*frames == 0) {
            size_t copy = frame_len < cap ? frame_len : cap;
            *len = frame_len;
            if (copy)
                memcpy(buf, zmq_msg_data(&msg), copy);
        }
        ++*frames;
    }
    zmq_msg_close(&msg);
    return 0;
}

/* Sends one single-frame message (waits while the HWM is reached). */
int lza_send(struct lza *a, const void *body, size_t size)
{
    int rc;
    do {
        rc = zmq_send(a->socket, body, size, 0);
    } while (rc < 0 && zmq_errno() == EINTR);
    if (rc < 0)
        return fail(a, "zmq_send");
    return 0;
}

/* Closes the socket (what is queued still goes out, for up to LINGER_MS) and frees `a`. */
void lza_close(struct lza *a)
{
    if (!a)
        return;
    if (a->socket)
        zmq_close(a->socket);
    if (a->ctx) {
        while (zmq_ctx_term(a->ctx) < 0 && zmq_errno() == EINTR) {
        }
    }
    free(a);
}
