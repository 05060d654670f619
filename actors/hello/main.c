/*
 * hello: the smallest WCGI actor, and the one the benchmarks call.
 *
 * Routed (actors/app.yaml) at /hello, /hello/... and / (exact):
 *   GET /hello?name=Ada  ->  200 text/plain; charset=utf-8  "Hello, Ada!\n"
 *
 * The `name` query parameter is URL-decoded ('+' is a space, %XX a byte), control bytes
 * (< 0x20 and DEL) are dropped, and it is capped at 200 bytes, cut back to a whole UTF-8
 * character. Missing or empty means "world". Every method gets the same answer; the request body
 * is not read. No stdio, no allocation, one write(2): start-up cost is the whole cost.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME_MAX_BYTES 200

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Drop an incomplete UTF-8 sequence left at the end of buf by the length cap. */
static size_t utf8_trim(const unsigned char *buf, size_t len) {
  size_t back = 0;
  while (back < 3 && back < len && (buf[len - 1 - back] & 0xC0) == 0x80) back++;
  if (back == len) return len;
  unsigned char lead = buf[len - 1 - back];
  size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  return need > back + 1 ? len - 1 - back : len;
}

/* URL-decode the first `name` parameter of qs into out; returns its length (0 when absent). */
static size_t query_name(const char *qs, unsigned char *out) {
  while (*qs) {
    size_t seg = strcspn(qs, "&;");
    if (seg >= 4 && memcmp(qs, "name", 4) == 0 && (seg == 4 || qs[4] == '=')) {
      const char *p = qs + (seg > 4 ? 5 : 4), *end = qs + seg;
      size_t n = 0;
      int truncated = 0;
      while (p < end) {
        int c = (unsigned char)*p++;
        if (c == '+') {
          c = ' ';
        } else if (c == '%' && end - p >= 2 && hexval(p[0]) >= 0 && hexval(p[1]) >= 0) {
          c = hexval(p[0]) * 16 + hexval(p[1]);
          p += 2;
        }
        if (c < 0x20 || c == 0x7F) continue;
        if (n == NAME_MAX_BYTES) {
          truncated = 1;
          break;
        }
        out[n++] = (unsigned char)c;
      }
      return truncated ? utf8_trim(out, n) : n;
    }
    qs += seg;
    if (*qs) qs++;
  }
  return 0;
}

int main(void) {
  static const char head[] = "Content-Type: text/plain; charset=utf-8\n\nHello, ";
  unsigned char name[NAME_MAX_BYTES];
  char resp[sizeof head + NAME_MAX_BYTES + 2];
  const char *qs = getenv("QUERY_STRING");
  size_t n = qs ? query_name(qs, name) : 0;
  if (n == 0) {
    memcpy(name, "world", 5);
    n = 5;
  }
  size_t len = sizeof head - 1;
  memcpy(resp, head, len);
  memcpy(resp + len, name, n);
  len += n;
  resp[len++] = '!';
  resp[len++] = '\n';
  for (size_t off = 0; off < len;) { /* write(2), not stdio: smaller and faster to start */
    ssize_t w = write(1, resp + off, len - off);
    if (w <= 0) return 1;
    off += (size_t)w;
  }
  return 0;
}
