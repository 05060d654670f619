/*
 * echo: reflects the CGI request back as JSON; also a bulk-transfer test actor.
 *
 * Routed (actors/app.yaml) at /echo and /echo/... (limits raised: 32 MiB in, 128 MiB out):
 *   ANY /echo/x?q=1  ->  200 application/json
 *     {"method", "path", "scriptName", "pathInfo", "query", "headers": {...}, "body", "bodyBytes"}
 *     path = SCRIPT_NAME + PATH_INFO (just one of them when a Wasmer-dialect host sets both to
 *     the whole path, i.e. to REQUEST_URI's path); headers = every HTTP_* variable (lower-cased,
 *     '_' -> '-') plus content-type from CONTENT_TYPE, sorted by name; body = stdin as a JSON
 *     string (invalid UTF-8 becomes U+FFFD); bodyBytes = octets read.
 *   ?raw=1      ->  200 application/octet-stream, the request body unchanged (byte-exact echo).
 *   ?bytes=N    ->  200 application/octet-stream, N bytes where byte i is i % 251 (N <= 1 GiB),
 *                   streamed in 64 KiB writes; the request body is not read.
 * The body is read from stdin up to CONTENT_LENGTH (at most 64 MiB, else 413).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

#define MAX_BODY (64ull << 20)
#define MAX_PATTERN (1ull << 30)
#define PATTERN_CHUNK (251 * 261) /* 65511: a whole number of periods, so chunks join seamlessly */

/* ---- buffered output ---- */

static char obuf[1 << 16];
static size_t olen;

static void flush_out(void) {
  if (olen) fwrite(obuf, 1, olen, stdout);
  olen = 0;
}

static void put(const void *p, size_t n) {
  if (olen + n > sizeof obuf) flush_out();
  if (n >= sizeof obuf) {
    fwrite(p, 1, n, stdout);
    return;
  }
  memcpy(obuf + olen, p, n);
  olen += n;
}

static void puts_out(const char *s) { put(s, strlen(s)); }

/* Length of the well-formed UTF-8 sequence at s (n bytes available), or 0 if ill-formed. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  if (c < 0xC2 || c > 0xF4) return 0;
  size_t need = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  if (n < need) return 0;
  for (size_t i = 1; i < need; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  if (c == 0xE0 && s[1] < 0xA0) return 0; /* overlong */
  if (c == 0xED && s[1] >= 0xA0) return 0; /* surrogate */
  if (c == 0xF0 && s[1] < 0x90) return 0; /* overlong */
  if (c == 0xF4 && s[1] >= 0x90) return 0; /* > U+10FFFF */
  return need;
}

/* A JSON string literal for s[0..n). */
static void json_str(const char *str, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0, run = 0;
  put("\"", 1);
  while (i < n) {
    unsigned c = s[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      i++;
      continue;
    }
    put(s + run, i - run);
    if (c >= 0x80) {
      size_t len = utf8_len(s + i, n - i);
      if (len) {
        put(s + i, len);
        i += len;
      } else {
        put("\\ufffd", 6);
        i++;
      }
    } else {
      char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
      size_t elen = 2;
      if (c == '\n') esc[1] = 'n';
      else if (c == '\r') esc[1] = 'r';
      else if (c == '\t') esc[1] = 't';
      else if (c < 0x20) {
        memcpy(esc, "\\u00", 4);
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 15];
        elen = 6;
      }
      put(esc, elen);
      i++;
    }
    run = i;
  }
  put(s + run, n - run);
  put("\"", 1);
}

static void json_cstr(const char *s) { json_str(s, strlen(s)); }

static const char *env(const char *name) {
  const char *v = getenv(name);
  return v ? v : "";
}

/* Raw (still URL-encoded) value of query parameter key, or NULL; *len gets its length. */
static const char *query_param(const char *qs, const char *key, size_t *len) {
  size_t klen = strlen(key);
  while (*qs) {
    size_t seg = strcspn(qs, "&;");
    if (seg >= klen && memcmp(qs, key, klen) == 0 && (seg == klen || qs[klen] == '=')) {
      size_t off = seg > klen ? klen + 1 : klen;
      *len = seg - off;
      return qs + off;
    }
    qs += seg;
    if (*qs) qs++;
  }
  return NULL;
}

/* Parses a decimal of exactly n digits (no sign, no spaces); -1 when malformed or > max. */
static long long parse_size(const char *s, size_t n, unsigned long long max) {
  unsigned long long v = 0;
  if (n == 0 || n > 19) return -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  return v > max ? -1 : (long long)v;
}

static int error(const char *status, const char *msg) {
  printf("Content-Type: application/json\nStatus: %s\n\n{\"error\":\"%s\"}\n", status, msg);
  return 0;
}

