/*
 * catalog: a read-only JSON API over a bundled data file of public-domain books.
 *
 * Routed (actors/app.yaml) at /api/...; the manifest mounts ./catalog/data at guest path /data and
 * this program reads /data/books.tsv (id, title, author, year, tags; tab-separated, UTF-8). A
 * native build reads $CATALOG_DATA_DIR/books.tsv instead (default /data).
 *   GET /api/books                  ->  200 JSON array of books
 *       ?author=<substring>         ->  only books whose author contains it (ASCII case-insensitive)
 *       ?tag=<tag>                  ->  only books with that tag
 *       ?limit=<N>                  ->  at most N books (400 if N is not a number)
 *   GET /api/books/<id>             ->  200 the book, or 404 {"error":"not found"}
 *   GET /api                        ->  200 an index of the endpoints
 *   other paths                     ->  404 {"error":"not found"}
 *   methods other than GET and HEAD ->  405 with Allow: GET
 *   data file missing               ->  500 {"error":"cannot open data file ...","path":"..."}
 * A book: {"id":"emma","title":"Emma","author":"Jane Austen","year":1815,"tags":["novel",...]}.
 *
 * The route is taken from PATH_INFO with a leading "/api" removed, so the actor works whether the
 * host puts the route prefix in SCRIPT_NAME (RFC 3875) or leaves the whole path in PATH_INFO.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *id, *title, *author, *year, *tags;
} Book;

/* ---------------------------------------------------------------- output */

static char *out;
static size_t olen, ocap;

static void emit(const char *s, size_t n) {
  if (olen + n > ocap) {
    size_t cap = ocap ? ocap : 8192;
    while (cap < olen + n) cap *= 2;
    char *p = realloc(out, cap);
    if (!p) {
      fputs("Content-Type: application/json\nStatus: 500 Internal Server Error\n\n"
            "{\"error\":\"out of memory\"}\n",
            stdout);
      exit(0);
    }
    out = p;
    ocap = cap;
  }
  memcpy(out + olen, s, n);
  olen += n;
}

static void emits(const char *s) { emit(s, strlen(s)); }

/* A JSON string literal. The data file is UTF-8; bytes >= 0x80 pass through. */
static void json_str(const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t run = 0;
  emit("\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    emit(s + run, i - run);
    if (c < 0x20) {
      char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      emit(esc, 6);
    } else {
      char esc[2] = {'\\', (char)c};
      emit(esc, 2);
    }
    run = i + 1;
  }
  emit(s + run, n - run);
  emit("\"", 1);
}

static void json_cstr(const char *s) { json_str(s, strlen(s)); }

static void respond(const char *status, const char *extra) {
  fputs("Content-Type: application/json\n", stdout);
  if (status) printf("Status: %s\n", status);
  if (extra) fputs(extra, stdout);
  fputs("\n", stdout);
  fwrite(out, 1, olen, stdout);
}

static int error(const char *status, const char *msg) {
  olen = 0;
  emits("{\"error\":");
  json_cstr(msg);
  emits("}\n");
  respond(status, NULL);
  return 0;
}

/* ---------------------------------------------------------------- data */

static Book *books;
static size_t nbooks;

/* Reads and splits the data file; returns 0 (with errno set) if it cannot be read. */
static int load(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  size_t cap = 16384, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) return fclose(f), errno = ENOMEM, 0;
    size_t r = fread(buf + len, 1, cap - len - 1, f);
    len += r;
    if (r == 0) break;
    if (len + 1 == cap) buf = realloc(buf, cap *= 2);
  }
  int failed = ferror(f);
  fclose(f);
  if (failed) return errno = EIO, 0;
  buf[len] = '\0';

  size_t lines = 1;
  for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
  books = malloc(lines * sizeof *books);
  if (!books) return errno = ENOMEM, 0;
  for (char *line = buf; line && *line;) {
    char *next = strchr(line, '\n');
    if (next) *next++ = '\0';
    size_t l = strlen(line);
    if (l && line[l - 1] == '\r') line[--l] = '\0';
    char *field[5];
    int nf = 0;
    for (char *p = line; nf < 5; nf++) {
      field[nf] = p;
      p = strchr(p, '\t');
      if (!p) {
        nf++;
        break;
      }
      *p++ = '\0';
    }
    /* Skip blank lines, comments, the header and malformed rows. */
    if (nf == 5 && line[0] != '#' && strcmp(field[0], "id") != 0 && *field[0]) {
      books[nbooks++] = (Book){field[0], field[1], field[2], field[3], field[4]};
    }
    line = next;
  }
  return 1;
}

/* ---------------------------------------------------------------- helpers */

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

static int contains_ci(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] && lower((unsigned char)hay[i]) == lower((unsigned char)needle[i])) i++;
    if (i == n) return 1;
  }
  return n == 0;
}

