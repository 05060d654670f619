/*
 * httpd: a proxy-mode actor, a long-lived HTTP/1.1 server on its own WASIX socket.
 *
 * One thread, one event loop: a nonblocking listener on 0.0.0.0:$PORT (default 80) and
 * nonblocking connections, multiplexed with poll_oneoff. Logs "httpd listening on port N" to
 * stderr once listening; if it cannot listen it logs "httpd: listen on port N failed: errno E"
 * and exits 1.
 *
 * Imports: wasix_32v1 sock_open, sock_set_opt_flag, sock_bind, sock_listen, sock_accept_v2,
 * proc_id (through actors/include/wasix.h); wasi_snapshot_preview1 fd_read, fd_write, fd_close,
 * fd_fdstat_set_flags (fcntl O_NONBLOCK on the listener), poll_oneoff, plus what wasi-libc's
 * start-up uses (environ, args, proc_exit).
 *
 * HTTP: keep-alive by default for HTTP/1.1 (`Connection: close` honoured), HTTP/1.0 closes
 * unless it asks for keep-alive; pipelined requests are answered in order. Request bodies come
 * with Content-Length or chunked Transfer-Encoding (decoded; trailers dropped), up to 64 MiB
 * (larger: 413 and close); `Expect: 100-continue` gets a 100 Continue. A malformed request gets
 * 400 (431 for a head over 64 KiB or 100 fields, 501 for other transfer codings, 505 for
 * HTTP/2+) and the connection is closed. HEAD gets the GET head without a body. Every response
 * has a Content-Type and a Content-Length, except /chunked and /stream.
 *
 * Routes, for any method. A leading `/proxy` path segment is stripped first (the manifest routes
 * /proxy/... here and the gateway passes the full path), so /proxy/hello is /hello:
 *   /  and  /hello?name=X  200 text/plain "Hello, X!\n" (the hello actor's rules: URL-decoded,
 *                          '+' a space, capped at 200 bytes, default "world"); no allocation
 *   /echo                  200 application/octet-stream, the request body byte for byte
 *   /bytes?n=N             200 application/octet-stream, N bytes (0..64 MiB), byte i = i % 251
 *   /chunked?n=N           200 text/plain, chunked: N chunks (0..1000000), chunk i is
 *                          "chunk <i>\n" for i = 0..N-1, then the last chunk
 *   /stats                 200 application/json {"pid":P,"requests":R,"connections":C,"open":O}:
 *                          requests answered by this instance (this one included), connections
 *                          accepted, connections open now
 *   /headers               200 application/json, the request's header fields as received: an
 *                          object of lower-cased names in first-seen order, repeats joined ", "
 *   /stream?n=N            200 text/plain, chunked: N chunks (default 3, at most 1000), chunk i
 *                          is "part <i>\n", sent at once; then the response is parked: it stays
 *                          open, sending nothing, until a /release on another connection
 *   /release               200 text/plain "released K\n", K the number of parked /stream
 *                          responses; each then sends a last chunk "end\n" and the terminating
 *                          chunk, and its connection carries on with its next request
 *   anything else          404 text/plain "not found\n"
 * A missing or bad n is 400 (for /stream only a bad one).
 *
 * Parking: a parked connection is flagged (struct conn's `parked`) and stays in the poll set for
 * input only, so the loop keeps serving everyone else; requests it pipelines meanwhile are
 * buffered (up to MAX_HEAD, then it is not polled until released) and answered after the
 * release. If its client hangs up (EOF or an error) it is closed like any other connection.
 * /release scans the open connections for the flag, queues the end of each parked response and
 * marks it for writing; the loop then sends it on the connection's next turn.
 *
 * Natively (`node actors/build.ts --native`) the same code is a plain Linux server using poll().
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#ifdef __wasi__
#include <wasi/api.h>
#else
#include <signal.h>
#endif

#include "http1.h"
#include "wasix.h"

#define MAX_CONNS 4096
#define MAX_HEAD (64 * 1024)
#define MAX_BODY (64u << 20)
#define MAX_CHUNKS 1000000
#define MAX_PARTS 1000
#define BUF_INIT 4096
#define RBUF_KEEP (64 * 1024)   /* an idle connection's read buffer shrinks back to this */
#define CHUNK_BATCH (16 * 1024) /* /chunked output is formatted this much at a time */
#define DRAIN_MS 2000           /* how long a closing connection's input is still drained */
#define DRAIN_MAX (1024 * 1024) /* and how much of it at most */

