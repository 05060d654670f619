// WASI-heavy bench program: in DIR, write N small files, read each back and check it, then
// remove them all. Usage: files DIR [N]. Prints "ok N" or the first failure (exit 1).
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: files DIR [N]\n");
    return 2;
  }
  int n = argc > 2 ? atoi(argv[2]) : 10000;
  char dir[4096], path[4200], buf[128], want[128];
  snprintf(dir, sizeof dir, "%s/files-bench", argv[1]);
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    perror("mkdir");
    return 1;
  }
  for (int i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/f%05d.txt", dir, i);
    FILE *f = fopen(path, "w");
    if (!f) {
      perror(path);
      return 1;
    }
    fprintf(f, "file %d of %d: the quick brown fox jumps over the lazy dog\n", i, n);
    fclose(f);
  }
  int seen = 0;
  DIR *d = opendir(dir);
  if (!d) {
    perror("opendir");
    return 1;
  }
  struct dirent *e;
  while ((e = readdir(d))) if (e->d_name[0] == 'f') seen++;
  closedir(d);
  if (seen != n) {
    fprintf(stderr, "listed %d files, wrote %d\n", seen, n);
    return 1;
  }
  for (int i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/f%05d.txt", dir, i);
    snprintf(want, sizeof want, "file %d of %d: the quick brown fox jumps over the lazy dog\n", i, n);
    FILE *f = fopen(path, "r");
    if (!f) {
      perror(path);
      return 1;
    }
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[got] = 0;
    if (strcmp(buf, want) != 0) {
      fprintf(stderr, "%s: wrong contents\n", path);
      return 1;
    }
    if (unlink(path) != 0) {
      perror("unlink");
      return 1;
    }
  }
  if (rmdir(dir) != 0) {
    perror("rmdir");
    return 1;
  }
  printf("ok %d\n", n);
  return 0;
}