static int has_tag(const char *tags, const char *tag) {
  size_t n = strlen(tag);
  for (const char *p = tags; *p;) {
    size_t k = strcspn(p, ",");
    if (k == n) {
      size_t i = 0;
      while (i < n && lower((unsigned char)p[i]) == lower((unsigned char)tag[i])) i++;
      if (i == n) return 1;
    }
    p += k;
    if (*p) p++;
  }
  return 0;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The URL-decoded value of query parameter key (malloc'd), or NULL when absent. */
static char *query_get(const char *qs, const char *key) {
  size_t klen = strlen(key);
  while (*qs) {
    size_t seg = strcspn(qs, "&;");
    if (seg >= klen && memcmp(qs, key, klen) == 0 && (seg == klen || qs[klen] == '=')) {
      const char *p = qs + (seg > klen ? klen + 1 : klen), *end = qs + seg;
      char *v = malloc((size_t)(end - p) + 1), *o = v;
      if (!v) return NULL;
      while (p < end) {
        char c = *p++;
        if (c == '+') c = ' ';
        else if (c == '%' && end - p >= 2 && hexval(p[0]) >= 0 && hexval(p[1]) >= 0) {
          c = (char)(hexval(p[0]) * 16 + hexval(p[1]));
          p += 2;
        }
        if (c) *o++ = c; /* a NUL would end the string early */
      }
      *o = '\0';
      return v;
    }
    qs += seg;
    if (*qs) qs++;
  }
  return NULL;
}

static void emit_book(const Book *b) {
  emits("{\"id\":");
  json_cstr(b->id);
  emits(",\"title\":");
  json_cstr(b->title);
  emits(",\"author\":");
  json_cstr(b->author);
  emits(",\"year\":");
  char *end;
  long year = strtol(b->year, &end, 10);
  if (*b->year && !*end) {
    char num[24];
    snprintf(num, sizeof num, "%ld", year);
    emits(num);
  } else {
    emits("null");
  }
  emits(",\"tags\":[");
  int first = 1;
  for (const char *p = b->tags; *p;) {
    size_t k = strcspn(p, ",");
    if (k) {
      if (!first) emits(",");
      json_str(p, k);
      first = 0;
    }
    p += k;
    if (*p) p++;
  }
  emits("]}");
}

/* ---------------------------------------------------------------- main */

int main(void) {
  const char *method = getenv("REQUEST_METHOD");
  const char *script = getenv("SCRIPT_NAME");
  const char *path = getenv("PATH_INFO");
  const char *qs = getenv("QUERY_STRING");
  if (!method) method = "GET";
  if (!script) script = "";
  if (!path) path = "";
  if (!qs) qs = "";

  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
    olen = 0;
    emits("{\"error\":\"method not allowed\"}\n");
    respond("405 Method Not Allowed", "Allow: GET\n");
    return 0;
  }

  /* "/api/books/x" or (SCRIPT_NAME "/api") "/books/x" -> "/books/x". */
  size_t sl = strlen(script);
  int script_is_api = sl >= 4 && strcmp(script + sl - 4, "/api") == 0;
  if (!script_is_api && strncmp(path, "/api", 4) == 0 && (path[4] == '/' || path[4] == '\0'))
    path += 4;

  if (path[0] == '\0' || strcmp(path, "/") == 0) {
    emits("{\"name\":\"catalog\",\"endpoints\":[\"/api/books?author=&tag=&limit=\","
          "\"/api/books/{id}\"]}\n");
    respond(NULL, NULL);
    return 0;
  }
  if (strncmp(path, "/books", 6) != 0 || (path[6] != '/' && path[6] != '\0'))
    return error("404 Not Found", "not found");
  const char *id = path[6] ? path + 7 : "";
  size_t idlen = strlen(id);
  if (idlen && id[idlen - 1] == '/') idlen--; /* /api/books/emma/ */
  if (memchr(id, '/', idlen)) return error("404 Not Found", "not found");

  const char *dir = getenv("CATALOG_DATA_DIR");
  if (!dir || !*dir) dir = "/data";
  size_t dl = strlen(dir);
  char *file = malloc(dl + sizeof "/books.tsv");
  if (!file) return error("500 Internal Server Error", "out of memory");
  memcpy(file, dir, dl);
  if (dl > 1 && dir[dl - 1] == '/') dl--;
  memcpy(file + dl, "/books.tsv", sizeof "/books.tsv");
  if (!load(file)) {
    const char *why = strerror(errno);
    size_t ml = strlen(file) + strlen(why) + 32;
    char *msg = malloc(ml);
    if (!msg) return error("500 Internal Server Error", "out of memory");
    snprintf(msg, ml, "cannot open data file %s: %s", file, why);
    olen = 0;
    emits("{\"error\":");
    json_cstr(msg);
    emits(",\"path\":");
    json_cstr(file);
    emits("}\n");
    respond("500 Internal Server Error", NULL);
    return 0;
  }

  if (idlen) {
    for (size_t i = 0; i < nbooks; i++) {
      if (strlen(books[i].id) == idlen && memcmp(books[i].id, id, idlen) == 0) {
        emit_book(&books[i]);
        emits("\n");
        respond(NULL, NULL);
        return 0;
      }
    }
    return error("404 Not Found", "not found");
  }

  char *author = query_get(qs, "author");
  char *tag = query_get(qs, "tag");
  char *limit_s = query_get(qs, "limit");
  size_t limit = (size_t)-1;
  if (limit_s) {
    char *end;
    unsigned long v = strtoul(limit_s, &end, 10);
    if (!*limit_s || *end || limit_s[0] == '-' || limit_s[0] == '+' || limit_s[0] == ' ')
      return error("400 Bad Request", "limit must be a non-negative integer");
    limit = v;
  }
  emits("[");
  size_t shown = 0;
  for (size_t i = 0; i < nbooks && shown < limit; i++) {
    if (author && !contains_ci(books[i].author, author)) continue;
    if (tag && !has_tag(books[i].tags, tag)) continue;
    emits(shown ? ",\n" : "\n");
    emit_book(&books[i]);
    shown++;
  }
  emits(shown ? "\n]\n" : "]\n");
  respond(NULL, NULL);
  return 0;
}
