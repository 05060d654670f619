/*
 * http1.h: a small HTTP/1.x server toolkit shared by the proxy-mode guests (actors/httpd and the
 * proxy-*.c test fixtures): a request-head parser, a resumable in-place decoder for chunked
 * request bodies, query-string helpers and a response-head writer. Plain C, no allocation, no
 * imports: everything points into the caller's buffer.
 *
 * Parsing follows RFC 9112 strictly enough for a server behind a proxy: request line
 * `METHOD SP target SP HTTP/1.x`, header names are tokens (so whitespace before the colon and
 * obs-fold lines are rejected), values may not hold control bytes other than HTAB, bare LF line
 * ends are accepted, leading empty lines are skipped. Content-Length must be all digits and agree
 * when repeated; Transfer-Encoding must be exactly `chunked` (anything else is 501) and may not
 * come with Content-Length.
 */
#ifndef WEFT_HTTP1_H
#define WEFT_HTTP1_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HTTP_MAX_HEADERS 100

/* Results of the parsers besides "complete" (> 0 or 1) and "need more input" (0). */
#define HTTP_INCOMPLETE 0
#define HTTP_BAD (-400)
#define HTTP_BODY_TOO_LARGE (-413)
#define HTTP_HEAD_TOO_LARGE (-431)
#define HTTP_NOT_IMPLEMENTED (-501)
#define HTTP_BAD_VERSION (-505)

struct http_header {
  const char *name, *value;
  size_t name_len, value_len;
};

struct http_request {
  const char *method, *path, *query;
  size_t method_len, path_len, query_len; /* path: target before '?'; query: after it */
  int minor;                              /* HTTP/1.<minor> */
  size_t head_len;                        /* bytes up to and including the empty line */
  int64_t content_length;                 /* -1 when absent */
  int chunked;                            /* Transfer-Encoding: chunked */
  int keep_alive;      /* HTTP/1.1 unless `Connection: close`; 1.0 only with keep-alive */
  int expect_continue; /* Expect: 100-continue */
  size_t nheaders;
  struct http_header headers[HTTP_MAX_HEADERS]; /* last: the parser zeroes what precedes it */
};

static inline int http_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static inline int http_is_tchar(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Whether s[0..n) equals the lower-case string lower, ignoring ASCII case. */
static inline int http_ieq(const char *s, size_t n, const char *lower) {
  size_t i = 0;
  for (; i < n; i++)
    if (lower[i] == 0 || http_lower((unsigned char)s[i]) != lower[i]) return 0;
  return lower[i] == 0;
}

/* Whether the comma-separated list s[0..n) holds the token lower (ASCII case ignored). */
static inline int http_has_token(const char *s, size_t n, const char *lower) {
  size_t i = 0;
  while (i < n) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ',')) i++;
    size_t b = i;
    while (i < n && s[i] != ',') i++;
    size_t e = i;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) e--;
    if (e > b && http_ieq(s + b, e - b, lower)) return 1;
  }
  return 0;
}

/* Parses s[0..n) as a decimal number no greater than max; 1 on success. */
static inline int http_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out) {
  uint64_t v = 0;
  if (n == 0 || n > 19) return 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if (v > max) return 0;
  *out = v;
  return 1;
}

/* Writes v in decimal to out (at most 20 bytes, no NUL); returns the length. */
static inline size_t http_utoa(char *out, uint64_t v) {
  char tmp[20];
  size_t n = 0;
  do tmp[n++] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  return n;
}

/* The first header named lower (a lower-case name), or NULL. */
static inline const struct http_header *http_find_header(const struct http_request *r,
                                                         const char *lower) {
  for (size_t i = 0; i < r->nheaders; i++)
    if (http_ieq(r->headers[i].name, r->headers[i].name_len, lower)) return &r->headers[i];
  return NULL;
}

/*
 * Parses the request head at the start of buf[0..len). Returns its length (> 0) when complete,
 * HTTP_INCOMPLETE when more input is needed, HTTP_HEAD_TOO_LARGE when it is (or would be) longer
 * than max bytes or has more than HTTP_MAX_HEADERS fields, HTTP_BAD_VERSION for an HTTP major
 * version other than 1, HTTP_NOT_IMPLEMENTED for a transfer coding other than chunked, and
 * HTTP_BAD when malformed.
 */