static void send_pattern(unsigned long long n) {
  static unsigned char chunk[PATTERN_CHUNK];
  for (size_t i = 0; i < sizeof chunk; i++) chunk[i] = (unsigned char)(i % 251);
  fputs("Content-Type: application/octet-stream\n\n", stdout);
  while (n > 0) {
    size_t k = n < sizeof chunk ? (size_t)n : sizeof chunk;
    if (fwrite(chunk, 1, k, stdout) != k) return; /* reader went away */
    n -= k;
  }
}

typedef struct {
  char *name;
  const char *value;
} Header;

static int header_cmp(const void *a, const void *b) {
  return strcmp(((const Header *)a)->name, ((const Header *)b)->name);
}

int main(void) {
  const char *qs = env("QUERY_STRING");
  size_t vlen;
  const char *v;

  if ((v = query_param(qs, "bytes", &vlen))) {
    long long n = parse_size(v, vlen, MAX_PATTERN);
    if (n < 0) return error("400 Bad Request", "bytes must be an integer from 0 to 1073741824");
    send_pattern((unsigned long long)n);
    return 0;
  }

  /* The body: CONTENT_LENGTH octets (RFC 3875 4.2), or none when it is unset. */
  const char *cl = env("CONTENT_LENGTH");
  long long want = parse_size(cl, strlen(cl), ~0ull >> 1);
  if (*cl == '\0') want = 0;
  if (want < 0) return error("400 Bad Request", "malformed CONTENT_LENGTH");
  if ((unsigned long long)want > MAX_BODY) return error("413 Payload Too Large", "body over 64 MiB");
  char *body = malloc((size_t)want + 1);
  if (!body) return error("500 Internal Server Error", "out of memory");
  size_t got = 0;
  while (got < (size_t)want) {
    size_t r = fread(body + got, 1, (size_t)want - got, stdin);
    if (r == 0) break; /* EOF or error: echo what arrived */
    got += r;
  }

  if ((v = query_param(qs, "raw", &vlen)) && vlen == 1 && *v == '1') {
    fputs("Content-Type: application/octet-stream\n\n", stdout);
    fwrite(body, 1, got, stdout);
    return 0;
  }

  /* Headers: HTTP_FOO_BAR -> foo-bar, plus content-type. */
  size_t nenv = 0;
  for (char **e = environ; e && *e; e++) nenv++;
  Header *hs = malloc((nenv + 1) * sizeof *hs);
  if (!hs) return error("500 Internal Server Error", "out of memory");
  size_t nh = 0;
  const char *ctype = getenv("CONTENT_TYPE");
  if (ctype && *ctype) hs[nh++] = (Header){strdup("content-type"), ctype};
  for (char **e = environ; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    if (strncmp(*e, "HTTP_", 5) != 0 || !eq || eq == *e + 5) continue;
    size_t len = (size_t)(eq - *e) - 5;
    char *name = malloc(len + 1);
    if (!name) return error("500 Internal Server Error", "out of memory");
    for (size_t i = 0; i < len; i++) {
      char c = (*e)[5 + i];
      name[i] = c == '_' ? '-' : (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    name[len] = '\0';
    if (ctype && *ctype && strcmp(name, "content-type") == 0) continue; /* CONTENT_TYPE wins */
    hs[nh++] = (Header){name, eq + 1};
  }
  qsort(hs, nh, sizeof *hs, header_cmp);

  /* Wasmer-dialect hosts set SCRIPT_NAME = PATH_INFO = the whole path (REQUEST_URI's path). */
  const char *script = env("SCRIPT_NAME"), *pinfo = env("PATH_INFO"), *uri = env("REQUEST_URI");
  size_t ulen = strcspn(uri, "?");
  int whole = *script && strcmp(script, pinfo) == 0 && strlen(script) == ulen &&
              memcmp(script, uri, ulen) == 0;

  size_t slen = whole ? 0 : strlen(script), plen = strlen(pinfo);
  char *path = malloc(slen + plen + 1);
  if (!path) return error("500 Internal Server Error", "out of memory");
  memcpy(path, script, slen);
  memcpy(path + slen, pinfo, plen + 1);

  puts_out("Content-Type: application/json\n\n{\"method\":");
  json_cstr(env("REQUEST_METHOD"));
  puts_out(",\"path\":");
  json_cstr(path);
  puts_out(",\"scriptName\":");
  json_cstr(script);
  puts_out(",\"pathInfo\":");
  json_cstr(pinfo);
  puts_out(",\"query\":");
  json_cstr(qs);
  puts_out(",\"headers\":{");
  for (size_t i = 0; i < nh; i++) {
    if (i) put(",", 1);
    json_cstr(hs[i].name);
    put(":", 1);
    json_cstr(hs[i].value);
  }
  puts_out("},\"body\":");
  json_str(body, got);
  char tail[48];
  snprintf(tail, sizeof tail, ",\"bodyBytes\":%zu}\n", got);
  puts_out(tail);
  flush_out();
  return 0;
}
