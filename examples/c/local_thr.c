/* libzmq twin of examples/local_thr.rs: a ROUTER binds, receives COUNT messages
 * from one DEALER and prints the rate.
 *   cc -O2 -o local_thr local_thr.c -lzmq */
#include <zmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: local_thr ENDPOINT MESSAGE_SIZE MESSAGE_COUNT\n");
        return 2;
    }
    size_t size = strtoul(argv[2], NULL, 10);
    long count = strtol(argv[3], NULL, 10);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    if (zmq_bind(s, argv[1]) != 0) { perror("bind"); return 1; }
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    double start = 0;
    for (long i = 0; i < count; i++) {
        zmq_msg_recv(&msg, s, 0);            /* routing id */
        zmq_msg_recv(&msg, s, 0);            /* body */
        if (zmq_msg_size(&msg) != size) { fprintf(stderr, "size mismatch\n"); return 1; }
        if (i == 0) start = now();
    }
    double rate = (count - 1) / (now() - start);
    printf("message size: %zu B, count: %ld, %.0f msg/s, %.1f Mb/s\n", size, count, rate,
           rate * size * 8 / 1e6);
    zmq_msg_close(&msg);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}
