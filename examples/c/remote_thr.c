/* libzmq twin of examples/remote_thr.rs: a DEALER connects and sends COUNT messages
 * of SIZE bytes.
 *   cc -O2 -o remote_thr remote_thr.c -lzmq */
#include <zmq.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: remote_thr ENDPOINT MESSAGE_SIZE MESSAGE_COUNT\n");
        return 2;
    }
    size_t size = strtoul(argv[2], NULL, 10);
    long count = strtol(argv[3], NULL, 10);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    if (zmq_connect(s, argv[1]) != 0) { perror("connect"); return 1; }
    for (long i = 0; i < count; i++) {
        zmq_msg_t msg;
        zmq_msg_init_size(&msg, size);
        zmq_msg_send(&msg, s, 0);
    }
    int linger = -1;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}
