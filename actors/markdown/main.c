/*
 * markdown: renders Markdown to HTML.
 *
 * Routed (actors/app.yaml) at /markdown (exact):
 *   POST /markdown  (body: Markdown)  ->  200 text/html; charset=utf-8, the rendered HTML fragment
 *   GET  /markdown                    ->  200 text/html, a page with a form that explains the API
 *   body over 1 MiB -> 413; other methods -> 405 (Allow: GET, HEAD, POST)
 * The page's form posts application/x-www-form-urlencoded `markdown=...`; such a body (and only
 * one that starts with `markdown=`) is decoded first, so the form works from a browser while
 * `curl --data-binary @README.md` (which also claims to be form-encoded) is rendered as is.
 *
 * Subset: ATX headings, paragraphs (trailing double space = <br />), *em* or _em_, **strong**
 * or __strong__, ***both***, `code`, fenced code blocks (``` or ~~~; the info string becomes
 * class="language-x"), nested unordered (-, *, +) and ordered (1. or 1)) lists, [links](url "title"), ![images](src),
 * > blockquotes, horizontal rules (---, ***, ___), backslash escapes. All text is HTML-escaped,
 * raw HTML included; javascript:, vbscript: and data: URLs are dropped (the text is kept).
 * Nesting is capped and every delimiter search is memoised, so hostile input stays linear-ish.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BODY (1u << 20)
#define MAX_BLOCK_DEPTH 16
#define MAX_INLINE_DEPTH 16
#define NOT_FOUND ((size_t)-1)

typedef struct {
  const char *s;
  size_t n;
} Line;

/* ---------------------------------------------------------------- output */

static char *out;
static size_t olen, ocap;

static void oom(void) {
  fputs("Content-Type: text/plain\nStatus: 500 Internal Server Error\n\nout of memory\n", stdout);
  exit(0);
}

static void emit(const char *s, size_t n) {
  if (olen + n > ocap) {
    size_t cap = ocap ? ocap : 4096;
    while (cap < olen + n) cap *= 2;
    char *p = realloc(out, cap);
    if (!p) oom();
    out = p;
    ocap = cap;
  }
  memcpy(out + olen, s, n);
  olen += n;
}

static void emits(const char *s) { emit(s, strlen(s)); }

/* HTML-escaped text: & < > " (and NUL becomes U+FFFD). */
static void emit_esc(const char *s, size_t n) {
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    const char *rep;
    switch (s[i]) {
      case '&': rep = "&amp;"; break;
      case '<': rep = "&lt;"; break;
      case '>': rep = "&gt;"; break;
      case '"': rep = "&quot;"; break;
      case '\0': rep = "\xEF\xBF\xBD"; break;
      default: continue;
    }
    emit(s + run, i - run);
    emits(rep);
    run = i + 1;
  }
  emit(s + run, n - run);
}

/* ---------------------------------------------------------------- inline */

static int is_space(int c) { return c == ' ' || c == '\t' || c == '\n'; }
static int is_alnum(int c) { return isalnum((unsigned char)c); }

/* Memoised searches for one inline_render call: a failed forward search from `start` fails from
 * every later start too, so each delimiter kind is scanned to the end at most once. */
typedef struct {
  size_t emph_fail[2][3]; /* [* or _][run length - 1]: smallest start that found no closer */
  size_t code_fail[16];   /* [backtick run length - 1] */
  size_t rb_from, rb_at;  /* the first ']' at or after rb_from is at rb_at (NOT_FOUND: none) */
  size_t link_fail_at;    /* a ']' known not to be followed by a valid (destination) */
} Memo;

/* A maximal run of c at s[i]. */
static size_t run_len(const char *s, size_t n, size_t i, char c) {
  size_t k = 0;
  while (i + k < n && s[i + k] == c) k++;
  return k;
}

/* The closing run of exactly k c's for an opener ending at `from`, or NOT_FOUND. */
static size_t find_emph_close(const char *s, size_t n, size_t from, char c, size_t k) {
  for (size_t p = from; p < n;) {
    if (s[p] == '\\') {
      p += 2;
      continue;
    }
    if (s[p] != c) {
      p++;
      continue;
    }
    size_t r = run_len(s, n, p, c);
    if (r == k && p > from && !is_space(s[p - 1]) && (c != '_' || p + r >= n || !is_alnum(s[p + r])))
      return p;
    p += r;
  }
  return NOT_FOUND;
}

