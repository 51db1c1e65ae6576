/*
 * The libzmq side of `anchor-libzmq`: one socket and the few calls the benchmark
 * makes on it, behind a small C API that src/bin/anchor-libzmq.rs declares. The Rust
 * side parses the command line, keeps the clock and prints READY/RESULT, exactly as
 * for the other anchors; this file only talks to libzmq (the system's 4.3).
 *
 * Every function returns 0 on success and -1 on failure, with the reason in
 * lza_error(). Messages are checked like zmtp-bench checks them: PULL gets [body],
 * ROUTER gets [id, body], and the body must have the expected size.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* How long closing waits for queued messages to go out (ZMQ_LINGER), in ms. */
#define LINGER_MS 60000

struct lza {
    void *ctx;
    void *socket;
    int receiver;
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
 * A new socket: the receiver of `pattern` (0 pushpull, 1 dealerrouter) if
 * `receiver`, else its sender. With `curve`, the receiver is a CURVE server with
 * `server_secret`, the sender a CURVE client with `client_public`/`client_secret`
 * that trusts `server_public` (all Z85, 40 characters). NULL if out of memory;
 * otherwise check lza_error() is empty (free with lza_close() either way).
 */
struct lza *lza_open(int receiver, int pattern, int hwm, int curve,
                     const char *server_public, const char *server_secret,
                     const char *client_public, const char *client_secret)
{
    struct lza *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->receiver = receiver;
    a->router = receiver && pattern == 1;
    a->ctx = zmq_ctx_new();
    if (!a->ctx) {
        fail(a, "zmq_ctx_new");
        return a;
    }
    int type = pattern == 1 ? (receiver ? ZMQ_ROUTER : ZMQ_DEALER)
                            : (receiver ? ZMQ_PULL : ZMQ_PUSH);
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
        if (receiver) {
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