static inline int http_parse_head(const char *buf, size_t len, size_t max, struct http_request *r) {
  size_t start = 0, end = 0;
  while (start < len && (buf[start] == '\r' || buf[start] == '\n')) start++;
  for (const char *p = buf + start; (p = memchr(p, '\n', (size_t)(buf + len - p))) != NULL; p++) {
    size_t i = (size_t)(p - buf);
    if (i + 1 < len && buf[i + 1] == '\n') end = i + 2;
    else if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') end = i + 3;
    if (end) break;
  }
  if (!end) return len >= max ? HTTP_HEAD_TOO_LARGE : HTTP_INCOMPLETE;
  if (end > max) return HTTP_HEAD_TOO_LARGE;

  memset(r, 0, offsetof(struct http_request, headers));
  r->content_length = -1;
  r->head_len = end;
  int conn_close = 0, conn_keep = 0, te_other = 0;
  const char *p = buf + start, *stop = buf + end;
  for (int first = 1;; first = 0) {
    const char *nl = memchr(p, '\n', (size_t)(stop - p));
    const char *line = p;
    size_t n = (size_t)(nl - p);
    p = nl + 1;
    if (n > 0 && line[n - 1] == '\r') n--;
    if (n == 0) break; /* the empty line */
    if (first) {
      const char *sp1 = memchr(line, ' ', n);
      if (!sp1 || sp1 == line) return HTTP_BAD;
      const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(line + n - sp1 - 1));
      if (!sp2 || sp2 == sp1 + 1) return HTTP_BAD;
      r->method = line;
      r->method_len = (size_t)(sp1 - line);
      for (size_t i = 0; i < r->method_len; i++)
        if (!http_is_tchar((unsigned char)line[i])) return HTTP_BAD;
      const char *t = sp1 + 1, *tend = sp2, *v = sp2 + 1;
      size_t vn = (size_t)(line + n - v);
      for (const char *q = t; q < tend; q++)
        if ((unsigned char)*q <= 0x20 || *q == 0x7f) return HTTP_BAD;
      if (vn != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
          v[7] < '0' || v[7] > '9')
        return HTTP_BAD;
      if (v[5] != '1') return HTTP_BAD_VERSION;
      r->minor = v[7] - '0';
      if (*t != '/') {
        /* absolute-form (http://host/path) is reduced to its path; '*' stays as it is */
        size_t tn = (size_t)(tend - t);
        size_t skip = tn >= 7 && http_ieq(t, 7, "http://")    ? 7
                      : tn >= 8 && http_ieq(t, 8, "https://") ? 8
                                                              : 0;
        if (skip) {
          const char *slash = memchr(t + skip, '/', tn - skip);
          t = slash ? slash : "/";
          if (!slash) tend = t + 1;
        } else if (!(tn == 1 && *t == '*')) {
          return HTTP_BAD;
        }
      }
      const char *hash = memchr(t, '#', (size_t)(tend - t));
      if (hash) tend = hash;
      const char *qm = memchr(t, '?', (size_t)(tend - t));
      r->path = t;
      r->path_len = (size_t)((qm ? qm : tend) - t);
      r->query = qm ? qm + 1 : tend;
      r->query_len = qm ? (size_t)(tend - qm - 1) : 0;
      continue;
    }
    const char *colon = memchr(line, ':', n);
    if (!colon || colon == line) return HTTP_BAD;
    for (const char *q = line; q < colon; q++)
      if (!http_is_tchar((unsigned char)*q)) return HTTP_BAD;
    const char *v = colon + 1, *vend = line + n;
    while (v < vend && (*v == ' ' || *v == '\t')) v++;
    while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t')) vend--;
    for (const char *q = v; q < vend; q++)
      if (((unsigned char)*q < 0x20 && *q != '\t') || *q == 0x7f) return HTTP_BAD;
    if (r->nheaders == HTTP_MAX_HEADERS) return HTTP_HEAD_TOO_LARGE;
    struct http_header *h = &r->headers[r->nheaders++];
    h->name = line;
    h->name_len = (size_t)(colon - line);
    h->value = v;
    h->value_len = (size_t)(vend - v);
    if (http_ieq(h->name, h->name_len, "content-length")) {
      uint64_t cl;
      if (!http_parse_u64(v, h->value_len, (uint64_t)INT64_MAX, &cl)) return HTTP_BAD;
      if (r->content_length >= 0 && (uint64_t)r->content_length != cl) return HTTP_BAD;
      r->content_length = (int64_t)cl;
    } else if (http_ieq(h->name, h->name_len, "transfer-encoding")) {
      if (http_ieq(v, h->value_len, "chunked") && !r->chunked) r->chunked = 1;
      else te_other = 1;
    } else if (http_ieq(h->name, h->name_len, "connection")) {
      conn_close |= http_has_token(v, h->value_len, "close");
      conn_keep |= http_has_token(v, h->value_len, "keep-alive");
    } else if (http_ieq(h->name, h->name_len, "expect")) {
      r->expect_continue = http_ieq(v, h->value_len, "100-continue");
    }
  }
  if (te_other) return HTTP_NOT_IMPLEMENTED;
  if (r->chunked && r->content_length >= 0) return HTTP_BAD;
  r->keep_alive = !conn_close && (r->minor >= 1 || conn_keep);
  return (int)end;
}

