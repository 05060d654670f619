/*
 * wasix.h: the WASIX socket, process and futex imports a guest needs to serve HTTP itself
 * ("proxy mode"), declared for wasm32 with their exact core signatures, plus small helpers.
 *
 * Every WASIX import is from module "wasix_32v1" and returns a WASI errno (a u16, as i32; 0 is
 * success); results come back through pointers. sock_shutdown is the preview1 one
 * ("wasi_snapshot_preview1"). Only the imports a program actually calls end up in its module.
 *
 *   sock_open(af u8, socktype u8, proto u16, ret_fd*)           af 1 inet4; type 1 stream; 6 tcp
 *   sock_bind(fd, const addr_port*)
 *   sock_listen(fd, backlog)
 *   sock_accept_v2(fd, fdflags u16, ret_fd*, ret_addr_port*)     fdflags 4 = the new fd nonblocking
 *   sock_addr_local(fd, ret_addr_port*) / sock_addr_peer(fd, ret_addr_port*)
 *   sock_set_opt_flag(fd, opt u8, flag u8)                        opt 2 reuse_addr, 3 no_delay
 *   sock_shutdown(fd, how u8)                                     preview1; 1 rd, 2 wr, 3 both
 *   proc_id(ret_pid u32*)
 *   thread_id(ret_tid i32*)
 *   futex_wait(addr u32*, expected u32, const option_timestamp*, ret_woken u8*)
 *   futex_wake(addr u32*, ret_woken u8*) / futex_wake_all(addr u32*, ret_woken u8*)
 *
 * Socket fds are ordinary fds to wasi-libc: read()/write()/close() become fd_read/fd_write/
 * fd_close, fcntl(F_SETFL, O_NONBLOCK) fd_fdstat_set_flags, poll() poll_oneoff.
 *
 * Outside Wasm (`node actors/build.ts --native`) the helpers wasix_listen_tcp, wasix_accept,
 * wasix_set_nodelay, wasix_shutdown and wasix_pid are the same calls on BSD sockets, so a server
 * also builds as a native program; the errno values they report are then the host's, not WASI's.
 */
#ifndef WEFT_WASIX_H
#define WEFT_WASIX_H

#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#define WASIX_AF_INET4 1
#define WASIX_SOCK_STREAM 1
#define WASIX_PROTO_TCP 6
#define WASIX_SOCKOPT_REUSE_ADDR 2
#define WASIX_SOCKOPT_NO_DELAY 3
#define WASIX_FDFLAGS_NONBLOCK 4
#define WASIX_SHUT_RD 1
#define WASIX_SHUT_WR 2

/*
 * A socket address with port: 110 bytes, 2-aligned. tag is the address family (0 unspec,
 * 1 inet4, 2 inet6, 3 unix). For inet4, port is the numeric port in native (little-endian) byte
 * order and addr the four octets in network order (127.0.0.1 is {127, 0, 0, 1}).
 */
typedef struct wasix_addr_port {
  uint8_t tag;
  uint8_t pad;
  uint16_t port;
  uint8_t addr[4];
  uint8_t rest[102];
} wasix_addr_port;
_Static_assert(sizeof(wasix_addr_port) == 110, "addr_port is 110 bytes");
_Static_assert(_Alignof(wasix_addr_port) == 2, "addr_port is 2-aligned");

/* option<timestamp>: 16 bytes, 8-aligned; tag 0 = none (wait forever), 1 = some(ns). */
typedef struct wasix_option_timestamp {
  uint8_t tag;
  uint64_t ns;
} wasix_option_timestamp;
_Static_assert(sizeof(wasix_option_timestamp) == 16, "option_timestamp is 16 bytes");

/* Writes all n bytes of p to a blocking fd; 1 on success, 0 once a write fails. */
static inline int wasix_write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) return 0;
    p += w;
    n -= (size_t)w;
  }
  return 1;
}

#ifdef __wasi__

#define WASIX_ERRNO_AGAIN 6 /* WASI errno `again`: EAGAIN in wasi-libc */

#define WASIX_IMPORT(name) __attribute__((import_module("wasix_32v1"), import_name(name)))

WASIX_IMPORT("sock_open")
int32_t wasix_sock_open(uint8_t af, uint8_t socktype, uint16_t proto, int32_t *ret_fd);
WASIX_IMPORT("sock_bind") int32_t wasix_sock_bind(int32_t fd, const wasix_addr_port *addr);
WASIX_IMPORT("sock_listen") int32_t wasix_sock_listen(int32_t fd, int32_t backlog);
WASIX_IMPORT("sock_accept_v2")
int32_t wasix_sock_accept_v2(int32_t fd, uint16_t fdflags, int32_t *ret_fd,
                             wasix_addr_port *ret_addr);
