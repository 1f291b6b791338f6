/*
 * libdevmapper side of common/src/bin/codec-bench.rs: times dm_config parsing, writing and
 * lookups on the text that the Rust bench wrote (its second argument).
 *   gcc -O2 -o libdm_bench libdm_bench.c /lib/x86_64-linux-gnu/libdevmapper.so.1.02.1
 *   ./libdm_bench /tmp/bench1000.txt 1000
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
struct dm_config_tree;
struct dm_config_node;
typedef int (*dm_putline_fn)(const char *line, void *baton);
struct dm_config_tree *dm_config_create(void);
void dm_config_destroy(struct dm_config_tree *);
int dm_config_parse_without_dup_node_check(struct dm_config_tree *, const char *, const char *);
int dm_config_write_node(const struct dm_config_node *cn, dm_putline_fn putline, void *baton);
const char *dm_config_find_str(const struct dm_config_node *cn, const char *path, const char *fail);

static size_t sink;
static int put(const char *line, void *b) { sink += strlen(line) + 1; return 1; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

int main(int argc, char **argv) {
	FILE *f = fopen(argv[1], "rb");
	int lvs = atoi(argv[2]);
	if (!f) return 2;
	fseek(f, 0, SEEK_END); long n = ftell(f); fseek(f, 0, SEEK_SET);
	char *buf = malloc(n + 1);
	if (fread(buf, 1, n, f) != (size_t)n) return 2;
	buf[n] = 0;
	int iters = 200000 / (lvs ? lvs : 1); if (iters < 5) iters = 5;
	double t = now();
	for (int i = 0; i < iters; i++) {
		struct dm_config_tree *cft = dm_config_create();
		if (!dm_config_parse_without_dup_node_check(cft, buf, buf + n)) return 3;
		dm_config_destroy(cft);
	}
	printf("%-28s %12.2f us/op\n", "parse (keep-all)", (now() - t) * 1e6 / iters);
	struct dm_config_tree *cft = dm_config_create();
	dm_config_parse_without_dup_node_check(cft, buf, buf + n);
	const struct dm_config_node *root = *(const struct dm_config_node **)cft;
	t = now();
	for (int i = 0; i < iters; i++) dm_config_write_node(root, put, NULL);
	printf("%-28s %12.2f us/op\n", "write_tree", (now() - t) * 1e6 / iters);
	char paths[100][128]; int np = 0, step = lvs / 100 ? lvs / 100 : 1;
	for (int i = 0; i < lvs && np < 100; i += step)
		snprintf(paths[np++], 128, "metadata/logical_volumes/lv%d/segment1/type", i);
	t = now();
	for (int i = 0; i < iters * 10; i++)
		for (int p = 0; p < np; p++) sink += (size_t)dm_config_find_str(root, paths[p], NULL);
	double per = (now() - t) * 1e6 / (iters * 10);
	printf("%-28s %12.2f us/op\n%-28s %12.3f us/op\n", "100 lookups", per, "one lookup", per / np);
	return 0;
}