enum { SRC_NONE, SRC_RBUF, SRC_PATTERN, SRC_CHUNKS };

struct conn {
  int fd;
  char *rbuf, *wbuf;
  size_t rlen, rcap, wlen, woff, wcap;
  /* the request being received */
  size_t head_len; /* 0 until its head is complete */
  int64_t clen;    /* Content-Length (0 when absent), -1 for a chunked body */
  struct http_chunked ch;
  int expect_continue, continue_sent, overflow, peer_eof;
  /* the response being sent: wbuf, then a streamed body */
  size_t consume;  /* request bytes to drop from rbuf once the response is out */
  int close_after; /* close once the response is out */
  int src;
  uint64_t src_off, src_len; /* rbuf offset, pattern position or next chunk; bytes or chunks left */
  int want_write;
  int parked; /* a /stream response waiting for a /release: input only, no next request */
  /* closing: our side is shut down, input is read and dropped until EOF or the deadline */
  int draining;
  int64_t drain_deadline;
  size_t drained;
};

static struct conn *conns[MAX_CONNS];
static size_t nconns, ndraining;
static uint64_t stat_requests, stat_connections;
static uint32_t pid;
static struct http_request req;   /* single-threaded: one parse at a time */
static char pattern[65536 + 251]; /* pattern[i] = i % 251, for /bytes */
static char *scratch;             /* bodies built before their head (JSON, messages) */
static size_t scratch_len, scratch_cap;

/* ---- buffers ---- */

static int reserve(char **buf, size_t *cap, size_t need) {
  if (need <= *cap) return 1;
  size_t n = *cap ? *cap : BUF_INIT;
  while (n < need) n *= 2;
  char *p = realloc(*buf, n);
  if (!p) return 0;
  *buf = p;
  *cap = n;
  return 1;
}

static int wput(struct conn *c, const void *data, size_t n) {
  if (!reserve(&c->wbuf, &c->wcap, c->wlen + n)) return 0;
  memcpy(c->wbuf + c->wlen, data, n);
  c->wlen += n;
  return 1;
}

static void sput(const void *data, size_t n) {
  if (!reserve(&scratch, &scratch_cap, scratch_len + n)) abort();
  memcpy(scratch + scratch_len, data, n);
  scratch_len += n;
}

static void sputs(const char *s) { sput(s, strlen(s)); }

static void sput_u64(uint64_t v) {
  char d[20];
  sput(d, http_utoa(d, v));
}

/* s[0..n) escaped for a JSON string (without the quotes), optionally lower-cased. */
static void sput_json(const char *s, size_t n, int lower) {
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\') {
      char e[2] = {'\\', (char)ch};
      sput(e, 2);
    } else if (ch < 0x20 || ch == 0x7f) {
      char e[7];
      snprintf(e, sizeof e, "\\u%04x", ch);
      sput(e, 6);
    } else {
      char o = (char)(lower ? http_lower(ch) : ch);
      sput(&o, 1);
    }
  }
}

/* ---- responses ---- */

/* Queues a response whose body is in body[0..n) (not sent for HEAD). */
static int respond(struct conn *c, int status, const char *type, const char *body, size_t n,
                   int connection, int head_only) {
  if (!reserve(&c->wbuf, &c->wcap, c->wlen + strlen(type) + HTTP_HEAD_ROOM + n)) return 0;
  c->wlen += http_write_head(c->wbuf + c->wlen, status, type, (int64_t)n, connection);
  if (!head_only) {
    memcpy(c->wbuf + c->wlen, body, n);
    c->wlen += n;
  }
  return 1;
}

/* A text/plain error answer that closes the connection. */
static int fail(struct conn *c, int status, const char *message) {
  c->close_after = 1;
  c->consume = 0;
  stat_requests++;
  return respond(c, status, "text/plain; charset=utf-8", message, strlen(message),
                 HTTP_CONN_CLOSE, 0);
}