static size_t find_code_close(const char *s, size_t n, size_t from, size_t k) {
  for (size_t p = from; p < n;) {
    if (s[p] != '`') {
      p++;
      continue;
    }
    size_t r = run_len(s, n, p, '`');
    if (r == k) return p;
    p += r;
  }
  return NOT_FOUND;
}

/* javascript:, vbscript: and data: URLs, however disguised with case, whitespace or controls. */
static int unsafe_url(const char *u, size_t n) {
  static const char *const bad[] = {"javascript:", "vbscript:", "data:"};
  char scheme[12];
  size_t m = 0;
  for (size_t i = 0; i < n && m < sizeof scheme; i++) {
    unsigned char c = (unsigned char)u[i];
    if (c <= 0x20 || c == 0x7F) continue;
    scheme[m++] = (char)tolower(c);
  }
  for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
    size_t bl = strlen(bad[b]);
    if (m >= bl && memcmp(scheme, bad[b], bl) == 0) return 1;
  }
  return 0;
}

typedef struct {
  size_t text_end; /* index of ']' */
  size_t dest, dest_len, title, title_len;
  size_t end; /* index after ')' */
} Link;

/* Parses `(dest "title")` at s[p] == '('. */
static int parse_dest(const char *s, size_t n, size_t p, Link *l) {
  p++;
  while (p < n && is_space(s[p])) p++;
  if (p < n && s[p] == '<') {
    l->dest = ++p;
    while (p < n && s[p] != '>' && s[p] != '\n' && s[p] != '<') p++;
    if (p >= n || s[p] != '>') return 0;
    l->dest_len = p - l->dest;
    p++;
  } else {
    int depth = 0;
    l->dest = p;
    while (p < n && !is_space(s[p]) && (s[p] != ')' || depth > 0)) {
      if (s[p] == '\\' && p + 1 < n) p++;
      else if (s[p] == '(' && ++depth > 8) return 0;
      else if (s[p] == ')') depth--;
      p++;
    }
    l->dest_len = p - l->dest;
  }
  l->title_len = 0;
  l->title = p;
  size_t ws = p;
  while (p < n && is_space(s[p])) p++;
  if (p < n && p > ws && (s[p] == '"' || s[p] == '\'')) {
    char q = s[p++];
    l->title = p;
    while (p < n && s[p] != q) p += s[p] == '\\' ? 2 : 1;
    if (p >= n) return 0;
    l->title_len = p - l->title;
    p++;
    while (p < n && is_space(s[p])) p++;
  }
  if (p >= n || s[p] != ')') return 0;
  l->end = p + 1;
  return 1;
}

/* A link or image whose '[' is at s[i]. */
static int parse_link(const char *s, size_t n, size_t i, Memo *m, Link *l) {
  size_t q;
  if (m->rb_from != NOT_FOUND && i > m->rb_from && (m->rb_at == NOT_FOUND || i < m->rb_at)) {
    q = m->rb_at;
  } else {
    for (q = i + 1; q < n && !(s[q] == ']' && s[q - 1] != '\\'); q++) {
    }
    if (q >= n) q = NOT_FOUND;
  }
  m->rb_from = i;
  m->rb_at = q;
  if (q == NOT_FOUND || q == m->link_fail_at) return 0;
  if (q + 1 >= n || s[q + 1] != '(' || !parse_dest(s, n, q + 1, l)) {
    m->link_fail_at = q;
    return 0;
  }
  l->text_end = q;
  return 1;
}

/* Text with backslash escapes removed, HTML-escaped (for URLs, titles and alt text). */
static void emit_unescaped(const char *s, size_t n) {
  size_t run = 0;
  for (size_t i = 0; i + 1 < n; i++) {
    if (s[i] == '\\' && ispunct((unsigned char)s[i + 1])) {
      emit_esc(s + run, i - run);
      run = ++i;
    }
  }
  emit_esc(s + run, n - run);
}

