/*
 * fetch: a WCGI actor that calls out over HTTP through the weft_http capability
 * (actors/include/weft_http.h) and answers with what came back.
 *
 *   GET  /fetch?path=/hello%3Fname%3Dx   GET $UPSTREAM + path (UPSTREAM from the manifest's env)
 *   GET  /fetch?url=http%3A%2F%2F...     GET that absolute URL
 *   POST /fetch?...                      the same with POST, the request body sent upstream
 *   &count=N                             N requests one after another (1..10000), the last body
 *                                        answered; a failure stops the loop
 * Success: the upstream status (as Status:), its content-type, its body, and the header
 * x-fetch-made: requests made. Failure: 502 text/plain "weft_http error E after K request(s):
 * REASON\n" (E is the negative WEFT_HTTP_E* code), which shows what the host's policy said.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft_http.h"

#define MAX_URL 4096
#define MAX_BODY (4u << 20)

static char url[MAX_URL];
static char resp[1 << 16];
/* Bodies grow on the heap as they arrive (up to MAX_BODY), so the module starts small. */
static char *body;
static size_t body_cap;

/* Room for `more` bytes past `used` (capped at MAX_BODY): the bytes free after `used`. */
static size_t body_room(size_t used, size_t more) {
  size_t want = used + more > MAX_BODY ? MAX_BODY : used + more;
  if (want > body_cap) {
    size_t cap = body_cap ? body_cap : 64 * 1024;
    while (cap < want) cap *= 2;
    if (cap > MAX_BODY) cap = MAX_BODY;
    char *grown = realloc(body, cap);
    if (grown == NULL) return body_cap - used;
    body = grown;
    body_cap = cap;
  }
  return body_cap - used;
}

/* Decode %XX and '+' in place. */
static void url_decode(char *s) {
  char *o = s;
  for (; *s; s++) {
    if (*s == '%' && s[1] && s[2]) {
      char hex[3] = {s[1], s[2], 0};
      *o++ = (char)strtol(hex, NULL, 16);
      s += 2;
    } else {
      *o++ = *s == '+' ? ' ' : *s;
    }
  }
  *o = 0;
}

/* The value of query parameter `name` decoded into out, or 0 when absent. */
static int query_param(const char *qs, const char *name, char *out, size_t cap) {
  size_t n = strlen(name);
  while (qs && *qs) {
    const char *end = strchr(qs, '&');
    size_t seg = end ? (size_t)(end - qs) : strlen(qs);
    if (seg > n && strncmp(qs, name, n) == 0 && qs[n] == '=') {
      size_t len = seg - n - 1;
      if (len >= cap) len = cap - 1;
      memcpy(out, qs + n + 1, len);
      out[len] = 0;
      url_decode(out);
      return 1;
    }
    qs = end ? end + 1 : NULL;
  }
  return 0;
}

static int fail(int code, int made) {
  char reason[1024];
  weft_http_error(reason, sizeof reason);
  printf("Status: 502 Bad Gateway\nContent-Type: text/plain\n\n");
  printf("weft_http error %d after %d request(s): %s\n", code, made, reason);
  return 0;
}

/* The value of header `name` in a "name: value\n" list, copied into out. */
static void header_value(const char *list, const char *name, char *out, size_t cap) {
  size_t n = strlen(name);
  out[0] = 0;
  for (const char *l = list; *l;) {
    const char *eol = strchr(l, '\n');
    if (!eol) break;
    if ((size_t)(eol - l) > n + 2 && strncmp(l, name, n) == 0 && l[n] == ':') {
      size_t len = (size_t)(eol - l) - n - 2;
      if (len >= cap) len = cap - 1;
      memcpy(out, l + n + 2, len);
      out[len] = 0;
      return;
    }
    l = eol + 1;
  }
}

int main(void) {
  const char *qs = getenv("QUERY_STRING");
  const char *method = getenv("REQUEST_METHOD");
  if (!method) method = "GET";
  char path[MAX_URL], count_s[16];
  if (query_param(qs, "url", url, sizeof url)) {
  } else if (query_param(qs, "path", path, sizeof path)) {
    const char *up = getenv("UPSTREAM");
    snprintf(url, sizeof url, "%s%s", up ? up : "", path);
  } else {
    printf("Status: 400 Bad Request\nContent-Type: text/plain\n\nexpected ?url= or ?path=\n");
    return 0;
  }
  int count = query_param(qs, "count", count_s, sizeof count_s) ? atoi(count_s) : 1;
  if (count < 1 || count > 10000) count = 1;

  size_t body_len = 0;
  if (strcmp(method, "POST") == 0) {
    size_t n, room;
    while ((room = body_room(body_len, 64 * 1024)) > 0 &&
           (n = fread(body + body_len, 1, room, stdin)) > 0)
      body_len += n;
  }

  int made = 0;
  for (int i = 0; i < count; i++) {
    int32_t req = weft_http_request(method, strlen(method), url, strlen(url));
    if (req < 0) return fail(req, made);
    weft_http_header(req, "user-agent", 10, "weft-fetch", 10);
    if (body_len > 0) weft_http_write(req, body, body_len);
    int32_t status = weft_http_send(req);
    if (status < 0) {
      weft_http_close(req);
      return fail(status, made);
    }
    made++;
    if (i + 1 < count) {
      int32_t n;
      while ((n = weft_http_read(req, resp, sizeof resp)) > 0) {
      }
      weft_http_close(req);
      if (n < 0) return fail(n, made);
      continue;
    }
    char headers[8192], type[256];
    int32_t hl = weft_http_headers(req, headers, sizeof headers - 1);
    headers[hl >= 0 && (size_t)hl < sizeof headers ? hl : 0] = 0;
    header_value(headers, "content-type", type, sizeof type);
    /* Read the whole body before answering, so that a failure can still be a 502. */
    size_t total = 0, room;
    int32_t n = 0;
    while ((room = body_room(total, 64 * 1024)) > 0 &&
           (n = weft_http_read(req, body + total, room)) > 0)
      total += (size_t)n;
    weft_http_close(req);
    if (n < 0) return fail(n, made);
    printf("Status: %d\nContent-Type: %s\nX-Fetch-Made: %d\n\n", status,
           type[0] ? type : "application/octet-stream", made);
    fwrite(body, 1, total, stdout);
  }
  return 0;
}
