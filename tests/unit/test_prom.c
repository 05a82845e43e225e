/* test_prom.c: the Prometheus text of mounts' figures: label values escaped, the histogram
 * cumulative with its +Inf bucket equal to its count, bytes by origin, families without a
 * series left out (no live figures yet, an unknown ETA). */
#include "fs/prom.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check.h"

static char *print(const struct prom_mount *v, size_t n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ASSERT_NOT_NULL(f);
	prom_print(f, v, n);
	fclose(f);
	return buf;
}

static void test_labels_escaped(void)
{
	struct db_mount m = { .pid = 7 };
	struct prom_mount v = { .m = &m, .cache_dir = "/c", .files = 2, .bytes_total = 0 };
	char *out;

	snprintf(m.mountpoint, sizeof(m.mountpoint), "/m\"x\\y\nz");
	snprintf(m.repo_key, sizeof(m.repo_key), "models/org/name");
	snprintf(m.revision, sizeof(m.revision), "main");
	out = print(&v, 1);
	ASSERT_TRUE(strstr(out, "hffs_files{mountpoint=\"/m\\\"x\\\\y\\nz\",repo=\"models/org/"
				"name\",revision=\"main\"} 2\n") != NULL);
	/* An empty repo is wholly covered; no live figures: none of their families. */
	ASSERT_TRUE(strstr(out, "hffs_coverage_ratio{") && strstr(out, "} 1\n"));
	ASSERT_NULL(strstr(out, "hffs_reads_total"));
	ASSERT_NULL(strstr(out, "# TYPE hffs_read_duration_seconds"));
	free(out);
}

static void test_live_series(void)
{
	struct db_mount m = { .pid = 7 };
	struct live l = { .eta_s = -1, .bytes_hub = 10, .bytes_cdn = 20 };
	struct prom_mount v = { .m = &m, .cache_dir = "/c", .live = &l };
	char *out, *p;

	snprintf(m.mountpoint, sizeof(m.mountpoint), "/m");
	l.reads.reads[READSTATS_HIT] = 3;
	l.reads.reads[READSTATS_MISS] = 1;
	l.reads.errors = 1;
	l.reads.usec_sum = 1500000;
	l.reads.buckets[0] = 3;
	l.reads.buckets[READSTATS_BOUNDS - 1] = 1;
	l.reads.buckets[READSTATS_BOUNDS] = 1;
	out = print(&v, 1);
	ASSERT_TRUE(strstr(out, "# TYPE hffs_read_duration_seconds histogram\n") != NULL);
	ASSERT_TRUE(strstr(out, "source=\"hub\"} 10\n") && strstr(out, "source=\"cdn\"} 20\n"));
	ASSERT_TRUE(strstr(out, "cache=\"hit\"} 3\n") && strstr(out, "cache=\"miss\"} 1\n"));
	ASSERT_TRUE(strstr(out, "le=\"0.00005\"} 3\n") && strstr(out, "le=\"30\"} 3\n"));
	ASSERT_TRUE(strstr(out, "le=\"60\"} 4\n") && strstr(out, "le=\"+Inf\"} 5\n"));
	p = strstr(out, "hffs_read_duration_seconds_count{");
	ASSERT_TRUE(p && strstr(p, "} 5\n"));
	p = strstr(out, "hffs_read_duration_seconds_sum{");
	ASSERT_TRUE(p && strstr(p, "} 1.5\n"));
	ASSERT_NULL(strstr(out, "hffs_eta_seconds")); /* unknown */
	ASSERT_NULL(strstr(out, "hffs_cache_used_bytes")); /* never measured */
	ASSERT_NULL(strstr(out, "hffs_cache_max_size_bytes")); /* no limit */
	free(out);
}

int main(void)
{
	RUN(test_labels_escaped);
	RUN(test_live_series);
	return 0;
}