enum { NO_LINKS = 1 };

static void inline_render(const char *s, size_t n, int depth, int flags) {
  Memo m;
  for (int a = 0; a < 2; a++)
    for (int b = 0; b < 3; b++) m.emph_fail[a][b] = NOT_FOUND;
  for (int b = 0; b < 16; b++) m.code_fail[b] = NOT_FOUND;
  m.rb_from = m.rb_at = m.link_fail_at = NOT_FOUND;

  size_t i = 0, text = 0; /* s[text..i) is plain text not yet emitted */
#define FLUSH() (emit_esc(s + text, i - text))
  while (i < n) {
    char c = s[i];
    if (c == '\\' && i + 1 < n && ispunct((unsigned char)s[i + 1])) {
      FLUSH();
      emit_esc(s + i + 1, 1);
      text = i += 2;
    } else if (c == '`') {
      size_t k = run_len(s, n, i, '`'), p = NOT_FOUND;
      if (k <= 16 && i + k < m.code_fail[k - 1]) {
        p = find_code_close(s, n, i + k, k);
        if (p == NOT_FOUND) m.code_fail[k - 1] = i + k;
      }
      if (p == NOT_FOUND) {
        i += k;
        continue;
      }
      size_t a = i + k, b = p;
      /* Strip one space each side when both are there (and the span is not all spaces). */
      if (b - a >= 2 && (s[a] == ' ' || s[a] == '\n') && (s[b - 1] == ' ' || s[b - 1] == '\n')) {
        size_t t = a;
        while (t < b && (s[t] == ' ' || s[t] == '\n')) t++;
        if (t < b) a++, b--;
      }
      FLUSH();
      emits("<code>");
      for (size_t t = a; t < b; t++) emit_esc(s[t] == '\n' ? " " : s + t, 1);
      emits("</code>");
      text = i = p + k;
    } else if (c == '*' || c == '_') {
      size_t k = run_len(s, n, i, c), p = NOT_FOUND;
      int kind = c == '_';
      int can_open = k <= 3 && depth < MAX_INLINE_DEPTH && i + k < n && !is_space(s[i + k]) &&
                     (c == '*' || i == 0 || !is_alnum(s[i - 1]));
      if (can_open && i + k < m.emph_fail[kind][k - 1]) {
        p = find_emph_close(s, n, i + k, c, k);
        if (p == NOT_FOUND) m.emph_fail[kind][k - 1] = i + k;
      }
      if (p == NOT_FOUND) {
        i += k;
        continue;
      }
      FLUSH();
      emits(k == 1 ? "<em>" : k == 2 ? "<strong>" : "<em><strong>");
      inline_render(s + i + k, p - i - k, depth + 1, flags);
      emits(k == 1 ? "</em>" : k == 2 ? "</strong>" : "</strong></em>");
      text = i = p + k;
    } else if ((c == '[' || (c == '!' && i + 1 < n && s[i + 1] == '[')) && !(flags & NO_LINKS) &&
               depth < MAX_INLINE_DEPTH) {
      int image = c == '!';
      Link l;
      size_t open = i + image;
      if (!parse_link(s, n, open, &m, &l)) {
        i = open + 1;
        continue;
      }
      const char *label = s + open + 1, *dest = s + l.dest;
      size_t label_len = l.text_end - open - 1;
      FLUSH();
      if (image) {
        if (unsafe_url(dest, l.dest_len)) {
          emit_unescaped(label, label_len);
        } else {
          emits("<img src=\"");
          emit_unescaped(dest, l.dest_len);
          emits("\" alt=\"");
          emit_unescaped(label, label_len);
          if (l.title_len) {
            emits("\" title=\"");
            emit_unescaped(s + l.title, l.title_len);
          }
          emits("\" />");
        }
      } else if (unsafe_url(dest, l.dest_len)) {
        inline_render(label, label_len, depth + 1, flags | NO_LINKS);
      } else {
        emits("<a href=\"");
        emit_unescaped(dest, l.dest_len);
        if (l.title_len) {
          emits("\" title=\"");
          emit_unescaped(s + l.title, l.title_len);
        }
        emits("\">");
        inline_render(label, label_len, depth + 1, flags | NO_LINKS);
        emits("</a>");
      }
      text = i = l.end;
    } else if (c == ' ') {
      size_t k = run_len(s, n, i, ' ');
      if (k >= 2 && i + k < n && s[i + k] == '\n') { /* hard line break */
        FLUSH();
        emits("<br />\n");
        text = i = i + k + 1;
      } else {
        i += k;
      }
    } else {
      i++;
    }
  }
  FLUSH();
#undef FLUSH
}