static int hello(struct conn *c, const struct http_request *r, int connection, int head_only) {
  unsigned char name[HTTP_HELLO_NAME_MAX];
  size_t n = http_hello_name(r->query, r->query_len, name);
  static const char type[] = "text/plain; charset=utf-8";
  if (!reserve(&c->wbuf, &c->wcap, c->wlen + sizeof type + HTTP_HEAD_ROOM + n + 9)) return 0;
  char *p = c->wbuf + c->wlen;
  p += http_write_head(p, 200, type, (int64_t)(n + 9), connection);
  if (!head_only) {
    memcpy(p, "Hello, ", 7);
    memcpy(p + 7, name, n);
    memcpy(p + 7 + n, "!\n", 2);
    p += n + 9;
  }
  c->wlen = (size_t)(p - c->wbuf);
  return 1;
}

static int headers_json(struct conn *c, const struct http_request *r, int connection,
                        int head_only) {
  scratch_len = 0;
  sputs("{");
  int first = 1;
  for (size_t i = 0; i < r->nheaders; i++) {
    const struct http_header *h = &r->headers[i];
    size_t j = 0;
    while (j < i && !(r->headers[j].name_len == h->name_len &&
                      strncasecmp(r->headers[j].name, h->name, h->name_len) == 0))
      j++;
    if (j < i) continue; /* already written with the first field of that name */
    sputs(first ? "\"" : ",\"");
    first = 0;
    sput_json(h->name, h->name_len, 1);
    sputs("\":\"");
    for (size_t k = i, n = 0; k < r->nheaders; k++) {
      const struct http_header *g = &r->headers[k];
      if (g->name_len != h->name_len || strncasecmp(g->name, h->name, h->name_len) != 0) continue;
      if (n++) sputs(", ");
      sput_json(g->value, g->value_len, 0);
    }
    sputs("\"");
  }
  sputs("}\n");
  return respond(c, 200, "application/json", scratch, scratch_len, connection, head_only);
}

/* The `n` query parameter as a number in 0..max, or -1 when missing or malformed. */
static int64_t query_n(const struct http_request *r, uint64_t max) {
  const char *v;
  size_t vn;
  uint64_t n;
  if (!http_query_param(r->query, r->query_len, "n", &v, &vn)) return -1;
  return http_parse_u64(v, vn, max, &n) ? (int64_t)n : -1;
}

/* Queues data[0..n) (n > 0) as one chunk of a chunked body. */
static int wput_chunk(struct conn *c, const char *data, size_t n) {
  static const char hex[] = "0123456789abcdef";
  char size[20];
  char *q = size + sizeof size;
  *--q = '\n';
  *--q = '\r';
  for (size_t v = n; v; v >>= 4) *--q = hex[v & 15];
  return wput(c, q, (size_t)(size + sizeof size - q)) && wput(c, data, n) && wput(c, "\r\n", 2);
}

/* Ends every parked /stream response and queues it for sending; returns how many. Only flags
 * and buffers change here: the loop sends on each connection's next turn (no connection is
 * serviced or closed from inside another's request). */
static uint64_t release_parked(void) {
  static const char end[] = "4\r\nend\n\r\n0\r\n\r\n";
  uint64_t k = 0;
  for (size_t i = 0; i < nconns; i++) {
    struct conn *p = conns[i];
    if (!p->parked) continue;
    p->parked = 0;
    p->want_write = 1;
    if (wput(p, end, sizeof end - 1)) k++;
    else p->close_after = 1; /* out of memory: the response ends cut short */
  }
  return k;
}

