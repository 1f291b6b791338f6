/*
 * Oracle for tests/data/config/libdm-vectors.txt: parses each file named on the command line
 * with the real libdevmapper (no-dup-check mode, then dup-check mode) and prints what
 * dm_config_write_node writes, or ERR. Built without the libdevmapper headers:
 *   gcc -O1 -o libdm_oracle libdm_oracle.c /lib/x86_64-linux-gnu/libdevmapper.so.1.02.1
 * Output per file and mode: "== FILE KEEP|MERGE\n", "OK\n" + lines or "ERR\n", "==END\n".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct dm_config_tree;
typedef int (*dm_putline_fn)(const char *line, void *baton);
struct dm_config_tree *dm_config_create(void);
void dm_config_destroy(struct dm_config_tree *);
int dm_config_parse(struct dm_config_tree *, const char *, const char *);
int dm_config_parse_without_dup_node_check(struct dm_config_tree *, const char *, const char *);
int dm_config_write_node(const void *cn, dm_putline_fn putline, void *baton);
static int put(const char *line, void *b) { fputs(line, stdout); fputc('\n', stdout); return 1; }
int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb"); if (!f) return 2;
    fseek(f, 0, SEEK_END); long n = ftell(f); fseek(f, 0, SEEK_SET);
    char *buf = malloc(n + 1); if (fread(buf, 1, n, f) != (size_t)n) return 2; buf[n] = 0; fclose(f);
    for (int mode = 0; mode < 2; mode++) {
      struct dm_config_tree *cft = dm_config_create();
      int r = mode ? dm_config_parse(cft, buf, buf + n) : dm_config_parse_without_dup_node_check(cft, buf, buf + n);
      printf("== %s %s\n", argv[i], mode ? "MERGE" : "KEEP");
      if (!r) printf("ERR\n");
      else { printf("OK\n"); void *root = *(void **)cft; if (root) dm_config_write_node(root, put, NULL); }
      printf("==END\n");
      dm_config_destroy(cft);
    }
    free(buf);
  }
  return 0;
}