/* ---------------------------------------------------------------- blocks */

static size_t indent_of(Line l) {
  size_t k = 0;
  while (k < l.n && l.s[k] == ' ') k++;
  return k;
}

static int is_blank(Line l) {
  for (size_t i = 0; i < l.n; i++)
    if (l.s[i] != ' ' && l.s[i] != '\t') return 0;
  return 1;
}

static Line skip(Line l, size_t k) {
  if (k > l.n) k = l.n;
  l.s += k;
  l.n -= k;
  return l;
}

static Line trim(Line l) {
  while (l.n && (l.s[0] == ' ' || l.s[0] == '\t')) l.s++, l.n--;
  while (l.n && (l.s[l.n - 1] == ' ' || l.s[l.n - 1] == '\t')) l.n--;
  return l;
}

/* ``` or ~~~ (3+); ch and len describe the fence, info is its info string. */
static int fence_open(Line l, char *ch, size_t *len, Line *info) {
  size_t ind = indent_of(l);
  if (ind > 3 || ind >= l.n || (l.s[ind] != '`' && l.s[ind] != '~')) return 0;
  size_t k = run_len(l.s, l.n, ind, l.s[ind]);
  if (k < 3) return 0;
  *ch = l.s[ind];
  *len = k;
  *info = trim(skip(l, ind + k));
  if (*ch == '`' && memchr(info->s, '`', info->n)) return 0;
  return 1;
}

static int fence_close(Line l, char ch, size_t len) {
  size_t ind = indent_of(l);
  if (ind > 3) return 0;
  size_t k = run_len(l.s, l.n, ind, ch);
  return k >= len && is_blank(skip(l, ind + k));
}

/* ATX heading level (1-6) or 0; *content is its text without the closing #s. */
static int heading(Line l, Line *content) {
  size_t ind = indent_of(l);
  if (ind > 3) return 0;
  size_t k = run_len(l.s, l.n, ind, '#');
  if (k < 1 || k > 6 || (ind + k < l.n && l.s[ind + k] != ' ' && l.s[ind + k] != '\t')) return 0;
  Line c = trim(skip(l, ind + k));
  size_t e = c.n;
  while (e > 0 && c.s[e - 1] == '#') e--;
  if (e == 0 || c.s[e - 1] == ' ' || c.s[e - 1] == '\t') c.n = e;
  *content = trim(c);
  return (int)k;
}

static int is_hr(Line l) {
  size_t ind = indent_of(l), count = 0;
  if (ind > 3 || ind >= l.n) return 0;
  char ch = l.s[ind];
  if (ch != '-' && ch != '*' && ch != '_') return 0;
  for (size_t i = ind; i < l.n; i++) {
    if (l.s[i] == ch) count++;
    else if (l.s[i] != ' ' && l.s[i] != '\t') return 0;
  }
  return count >= 3;
}

/* Bytes of the "> " prefix, or 0 when l is not a blockquote line. */
static size_t quote_prefix(Line l) {
  size_t ind = indent_of(l);
  if (ind > 3 || ind >= l.n || l.s[ind] != '>') return 0;
  return ind + 1 + (ind + 1 < l.n && (l.s[ind + 1] == ' ' || l.s[ind + 1] == '\t'));
}

typedef struct {
  int ordered;
  char mark;      /* '-', '*', '+' or the ordered delimiter '.' / ')' */
  long start;     /* ordered lists: the number */
  size_t content; /* bytes before the item's content (its indentation inside the item) */
  int empty;      /* nothing after the marker */
} Item;