/*
 * Decoding state of a chunked body; zero it before the first call. raw is the offset of the
 * first byte not yet decoded, out the number of decoded bytes (kept at the front of the body).
 */
struct http_chunked {
  size_t raw, out;
  int state; /* 0 chunk-size line next, 1 trailer fields, 2 done */
};

/*
 * Decodes as much of the chunked body in body[0..len) as has arrived, in place: chunk data is
 * moved down to body[0..out). Returns 1 when the body and its trailer section are complete (raw
 * is then the encoded length), 0 when more input is needed, HTTP_BODY_TOO_LARGE when the
 * decoded body would exceed max bytes, HTTP_BAD when malformed. Resumable: call again with the
 * same state after more bytes arrive.
 */
static inline int http_chunked_step(char *body, size_t len, size_t max, struct http_chunked *st) {
  while (st->state != 2) {
    const char *line = body + st->raw;
    const char *nl = memchr(line, '\n', len - st->raw);
    if (!nl) return len - st->raw > 8192 ? HTTP_BAD : 0;
    size_t line_end = (size_t)(nl - body) + 1;
    if (st->state == 1) { /* trailer fields are read and dropped */
      st->raw = line_end;
      if (nl == line || (nl == line + 1 && line[0] == '\r')) st->state = 2;
      continue;
    }
    uint64_t size = 0;
    const char *q = line;
    for (; q < nl; q++) {
      int c = http_lower((unsigned char)*q);
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) break;
      size = size * 16 + (uint64_t)d;
      if (size > max) return HTTP_BODY_TOO_LARGE;
    }
    if (q == line) return HTTP_BAD;
    while (q < nl && (*q == ' ' || *q == '\t')) q++;
    if (q < nl && *q == ';') q = nl; /* chunk extensions are ignored */
    if (q < nl && *q == '\r') q++;
    if (q != nl) return HTTP_BAD;
    if (size == 0) {
      st->raw = line_end;
      st->state = 1;
      continue;
    }
    if (st->out + size > max) return HTTP_BODY_TOO_LARGE;
    if (len < line_end + size + 1) return 0;
    const char *after = body + line_end + size;
    size_t crlf = 1;
    if (after[0] == '\r') {
      if (len < line_end + size + 2) return 0;
      if (after[1] != '\n') return HTTP_BAD;
      crlf = 2;
    } else if (after[0] != '\n') {
      return HTTP_BAD;
    }
    memmove(body + st->out, body + line_end, (size_t)size);
    st->out += (size_t)size;
    st->raw = line_end + (size_t)size + crlf;
  }
  return 1;
}

/* Drops the already-decoded gap: moves body[raw..len) down to body[out..); returns the new len. */
static inline size_t http_chunked_compact(char *body, size_t len, struct http_chunked *st) {
  memmove(body + st->out, body + st->raw, len - st->raw);
  len -= st->raw - st->out;
  st->raw = st->out;
  return len;
}

/*
 * The raw (not decoded) value of the first query parameter called name in q[0..n) ('&' or ';'
 * separated), in *val and *val_len. Returns 1 when present (a bare `name` has an empty value).
 */
static inline int http_query_param(const char *q, size_t n, const char *name, const char **val,
                                   size_t *val_len) {
  size_t name_len = strlen(name), i = 0;
  while (i < n) {
    size_t b = i;
    while (i < n && q[i] != '&' && q[i] != ';') i++;
    if (i - b >= name_len && memcmp(q + b, name, name_len) == 0 &&
        (i - b == name_len || q[b + name_len] == '=')) {
      *val = q + b + name_len + (i - b > name_len);
      *val_len = (size_t)(q + i - *val);
      return 1;
    }
    i++;
  }
  return 0;
}

