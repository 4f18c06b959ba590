/*
 * nodelay PID...: for every TCP socket of each process, prints
 *   NODELAY <pid> <comm> <fd> <local> <peer> <state: listen|conn> <0|1>
 * where the last field is getsockopt(TCP_NODELAY). `ss -tinp` cannot show
 * this option (it is not part of tcp_info), so the socket itself is asked:
 * pidfd_getfd(2) duplicates the process's descriptor into this one (needs
 * ptrace rights over the target: root, or the same user with
 * ptrace_scope 0), and the duplicate shares the open socket.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "parse.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

static void
addr_str(const struct sockaddr_storage *ss, char *out, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
    }
    snprintf(out, len, "%s:%u", host, port);
}

static int
scan(pid_t pid)
{
    char path[64], comm[64] = "?";
    struct dirent *de;
    DIR *d;
    FILE *f;
    int pfd;

    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    if ((f = fopen(path, "r")) != NULL) {
        if (fgets(comm, sizeof(comm), f) != NULL)
            comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
    }
    pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pfd < 0) {
        fprintf(stderr, "nodelay: pidfd_open %d: %s\n", (int)pid, strerror(errno));
        return 1;
    }
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    if ((d = opendir(path)) == NULL) {
        close(pfd);
        return 1;
    }
    while ((de = readdir(d)) != NULL) {
        char link[128], lpath[400], la[80], pa[80];
        struct sockaddr_storage ls, ps;
        socklen_t sl = sizeof(ls), pl = sizeof(ps);
        int fd, type = 0, acc = 0, nd = -1, dom = 0;
        socklen_t ol = sizeof(int);
        ssize_t n;
        long fdnum;

        if (de->d_name[0] == '.')
            continue;
        snprintf(lpath, sizeof(lpath), "%s/%s", path, de->d_name);
        n = readlink(lpath, link, sizeof(link) - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        if (strncmp(link, "socket:", 7) != 0)
            continue;
        if (parse_long("fd", de->d_name, 0, INT_MAX, &fdnum) != 0)
            continue;
        fd = (int)syscall(SYS_pidfd_getfd, pfd, (int)fdnum, 0);
        if (fd < 0)
            continue;
        getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &ol);
        ol = sizeof(int);
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ol);
        if ((dom == AF_INET || dom == AF_INET6) && type == SOCK_STREAM) {
            ol = sizeof(int);
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &ol);
            ol = sizeof(int);
            getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nd, &ol);
            memset(&ls, 0, sizeof(ls));
            memset(&ps, 0, sizeof(ps));
            getsockname(fd, (struct sockaddr *)&ls, &sl);
            if (getpeername(fd, (struct sockaddr *)&ps, &pl) != 0)
                snprintf(pa, sizeof(pa), "-");
            else
                addr_str(&ps, pa, sizeof(pa));
            addr_str(&ls, la, sizeof(la));
            printf("NODELAY %d %s %s %s %s %s %d\n", (int)pid, comm, de->d_name, la, pa,
                   acc ? "listen" : "conn", nd);
        }
        close(fd);
    }
    closedir(d);
    close(pfd);
    return 0;
}

int
main(int argc, char **argv)
{
    long pid;
    int i, r = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: nodelay PID...\n");
        return 2;
    }
    for (i = 1; i < argc; i++) {
        if (parse_long("PID", argv[i], 1, INT_MAX, &pid) != 0)
            return 2;
        r |= scan((pid_t)pid);
    }
    return r;
}