static int list_item(Line l, Item *it) {
  size_t ind = indent_of(l), p = ind;
  if (ind > 3 || ind >= l.n) return 0;
  char c = l.s[p];
  if (c == '-' || c == '*' || c == '+') {
    it->ordered = 0;
    it->mark = c;
    it->start = 0;
    p++;
  } else if (c >= '0' && c <= '9') {
    long v = 0;
    while (p < l.n && p - ind < 9 && l.s[p] >= '0' && l.s[p] <= '9') v = v * 10 + (l.s[p++] - '0');
    if (p >= l.n || (l.s[p] != '.' && l.s[p] != ')')) return 0;
    it->ordered = 1;
    it->mark = l.s[p++];
    it->start = v;
  } else {
    return 0;
  }
  if (p < l.n && l.s[p] != ' ' && l.s[p] != '\t') return 0;
  size_t sp = 0;
  while (p + sp < l.n && (l.s[p + sp] == ' ' || l.s[p + sp] == '\t')) sp++;
  it->empty = p + sp >= l.n;
  it->content = it->empty || sp > 4 ? p + 1 : p + sp;
  return 1;
}

/* Whether l starts a block that ends a paragraph. */
static int interrupts(Line l) {
  char ch;
  size_t len;
  Line info;
  Item it;
  if (fence_open(l, &ch, &len, &info) || heading(l, &info) || is_hr(l) || quote_prefix(l))
    return 1;
  return list_item(l, &it) && !it.empty && (!it.ordered || it.start == 1);
}

static void render_blocks(const Line *L, size_t n, int depth, int tight);

static size_t render_fence(const Line *L, size_t n, size_t i) {
  char ch;
  size_t len;
  Line info;
  fence_open(L[i], &ch, &len, &info);
  size_t ind = indent_of(L[i]);
  emits("<pre><code");
  if (info.n) {
    size_t w = 0;
    while (w < info.n && info.s[w] != ' ' && info.s[w] != '\t') w++;
    emits(" class=\"language-");
    emit_unescaped(info.s, w);
    emits("\"");
  }
  emits(">");
  for (i++; i < n && !fence_close(L[i], ch, len); i++) {
    size_t k = indent_of(L[i]);
    Line l = skip(L[i], k < ind ? k : ind);
    emit_esc(l.s, l.n);
    emits("\n");
  }
  emits("</code></pre>\n");
  return i < n ? i + 1 : n;
}

/* Paragraph text: lines joined with '\n', leading space removed, trailing space of the last line
 * removed (a trailing double space on the others is a hard break). */
static void render_paragraph(const Line *L, size_t n, int tight) {
  size_t total = 0;
  for (size_t i = 0; i < n; i++) total += L[i].n + 1;
  char *buf = malloc(total + 1);
  if (!buf) oom();
  size_t len = 0;
  for (size_t i = 0; i < n; i++) {
    Line l = L[i];
    while (l.n && (l.s[0] == ' ' || l.s[0] == '\t')) l.s++, l.n--;
    if (i + 1 == n) l = trim(l);
    memcpy(buf + len, l.s, l.n);
    len += l.n;
    if (i + 1 < n) buf[len++] = '\n';
  }
  if (!tight) emits("<p>");
  inline_render(buf, len, 0, 0);
  if (!tight) emits("</p>\n");
  free(buf);
}

static size_t render_quote(const Line *L, size_t n, size_t i, int depth) {
  Line *sub = malloc((n - i) * sizeof *sub);
  if (!sub) oom();
  size_t m = 0;
  for (; i < n; i++) {
    size_t q = quote_prefix(L[i]);
    if (q) {
      sub[m++] = skip(L[i], q);
    } else if (!is_blank(L[i]) && m > 0 && !is_blank(sub[m - 1]) && !interrupts(L[i])) {
      sub[m++] = L[i]; /* lazy continuation of a quoted paragraph */
    } else {
      break;
    }
  }
  emits("<blockquote>\n");
  render_blocks(sub, m, depth + 1, 0);
  emits("</blockquote>\n");
  free(sub);
  return i;
}

static int same_list(const Item *a, const Item *b) {
  return a->ordered == b->ordered && a->mark == b->mark;
}