static inline int http_hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

#define HTTP_HELLO_NAME_MAX 200

/*
 * The greeting name of a /hello query (the same rules as actors/hello): the `name` parameter,
 * URL-decoded ('+' is a space, %XX a byte), control bytes and DEL dropped, capped at 200 bytes
 * and cut back to a whole UTF-8 character; "world" when absent or empty. Returns its length.
 */
static inline size_t http_hello_name(const char *q, size_t qn,
                                     unsigned char out[HTTP_HELLO_NAME_MAX]) {
  const char *v;
  size_t vn, n = 0;
  int truncated = 0;
  if (http_query_param(q, qn, "name", &v, &vn)) {
    const char *p = v, *end = v + vn;
    while (p < end) {
      int c = (unsigned char)*p++;
      if (c == '+') {
        c = ' ';
      } else if (c == '%' && end - p >= 2 && http_hexval(p[0]) >= 0 && http_hexval(p[1]) >= 0) {
        c = http_hexval(p[0]) * 16 + http_hexval(p[1]);
        p += 2;
      }
      if (c < 0x20 || c == 0x7F) continue;
      if (n == HTTP_HELLO_NAME_MAX) {
        truncated = 1;
        break;
      }
      out[n++] = (unsigned char)c;
    }
  }
  if (truncated) { /* drop an incomplete UTF-8 sequence left at the end by the cap */
    size_t back = 0;
    while (back < 3 && back < n && (out[n - 1 - back] & 0xC0) == 0x80) back++;
    if (back < n) {
      unsigned char lead = out[n - 1 - back];
      size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
      if (need > back + 1) n = n - 1 - back;
    }
  }
  if (n == 0) {
    memcpy(out, "world", 5);
    n = 5;
  }
  return n;
}

static inline const char *http_reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 200: return "OK";
  case 400: return "Bad Request";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 411: return "Length Required";
  case 413: return "Content Too Large";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 503: return "Service Unavailable";
  case 505: return "HTTP Version Not Supported";
  default: return "Unknown";
  }
}

#define HTTP_CONN_DEFAULT 0    /* no Connection header */
#define HTTP_CONN_CLOSE 1      /* Connection: close */
#define HTTP_CONN_KEEP_ALIVE 2 /* Connection: keep-alive (for HTTP/1.0 clients) */

/* The room http_write_head needs besides the Content-Type value. */
#define HTTP_HEAD_ROOM 160

/*
 * Writes a response head into out: status line, Content-Type, then Content-Length (when
 * content_length >= 0) or Transfer-Encoding: chunked, an optional Connection header and the
 * empty line. out needs strlen(content_type) + HTTP_HEAD_ROOM bytes. Returns the length.
 */
static inline size_t http_write_head(char *out, int status, const char *content_type,
                                     int64_t content_length, int connection) {
  char *p = out;
#define HTTP_PUT(s) (memcpy(p, (s), strlen(s)), p += strlen(s))
  HTTP_PUT("HTTP/1.1 ");
  p += http_utoa(p, (uint64_t)status);
  *p++ = ' ';
  HTTP_PUT(http_reason(status));
  HTTP_PUT("\r\nContent-Type: ");
  HTTP_PUT(content_type);
  if (content_length >= 0) {
    HTTP_PUT("\r\nContent-Length: ");
    p += http_utoa(p, (uint64_t)content_length);
  } else {
    HTTP_PUT("\r\nTransfer-Encoding: chunked");
  }
  if (connection == HTTP_CONN_CLOSE) HTTP_PUT("\r\nConnection: close");
  if (connection == HTTP_CONN_KEEP_ALIVE) HTTP_PUT("\r\nConnection: keep-alive");
  HTTP_PUT("\r\n\r\n");
#undef HTTP_PUT
  return (size_t)(p - out);
}

/* The Connection header value to answer r with (HTTP_CONN_*). */
static inline int http_connection_for(const struct http_request *r) {
  if (!r->keep_alive) return HTTP_CONN_CLOSE;
  return r->minor == 0 ? HTTP_CONN_KEEP_ALIVE : HTTP_CONN_DEFAULT;
}

#endif /* WEFT_HTTP1_H */