WASIX_IMPORT("sock_addr_local")
int32_t wasix_sock_addr_local(int32_t fd, wasix_addr_port *ret_addr);
WASIX_IMPORT("sock_addr_peer")
int32_t wasix_sock_addr_peer(int32_t fd, wasix_addr_port *ret_addr);
WASIX_IMPORT("sock_set_opt_flag")
int32_t wasix_sock_set_opt_flag(int32_t fd, uint8_t opt, uint8_t flag);
WASIX_IMPORT("proc_id") int32_t wasix_proc_id(uint32_t *ret_pid);
WASIX_IMPORT("thread_id") int32_t wasix_thread_id(int32_t *ret_tid);
WASIX_IMPORT("futex_wait")
int32_t wasix_futex_wait(uint32_t *addr, uint32_t expected, const wasix_option_timestamp *timeout,
                         uint8_t *ret_woken);
WASIX_IMPORT("futex_wake") int32_t wasix_futex_wake(uint32_t *addr, uint8_t *ret_woken);
WASIX_IMPORT("futex_wake_all") int32_t wasix_futex_wake_all(uint32_t *addr, uint8_t *ret_woken);
__attribute__((import_module("wasi_snapshot_preview1"), import_name("sock_shutdown")))
int32_t wasix_sock_shutdown(int32_t fd, uint8_t how);

/*
 * A TCP listener on 0.0.0.0:port: sock_open(inet4, stream, tcp), reuse_addr, bind, listen.
 * Returns the fd, or -1 with the WASI errno of the failing call in *errno_out.
 */
static inline int wasix_listen_tcp(uint16_t port, int backlog, int *errno_out) {
  int32_t fd = -1;
  int32_t e = wasix_sock_open(WASIX_AF_INET4, WASIX_SOCK_STREAM, WASIX_PROTO_TCP, &fd);
  if (e == 0) {
    wasix_sock_set_opt_flag(fd, WASIX_SOCKOPT_REUSE_ADDR, 1); /* advisory: failure is not fatal */
    wasix_addr_port addr = {0};
    addr.tag = WASIX_AF_INET4;
    addr.port = port;
    e = wasix_sock_bind(fd, &addr);
    if (e == 0) e = wasix_sock_listen(fd, backlog);
    if (e != 0) close(fd);
  }
  if (e != 0) {
    if (errno_out) *errno_out = e;
    return -1;
  }
  return fd;
}

/*
 * Accepts one connection on lfd (sock_accept_v2). nonblock makes the new fd nonblocking; a
 * nonblocking listener with nothing pending gives -1 with WASIX_ERRNO_AGAIN (6).
 */
static inline int wasix_accept(int lfd, int nonblock, int *errno_out) {
  int32_t fd = -1;
  wasix_addr_port peer;
  int32_t e = wasix_sock_accept_v2(lfd, nonblock ? WASIX_FDFLAGS_NONBLOCK : 0, &fd, &peer);
  if (e != 0) {
    if (errno_out) *errno_out = e;
    return -1;
  }
  return fd;
}

/* Turns off Nagle's algorithm on a connection (sock_set_opt_flag no_delay); errors ignored. */
static inline void wasix_set_nodelay(int fd) {
  wasix_sock_set_opt_flag(fd, WASIX_SOCKOPT_NO_DELAY, 1);
}

/* Shuts down one or both directions of a connection (how: WASIX_SHUT_RD|WASIX_SHUT_WR). */
static inline int wasix_shutdown(int fd, int how) { return wasix_sock_shutdown(fd, (uint8_t)how); }

/* This instance's process id (proc_id), or 0 when the call fails. */
static inline uint32_t wasix_pid(void) {
  uint32_t pid = 0;
  return wasix_proc_id(&pid) == 0 ? pid : 0;
}

#else /* native build: the same helpers on BSD sockets */

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define WASIX_ERRNO_AGAIN EAGAIN

static inline int wasix_listen_tcp(uint16_t port, int backlog, int *errno_out) {
  int fd = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  if (fd >= 0) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, backlog) == 0) return fd;
    int saved = errno;
    close(fd);
    errno = saved;
  }
  if (errno_out) *errno_out = errno;
  return -1;
}

static inline int wasix_accept(int lfd, int nonblock, int *errno_out) {
  int fd = accept(lfd, NULL, NULL);
  if (fd < 0) {
    if (errno_out) *errno_out = errno == EWOULDBLOCK ? EAGAIN : errno;
    return -1;
  }
  if (nonblock) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

static inline void wasix_set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static inline int wasix_shutdown(int fd, int how) {
  return shutdown(fd, how == (WASIX_SHUT_RD | WASIX_SHUT_WR) ? SHUT_RDWR
                      : how == WASIX_SHUT_WR                 ? SHUT_WR
                                                             : SHUT_RD);
}

static inline uint32_t wasix_pid(void) { return (uint32_t)getpid(); }

#endif /* __wasi__ */

#endif /* WEFT_WASIX_H */