static size_t render_list(const Line *L, size_t n, size_t i, int depth) {
  Item first, it;
  list_item(L[i], &first);
  Line *lines = malloc((n - i) * sizeof *lines);
  size_t *starts = malloc((n - i + 1) * sizeof *starts);
  if (!lines || !starts) oom();
  size_t nl = 0, ni = 0;
  int loose = 0;
  while (i < n && list_item(L[i], &it) && same_list(&first, &it) && !is_hr(L[i])) {
    size_t w = it.content;
    starts[ni++] = nl;
    lines[nl++] = skip(L[i], w);
    size_t blanks = 0;
    for (i++; i < n; i++) {
      Line l = L[i];
      if (is_blank(l)) {
        blanks++;
        continue;
      }
      if (indent_of(l) >= w) {
        if (blanks) loose = 1;
        for (; blanks; blanks--) lines[nl++] = skip(l, l.n);
        lines[nl++] = skip(l, w);
        continue;
      }
      Item next;
      if (!blanks && !is_blank(lines[nl - 1]) && !interrupts(l) && !list_item(l, &next)) {
        lines[nl++] = l; /* lazy continuation */
        continue;
      }
      break;
    }
    if (i < n && blanks && list_item(L[i], &it) && same_list(&first, &it) && !is_hr(L[i])) loose = 1;
    else i -= blanks; /* trailing blank lines are not the list's */
  }
  starts[ni] = nl;
  if (!first.ordered) {
    emits("<ul>\n");
  } else if (first.start == 1) {
    emits("<ol>\n");
  } else {
    char tag[32];
    snprintf(tag, sizeof tag, "<ol start=\"%ld\">\n", first.start);
    emits(tag);
  }
  for (size_t k = 0; k < ni; k++) {
    emits("<li>");
    render_blocks(lines + starts[k], starts[k + 1] - starts[k], depth + 1, !loose);
    emits("</li>\n");
  }
  emits(first.ordered ? "</ol>\n" : "</ul>\n");
  free(lines);
  free(starts);
  return i;
}

/* Renders lines as blocks. Tight (list items): paragraphs without <p>. */
static void render_blocks(const Line *L, size_t n, int depth, int tight) {
  size_t i = 0;
  int first = 1;
  while (i < n) {
    Line l = L[i], content;
    char ch;
    size_t len;
    Item it;
    if (is_blank(l)) {
      i++;
      continue;
    }
    if (tight && !first) emits("\n");
    first = 0;
    int level;
    if (fence_open(l, &ch, &len, &content)) {
      i = render_fence(L, n, i);
    } else if ((level = heading(l, &content))) {
      char tag[8];
      snprintf(tag, sizeof tag, "<h%d>", level);
      emits(tag);
      inline_render(content.s, content.n, 0, 0);
      snprintf(tag, sizeof tag, "</h%d>\n", level);
      emits(tag);
      i++;
    } else if (is_hr(l)) {
      emits("<hr />\n");
      i++;
    } else if (depth < MAX_BLOCK_DEPTH && quote_prefix(l)) {
      i = render_quote(L, n, i, depth);
    } else if (depth < MAX_BLOCK_DEPTH && list_item(l, &it)) {
      i = render_list(L, n, i, depth);
    } else {
      size_t j = i + 1;
      while (j < n && !is_blank(L[j]) && !interrupts(L[j])) j++;
      render_paragraph(L + i, j - i, tight);
      i = j;
    }
  }
}

/* ---------------------------------------------------------------- CGI */

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* In-place x-www-form-urlencoded decoding of buf[0..n) up to the first '&'; returns the length. */
static size_t form_decode(char *buf, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n && buf[i] != '&'; i++) {
    char c = buf[i];
    if (c == '+') {
      c = ' ';
    } else if (c == '%' && i + 2 < n && hexval(buf[i + 1]) >= 0 && hexval(buf[i + 2]) >= 0) {
      c = (char)(hexval(buf[i + 1]) * 16 + hexval(buf[i + 2]));
      i += 2;
    }
    buf[o++] = c;
  }
  return o;
}

