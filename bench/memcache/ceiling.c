/* The ceiling of a sequential memcached client on this machine: `get`s in C
 * with nothing between the system calls, over the same servers and keys as
 * the benchmark's clients (key i goes to server i % servers; every key is on
 * every server). Blocking `recv` waits as pylibmc and pymemcache do; with
 * `poll` set it busy-polls the socket (non-blocking `recv` in a loop), which
 * is what netscript's spin before sleeping approaches.
 *
 * Usage: ceiling block|poll host:port[,host:port...] gets keys warm
 * Prints "<seconds> <misses>" like the benchmark's other clients. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SERVERS 16

static int busy;

/* One `get`; 1 when the key was found. */
static int get(int fd, long key) {
    char req[64], buf[4096];
    int n = snprintf(req, sizeof req, "get bench:%ld\r\n", key);
    if (send(fd, req, n, 0) != n) { perror("send"); exit(1); }
    size_t have = 0;
    for (;;) {
        ssize_t got = recv(fd, buf + have, sizeof buf - have, busy ? MSG_DONTWAIT : 0);
        if (got < 0 && busy && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        if (got <= 0) { perror("recv"); exit(1); }
        have += got;
        if (have >= 5 && memcmp(buf + have - 5, "END\r\n", 5) == 0) return have > 5;
        if (have == sizeof buf) { fprintf(stderr, "reply too long\n"); exit(1); }
    }
}

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: ceiling block|poll servers gets keys warm\n"); return 2; }
    busy = strcmp(argv[1], "poll") == 0;
    long gets = atol(argv[3]), keys = atol(argv[4]), warm = atol(argv[5]);
    int fds[MAX_SERVERS], count = 0;
    for (char *s = strtok(argv[2], ","); s && count < MAX_SERVERS; s = strtok(NULL, ",")) {
        char *colon = strrchr(s, ':');
        *colon = 0;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(colon + 1))};
        inet_pton(AF_INET, s, &a.sin_addr);
        int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 1; }
        fds[count++] = fd;
    }
    for (long i = 0; i < warm; i++) get(fds[i % count], i % keys);
    long misses = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < gets; i++) misses += !get(fds[i % count], i % keys);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%.9f %ld\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, misses);
    return 0;
}