static int path_is(const char *p, size_t n, const char *s) {
  return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* Queues the answer to the complete request r, whose body is rbuf[body_off..+body_len). */
static int handle(struct conn *c, const struct http_request *r, size_t body_off, size_t body_len) {
  const char *path = r->path;
  size_t plen = r->path_len;
  if (plen >= 6 && memcmp(path, "/proxy", 6) == 0 && (plen == 6 || path[6] == '/')) {
    path += 6;
    plen -= 6;
    if (plen == 0) path = "/", plen = 1;
  }
  int head_only = r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0;
  int connection = http_connection_for(r);
  c->close_after = !r->keep_alive;
  stat_requests++;

  if (path_is(path, plen, "/") || path_is(path, plen, "/hello"))
    return hello(c, r, connection, head_only);
  if (path_is(path, plen, "/echo")) {
    if (!reserve(&c->wbuf, &c->wcap, c->wlen + HTTP_HEAD_ROOM + 32)) return 0;
    c->wlen += http_write_head(c->wbuf + c->wlen, 200, "application/octet-stream",
                               (int64_t)body_len, connection);
    if (!head_only && body_len) { /* the body goes out straight from the read buffer */
      c->src = SRC_RBUF;
      c->src_off = body_off;
      c->src_len = body_len;
    }
    return 1;
  }
  if (path_is(path, plen, "/bytes")) {
    int64_t n = query_n(r, MAX_BODY);
    if (n < 0) {
      static const char msg[] = "n must be an integer from 0 to 67108864\n";
      return respond(c, 400, "text/plain; charset=utf-8", msg, sizeof msg - 1, connection,
                     head_only);
    }
    if (!reserve(&c->wbuf, &c->wcap, c->wlen + HTTP_HEAD_ROOM + 32)) return 0;
    c->wlen += http_write_head(c->wbuf + c->wlen, 200, "application/octet-stream", n, connection);
    if (!head_only && n) {
      c->src = SRC_PATTERN;
      c->src_off = 0;
      c->src_len = (uint64_t)n;
    }
    return 1;
  }
  if (path_is(path, plen, "/chunked")) {
    int64_t n = query_n(r, MAX_CHUNKS);
    if (n < 0) {
      static const char msg[] = "n must be an integer from 0 to 1000000\n";
      return respond(c, 400, "text/plain; charset=utf-8", msg, sizeof msg - 1, connection,
                     head_only);
    }
    if (!reserve(&c->wbuf, &c->wcap, c->wlen + HTTP_HEAD_ROOM + 32)) return 0;
    c->wlen += http_write_head(c->wbuf + c->wlen, 200, "text/plain; charset=utf-8", -1, connection);
    if (!head_only) {
      c->src = SRC_CHUNKS;
      c->src_off = 0;
      c->src_len = (uint64_t)n;
    }
    return 1;
  }
  if (path_is(path, plen, "/stats")) {
    scratch_len = 0;
    sputs("{\"pid\":");
    sput_u64(pid);
    sputs(",\"requests\":");
    sput_u64(stat_requests);
    sputs(",\"connections\":");
    sput_u64(stat_connections);
    sputs(",\"open\":");
    sput_u64(nconns);
    sputs("}\n");
    return respond(c, 200, "application/json", scratch, scratch_len, connection, head_only);
  }
  if (path_is(path, plen, "/headers")) return headers_json(c, r, connection, head_only);
  if (path_is(path, plen, "/stream")) {
    const char *v;
    size_t vn;
    uint64_t n = 3;
    if (http_query_param(r->query, r->query_len, "n", &v, &vn) &&
        !http_parse_u64(v, vn, MAX_PARTS, &n)) {
      static const char msg[] = "n must be an integer from 0 to 1000\n";
      return respond(c, 400, "text/plain; charset=utf-8", msg, sizeof msg - 1, connection,
                     head_only);
    }
    if (!reserve(&c->wbuf, &c->wcap, c->wlen + HTTP_HEAD_ROOM + 32)) return 0;
    c->wlen += http_write_head(c->wbuf + c->wlen, 200, "text/plain; charset=utf-8", -1, connection);
    if (head_only) return 1;
    for (uint64_t i = 0; i < n; i++) {
      char part[32];
      size_t pn = 5 + http_utoa(part + 5, i);
      memcpy(part, "part ", 5);
      part[pn++] = '\n';
      if (!wput_chunk(c, part, pn)) return 0;
    }
    c->parked = 1; /* service() sends the parts, then waits for a /release */
    return 1;
  }
  if (path_is(path, plen, "/release")) {
    char msg[40];
    memcpy(msg, "released ", 9);
    size_t mn = 9 + http_utoa(msg + 9, release_parked());
    msg[mn++] = '\n';
    return respond(c, 200, "text/plain; charset=utf-8", msg, mn, connection, head_only);
  }
  static const char nf[] = "not found\n";
  return respond(c, 404, "text/plain; charset=utf-8", nf, sizeof nf - 1, connection, head_only);
}

/* ---- connections ---- */

/* Sends what is queued: wbuf, then the streamed body. 1 when all is out, 0 when the socket is
 * full (wait for POLLOUT), -1 on error. */
static int flush(struct conn *c) {
  for (;;) {
    while (c->woff < c->wlen) {
      ssize_t n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
      if (n > 0) {
        c->woff += (size_t)n;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
      }
    }
    c->woff = c->wlen = 0;
    if (c->src == SRC_NONE) return 1;
    if (c->src == SRC_CHUNKS) { /* format a batch of chunks into wbuf, then write it */
      char line[64];
      while (c->src_off < c->src_len && c->wlen < CHUNK_BATCH) {
        char *p = line + 32; /* data "chunk <i>\n", preceded by its size line */
        memcpy(p, "chunk ", 6);
        size_t dn = 6 + http_utoa(p + 6, c->src_off);
        p[dn++] = '\n';
        p[dn++] = '\r';
        p[dn++] = '\n';
        static const char hex[] = "0123456789abcdef";
        char *q = line + 32;
        *--q = '\n';
        *--q = '\r';
        for (size_t v = dn - 2; v; v >>= 4) *--q = hex[v & 15];
        if (!wput(c, q, (size_t)(p + dn - q))) return -1;
        c->src_off++;
      }
      if (c->src_off == c->src_len) {
        if (!wput(c, "0\r\n\r\n", 5)) return -1;
        c->src = SRC_NONE;
      }
      continue;
    }
    while (c->src_len > 0) {
      const char *data;
      size_t n = c->src_len > 65536 ? 65536 : (size_t)c->src_len;
      if (c->src == SRC_RBUF) data = c->rbuf + c->src_off;
      else data = pattern + c->src_off % 251;
      ssize_t w = write(c->fd, data, n);
      if (w > 0) {
        c->src_off += (uint64_t)w;
        c->src_len -= (uint64_t)w;
      } else if (w < 0 && errno == EINTR) {
        continue;
      } else {
        return w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
      }
    }
    c->src = SRC_NONE;
    return 1;
  }
}

/* Queues "100 Continue" when the client waits for it; always 0 (more input needed). */
static int need_more(struct conn *c) {
  if (c->overflow) return fail(c, 413, "request body too large\n") ? 1 : -1;
  if (c->expect_continue && !c->continue_sent) {
    c->continue_sent = 1;
    if (!wput(c, "HTTP/1.1 100 Continue\r\n\r\n", 25)) return -1;
  }
  return 0;
}

/* Answers the next request in rbuf if it is complete: 1 when a response was queued, 0 when more
 * input is needed, -1 to drop the connection. */
static int step(struct conn *c) {
  if (!c->head_len) {
    if (c->rlen == 0) return 0;
    int r = http_parse_head(c->rbuf, c->rlen, MAX_HEAD, &req);
    if (r == HTTP_INCOMPLETE) return 0;
    if (r < 0) {
      static const char *const msg[] = {"malformed request\n", "request head too large\n",
                                        "transfer coding not supported\n",
                                        "HTTP version not supported\n"};
      int i = r == HTTP_HEAD_TOO_LARGE    ? 1
              : r == HTTP_NOT_IMPLEMENTED ? 2
              : r == HTTP_BAD_VERSION     ? 3
                                          : 0;
      return fail(c, r == HTTP_BAD ? 400 : -r, msg[i]) ? 1 : -1;
    }
    if (req.content_length > (int64_t)MAX_BODY)
      return fail(c, 413, "request body too large\n") ? 1 : -1;
    c->head_len = (size_t)r;
    c->clen = req.chunked ? -1 : req.content_length < 0 ? 0 : req.content_length;
    memset(&c->ch, 0, sizeof c->ch);
    c->expect_continue = req.expect_continue && req.minor >= 1;
    c->continue_sent = c->overflow = 0;
  }
  size_t body_raw, body_len;
  if (c->clen < 0) {
    int s = http_chunked_step(c->rbuf + c->head_len, c->rlen - c->head_len, MAX_BODY, &c->ch);
    if (s == HTTP_BODY_TOO_LARGE) return fail(c, 413, "request body too large\n") ? 1 : -1;
    if (s < 0) return fail(c, 400, "malformed chunked body\n") ? 1 : -1;
    if (s == 0) return need_more(c);
    body_raw = c->ch.raw;
    body_len = c->ch.out;
  } else {
    if (c->rlen - c->head_len < (size_t)c->clen) return need_more(c);
    body_raw = body_len = (size_t)c->clen;
  }
  http_parse_head(c->rbuf, c->head_len, MAX_HEAD, &req); /* again: a chunked body moved bytes */
  c->consume = c->head_len + body_raw;
  size_t body_off = c->head_len;
  c->head_len = 0;
  return handle(c, &req, body_off, body_len) ? 1 : -1;
}

static void conn_close(struct conn *c) {
  if (c->draining) ndraining--;
  close(c->fd);
  free(c->rbuf);
  free(c->wbuf);
  for (size_t i = 0; i < nconns; i++)
    if (conns[i] == c) {
      conns[i] = conns[--nconns];
      break;
    }
  free(c);
}

/* Drops the answered request from rbuf, keeping what was pipelined after it. */
static void consume(struct conn *c) {
  size_t k = c->consume;
  c->consume = 0;
  if (k > c->rlen) k = c->rlen;
  memmove(c->rbuf, c->rbuf + k, c->rlen - k);
  c->rlen -= k;
  if (c->rcap > RBUF_KEEP && c->rlen <= RBUF_KEEP) {
    char *p = realloc(c->rbuf, RBUF_KEEP);
    if (p) {
      c->rbuf = p;
      c->rcap = RBUF_KEEP;
    }
  }
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads and drops input on a closing connection; closes it at EOF, on error or past the limit. */
static void drain(struct conn *c) {
  static char junk[65536];
  for (;;) {
    ssize_t n = read(c->fd, junk, sizeof junk);
    if (n > 0 && (c->drained += (size_t)n) <= DRAIN_MAX) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    conn_close(c);
    return;
  }
}

/*
 * Closes gracefully once the last response is out: shuts down our side, then drains what the
 * client still sends (a request body we did not read, say) for a while before closing, so that
 * unread input does not make the kernel reset the connection before the client has read the
 * answer.
 */
static void start_drain(struct conn *c) {
  if (c->peer_eof || wasix_shutdown(c->fd, WASIX_SHUT_WR) != 0) {
    conn_close(c);
    return;
  }
  c->draining = 1;
  c->want_write = 0;
  c->drain_deadline = now_ms() + DRAIN_MS;
  ndraining++;
  drain(c);
}

/* Sends, answers complete requests, repeats; then waits for input or for room to write. */
static void service(struct conn *c) {
  for (;;) {
    int r = flush(c);
    if (r < 0) {
      conn_close(c);
      return;
    }
    if (r == 0) {
      c->want_write = 1;
      return;
    }
    c->want_write = 0;
    if (c->consume) consume(c);
    if (c->parked) { /* the /stream parts are out: wait for a /release, reading input meanwhile */
      if (c->peer_eof) conn_close(c); /* the client hung up: nothing more to send it */
      return;
    }
    if (c->close_after) {
      start_drain(c);
      return;
    }
    r = step(c);
    if (r < 0) {
      conn_close(c);
      return;
    }
    if (r > 0) continue;
    if (c->wlen > 0) continue; /* a 100 Continue to send */
    if (c->peer_eof) {
      conn_close(c);
      return;
    }
    return;
  }
}

/* Room for more input: 1 when there is some, 0 when this request needs no more bytes, -1 when
 * it needs more than it may have (or memory ran out). */
static int make_room(struct conn *c) {
  if (c->rlen < c->rcap) return 1;
  size_t want, twice = c->rcap ? c->rcap * 2 : BUF_INIT;
  if (!c->head_len) {
    if (c->rcap >= MAX_HEAD) return 0; /* the parser reports the head as too large */
    want = twice > MAX_HEAD ? MAX_HEAD : twice;
  } else if (c->clen >= 0) {
    want = c->head_len + (size_t)c->clen; /* exactly the request: no doubling for big bodies */
    if (c->rcap >= want) return 0;
  } else {
    if (c->ch.raw > c->ch.out) {
      char *body = c->rbuf + c->head_len;
      c->rlen = c->head_len + http_chunked_compact(body, c->rlen - c->head_len, &c->ch);
      if (c->rlen < c->rcap) return 1;
    }
    size_t limit = c->head_len + MAX_BODY + 65536;
    if (c->rcap >= limit) return -1;
    want = twice > limit ? limit : twice;
  }
  char *p = realloc(c->rbuf, want);
  if (!p) return -1;
  c->rbuf = p;
  c->rcap = want;
  return 1;
}

static void on_readable(struct conn *c) {
  if (c->draining) {
    drain(c);
    return;
  }
  for (int rounds = 0; rounds < 16 && !c->peer_eof; rounds++) {
    int room = make_room(c);
    if (room < 0) {
      c->overflow = 1;
      break;
    }
    if (room == 0) break;
    size_t space = c->rcap - c->rlen;
    ssize_t n = read(c->fd, c->rbuf + c->rlen, space);
    if (n > 0) {
      c->rlen += (size_t)n;
      if ((size_t)n < space) break;
    } else if (n == 0) {
      c->peer_eof = 1;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      break;
    } else {
      conn_close(c);
      return;
    }
  }
  service(c);
}

static void accept_all(int lfd, int nonblocking) {
  for (int k = 0; k < 64; k++) {
    int e = 0;
    int fd = wasix_accept(lfd, 1, &e);
    if (fd < 0) return; /* again (nothing pending), or a failed handshake */
    stat_connections++;
    struct conn *c = nconns < MAX_CONNS ? calloc(1, sizeof *c) : NULL;
    if (!c) {
      static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                                 "Content-Length: 5\r\nConnection: close\r\n\r\nbusy\n";
      if (write(fd, busy, sizeof busy - 1) < 0) { /* closing anyway */
      }
      close(fd);
      continue;
    }
    c->fd = fd;
    wasix_set_nodelay(fd);
    conns[nconns++] = c;
    if (!nonblocking) return; /* a blocking listener: one accept per readiness */
  }
}

/* ---- readiness ---- */

#ifdef __wasi__
/* poll() without wasi-libc's stack-allocated arrays (2 subscriptions + 3 events per fd would be
 * ~160 bytes of stack per connection): poll_oneoff with heap arrays, one subscription per fd. */
static int wait_ready(struct pollfd *fds, size_t n, int timeout_ms) {
  static __wasi_subscription_t *subs;
  static __wasi_event_t *evs;
  static size_t cap;
  if (n + 1 > cap) {
    free(subs);
    free(evs);
    subs = malloc((n + 1) * sizeof *subs);
    evs = malloc((n + 1) * sizeof *evs);
    if (!subs || !evs) abort();
    cap = n + 1;
  }
  size_t nsubs = 0;
  for (size_t i = 0; i < n; i++) {
    fds[i].revents = 0;
    if (fds[i].fd < 0) continue; /* poll()'s "ignore this entry" */
    __wasi_subscription_t *s = &subs[nsubs++];
    memset(s, 0, sizeof *s);
    s->userdata = i;
    if (fds[i].events & POLLOUT) {
      s->u.tag = __WASI_EVENTTYPE_FD_WRITE;
      s->u.u.fd_write.file_descriptor = (__wasi_fd_t)fds[i].fd;
    } else {
      s->u.tag = __WASI_EVENTTYPE_FD_READ;
      s->u.u.fd_read.file_descriptor = (__wasi_fd_t)fds[i].fd;
    }
  }
  if (timeout_ms >= 0) {
    memset(&subs[nsubs], 0, sizeof subs[nsubs]);
    subs[nsubs].userdata = UINT64_MAX;
    subs[nsubs].u.tag = __WASI_EVENTTYPE_CLOCK;
    subs[nsubs].u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
    subs[nsubs].u.u.clock.timeout = (__wasi_timestamp_t)timeout_ms * 1000000;
    nsubs++;
  }
  __wasi_size_t got = 0;
  __wasi_errno_t e = __wasi_poll_oneoff(subs, evs, nsubs, &got);
  if (e != 0) {
    errno = e;
    return -1;
  }
  for (size_t k = 0; k < got; k++) {
    if (evs[k].userdata >= n) continue;
    struct pollfd *p = &fds[evs[k].userdata];
    if (evs[k].error) p->revents |= POLLERR;
    else p->revents |= evs[k].type == __WASI_EVENTTYPE_FD_WRITE ? POLLOUT : POLLIN;
    if (evs[k].fd_readwrite.flags & __WASI_EVENTRWFLAGS_FD_READWRITE_HANGUP) p->revents |= POLLHUP;
  }
  return (int)got;
}
#else
static int wait_ready(struct pollfd *fds, size_t n, int timeout_ms) {
  return poll(fds, n, timeout_ms);
}
#endif

static void log_line(const char *s) {
  if (write(2, s, strlen(s)) < 0) { /* nowhere to report it */
  }
}

int main(void) {
  uint64_t port = 80;
  const char *ps = getenv("PORT");
  char line[128];
  if (ps && *ps && (!http_parse_u64(ps, strlen(ps), 65535, &port) || port == 0)) {
    snprintf(line, sizeof line, "httpd: PORT must be a port number, not '%.40s'\n", ps);
    log_line(line);
    return 2;
  }
#ifndef __wasi__
  signal(SIGPIPE, SIG_IGN);
#endif
  int e = 0;
  int lfd = wasix_listen_tcp((uint16_t)port, 1024, &e);
  if (lfd < 0) {
    snprintf(line, sizeof line, "httpd: listen on port %u failed: errno %d\n", (unsigned)port, e);
    log_line(line);
    return 1;
  }
  int nonblocking = fcntl(lfd, F_SETFL, O_NONBLOCK) == 0;
  for (size_t i = 0; i < sizeof pattern; i++) pattern[i] = (char)(i % 251);
  pid = wasix_pid();
  snprintf(line, sizeof line, "httpd listening on port %u\n", (unsigned)port);
  log_line(line);

  static struct pollfd fds[MAX_CONNS + 1];
  for (;;) {
    if (ndraining) { /* close connections drained for long enough (each swaps the last one in) */
      int64_t now = now_ms();
      for (size_t i = 0; i < nconns;) {
        if (conns[i]->draining && conns[i]->drain_deadline <= now) conn_close(conns[i]);
        else i++;
      }
    }
    fds[0].fd = lfd;
    fds[0].events = POLLIN;
    for (size_t i = 0; i < nconns; i++) {
      struct conn *c = conns[i];
      /* A parked connection with a full read buffer (make_room has no more room for pipelined
       * input) would be readable forever: it sits out (fd -1) until released. */
      int full = c->parked && !c->want_write && c->rlen >= c->rcap && c->rcap >= MAX_HEAD;
      fds[1 + i].fd = full ? -1 : c->fd;
      fds[1 + i].events = c->want_write ? POLLOUT : POLLIN;
    }
    size_t n = 1 + nconns;
    if (wait_ready(fds, n, ndraining ? 100 : -1) < 0) {
      if (errno == EINTR) continue;
      snprintf(line, sizeof line, "httpd: poll failed: errno %d\n", errno);
      log_line(line);
      return 1;
    }
    /* Newest first: closing conns[i] moves the last (already handled) connection into slot i. */
    for (size_t i = n - 1; i >= 1; i--) {
      if (!fds[i].revents) continue;
      struct conn *c = conns[i - 1];
      if (c->want_write) service(c);
      else on_readable(c);
    }
    if (fds[0].revents) accept_all(lfd, nonblocking);
  }
}