static const char FORM_PAGE[] =
    "<!doctype html>\n"
    "<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Markdown renderer</title></head>\n"
    "<body>\n"
    "<h1>Markdown renderer</h1>\n"
    "<p>POST a Markdown document to this URL and get HTML back, e.g.</p>\n"
    "<pre><code>curl --data-binary @README.md http://127.0.0.1:8080/markdown</code></pre>\n"
    "<p>Supported: headings, paragraphs, <em>emphasis</em>, <strong>strong</strong>, "
    "<code>code</code>, fenced code blocks, lists, links, images, blockquotes and rules. "
    "Bodies are limited to 1 MiB.</p>\n"
    "<form method=\"post\">\n"
    "<textarea name=\"markdown\" rows=\"16\" cols=\"80\"># Hello\n\n*Markdown* on **weft**.\n"
    "</textarea><br>\n"
    "<button type=\"submit\">Render</button>\n"
    "</form>\n"
    "</body></html>\n";

static void respond(const char *status, const char *type, const char *extra, const char *body,
                    size_t n) {
  printf("Content-Type: %s\n", type);
  if (status) printf("Status: %s\n", status);
  if (extra) fputs(extra, stdout);
  fputs("\n", stdout);
  fwrite(body, 1, n, stdout);
}

int main(void) {
  const char *method = getenv("REQUEST_METHOD");
  if (!method) method = "GET";
  if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
    respond(NULL, "text/html; charset=utf-8", NULL, FORM_PAGE, sizeof FORM_PAGE - 1);
    return 0;
  }
  if (strcmp(method, "POST") != 0) {
    static const char msg[] = "markdown: use GET for the form, POST to render\n";
    respond("405 Method Not Allowed", "text/plain; charset=utf-8", "Allow: GET, HEAD, POST\n", msg,
            sizeof msg - 1);
    return 0;
  }

  const char *cl = getenv("CONTENT_LENGTH");
  char *end = NULL;
  unsigned long long want = cl && *cl ? strtoull(cl, &end, 10) : 0;
  if (cl && *cl && (*end || *cl == '-')) {
    static const char msg[] = "markdown: malformed CONTENT_LENGTH\n";
    respond("400 Bad Request", "text/plain; charset=utf-8", NULL, msg, sizeof msg - 1);
    return 0;
  }
  if (want > MAX_BODY) {
    static const char msg[] = "markdown: body over 1 MiB\n";
    respond("413 Payload Too Large", "text/plain; charset=utf-8", NULL, msg, sizeof msg - 1);
    return 0;
  }
  char *body = malloc(want + 1);
  if (!body) oom();
  size_t got = 0;
  while (got < want) {
    size_t r = fread(body + got, 1, want - got, stdin);
    if (r == 0) break;
    got += r;
  }
  const char *ctype = getenv("CONTENT_TYPE");
  if (ctype && strncmp(ctype, "application/x-www-form-urlencoded", 33) == 0 && got >= 9 &&
      memcmp(body, "markdown=", 9) == 0) {
    memmove(body, body + 9, got - 9);
    got = form_decode(body, got - 9);
  }

  /* Normalise: CRLF / CR -> LF, tabs in indentation -> spaces (stops of 4). */
  size_t tabs = 0;
  for (size_t i = 0; i < got; i++) tabs += body[i] == '\t';
  char *text = malloc(got + tabs * 3 + 1);
  Line *lines = malloc((got + 1) * sizeof *lines);
  if (!text || !lines) oom();
  size_t tl = 0, nl = 0, line_start = 0;
  int at_indent = 1;
  for (size_t i = 0; i < got; i++) {
    char c = body[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < got && body[i + 1] == '\n') i++;
      lines[nl++] = (Line){text + line_start, tl - line_start};
      text[tl++] = '\n';
      line_start = tl;
      at_indent = 1;
    } else if (c == '\t' && at_indent) {
      do text[tl++] = ' ';
      while ((tl - line_start) % 4);
    } else {
      if (c != ' ') at_indent = 0;
      text[tl++] = c;
    }
  }
  if (tl > line_start) lines[nl++] = (Line){text + line_start, tl - line_start};

  render_blocks(lines, nl, 0, 0);
  respond(NULL, "text/html; charset=utf-8", NULL, out ? out : "", olen);
  return 0;
}
