/* test_tree.c: the cache's tree record: a round trip keeps every field (the commit date
 * too), a version 1 record reads with the date unknown, and malformed or
 * hostile records (truncated, another version, legacy JSON, bad flags, bad cids, a count the
 * bytes cannot hold, trailing bytes) are -EBADMSG; tree_get/tree_put through a real index. */
#include "cache/tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixture.h"

#define SHA1_A "0123456789abcdef0123456789abcdef01234567"
#define SHA256_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void sample(struct tree *t)
{
	*t = (struct tree){ 0 };
	ASSERT_OK(tree_push(t, "dir", true, 0, BLOB_HASH_GITSHA1, NULL));
	ASSERT_OK(tree_push(t, "dir/config.json", false, 42, BLOB_HASH_GITSHA1, SHA1_A));
	ASSERT_OK(tree_push(t, "model.safetensors", false, (uint64_t)5 << 32, BLOB_HASH_SHA256,
			    SHA256_A));
	ASSERT_OK(tree_push(t, "empty", false, 0, BLOB_HASH_GITSHA1, SHA1_A));
	t->commit_time = 1704164645; /* 2024-01-02T03:04:05Z */
}

static void test_round_trip(void)
{
	struct tree a, b;
	uint8_t *buf, *buf2;
	size_t len, len2;

	sample(&a);
	buf = tree_encode(&a, &len);
	ASSERT_TRUE(buf != NULL);
	ASSERT_EQ(buf[0], TREE_REC_VERSION);
	ASSERT_FALSE(tree_is_legacy(buf, len));
	ASSERT_OK(tree_decode(buf, len, &b));
	ASSERT_EQ(b.n, a.n);
	ASSERT_U64_EQ(b.commit_time, a.commit_time);
	for (size_t i = 0; i < a.n; i++) {
		ASSERT_STR_EQ(b.v[i].path, a.v[i].path);
		ASSERT_EQ(b.v[i].size, a.v[i].size);
		ASSERT_EQ(b.v[i].is_dir, a.v[i].is_dir);
		ASSERT_STR_EQ(b.v[i].cid, a.v[i].cid);
		if (!a.v[i].is_dir)
			ASSERT_EQ(b.v[i].hash, a.v[i].hash);
	}
	ASSERT_FALSE(tree_entry_has_data(&b.v[0]));
	ASSERT_TRUE(tree_entry_has_data(&b.v[1]));
	ASSERT_FALSE(tree_entry_has_data(&b.v[3]));
	buf2 = tree_encode(&b, &len2);
	ASSERT_EQ(len2, len);
	ASSERT_TRUE(!memcmp(buf, buf2, len));
	free(buf2);
	tree_done(&b); /* tree_decode() fills an empty tree */

	/* Every truncation and one byte too many are refused, leaving nothing behind. */
	for (size_t n = 0; n < len; n++) {
		ASSERT_EQ(tree_decode(buf, n, &b), -EBADMSG);
		ASSERT_EQ(b.n, 0);
	}
	buf2 = malloc(len + 1);
	memcpy(buf2, buf, len);
	buf2[len] = 0;
	tree_done(&b);
	ASSERT_EQ(tree_decode(buf2, len + 1, &b), -EBADMSG);
	free(buf2);

	/* The empty tree. */
	tree_done(&a);
	free(buf);
	buf = tree_encode(&a, &len);
	ASSERT_EQ(len, 13);
	ASSERT_OK(tree_decode(buf, len, &b));
	ASSERT_EQ(b.n, 0);
	free(buf);
}

/* Records written before the commit date was kept still read, with the date unknown. */
static void test_version_1(void)
{
	static const char v1[] = "\x01\x02\x00\x00\x00"
				 "\x01\x01\x00"
				 "d"
				 "\x00\x03\x00"
				 "d/f"
				 "\x2a\x00\x00\x00\x00\x00\x00\x00"
				 "\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23"
				 "\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67";
	struct tree t;

	ASSERT_OK(tree_decode(v1, sizeof(v1) - 1, &t));
	ASSERT_EQ(t.n, 2);
	ASSERT_U64_EQ(t.commit_time, 0);
	ASSERT_STR_EQ(t.v[1].path, "d/f");
	ASSERT_EQ(t.v[1].size, 42);
	ASSERT_STR_EQ(t.v[1].cid, SHA1_A);
	tree_done(&t);
	ASSERT_EQ(tree_decode(v1, 4, &t), -EBADMSG);
}

static void test_hostile(void)
{
	static const struct {
		const char *bytes;
		size_t len;
	} bad[] = {
		{ "\x03\x00\x00\x00\x00", 5 }, /* another version */
		{ "\x02\x00\x00\x00\x00", 5 }, /* version 2 without its date */
		{ "[{\"type\":\"file\"}]", 17 }, /* legacy JSON */
		{ "\x01\xff\xff\xff\xff", 5 }, /* a count the bytes cannot hold */
		{ "\x01\x01\x00\x00\x00\x04\x01\x00x", 9 }, /* unknown flag */
		{ "\x01\x01\x00\x00\x00\x03\x01\x00x", 9 }, /* a directory with a hash */
		{ "\x01\x01\x00\x00\x00\x01\x00\x00", 8 }, /* empty path */
		{ "\x01\x01\x00\x00\x00\x01\x02\x00x\0", 10 }, /* NUL in a path */
		{ "\x01\x01\x00\x00\x00\x01\x05\x00x", 9 }, /* path past the end */
		{ "\x01\x01\x00\x00\x00\x00\x01\x00x\x01\0\0\0\0\0\0\0", 17 }, /* no cid */
	};
	struct tree t;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_EQ(tree_decode(bad[i].bytes, bad[i].len, &t), -EBADMSG);
		ASSERT_EQ(t.n, 0);
	}
	ASSERT_TRUE(tree_is_legacy("[]", 2));
	ASSERT_FALSE(tree_is_legacy("", 0));
	t = (struct tree){ 0 };
	ASSERT_EQ(tree_push(&t, "", false, 1, BLOB_HASH_GITSHA1, SHA1_A), -EINVAL);
	ASSERT_EQ(tree_push(&t, "a", false, 1, BLOB_HASH_SHA256, SHA1_A), -EINVAL);
	ASSERT_EQ(tree_push(&t, "a", false, 1, BLOB_HASH_GITSHA1, "xyz"), -EINVAL);
	ASSERT_EQ(tree_push(&t, "a", true, 1, BLOB_HASH_GITSHA1, NULL), -EINVAL);
	ASSERT_EQ(t.n, 0);
	tree_done(&t);
}

static void test_index(void)
{
	struct cache_db *db;
	struct tree a, b;

	fixture_tmpdir_init("tree");
	ASSERT_OK(db_open(fixture_cache_dir("c"), &db));
	sample(&a);
	ASSERT_EQ(tree_get(db, "models/org/m", SHA1_A, &b), -ENOENT);
	ASSERT_OK(tree_put(db, "models/org/m", SHA1_A, &a));
	ASSERT_OK(tree_get(db, "models/org/m", SHA1_A, &b));
	ASSERT_EQ(b.n, a.n);
	ASSERT_U64_EQ(b.commit_time, a.commit_time);
	ASSERT_STR_EQ(b.v[2].cid, SHA256_A);
	tree_done(&b);
	ASSERT_OK(db_tree_put(db, "models/org/m", SHA1_A, "[]", 2));
	ASSERT_EQ(tree_get(db, "models/org/m", SHA1_A, &b), -EBADMSG);
	tree_done(&a);
	db_close(db);
	fixture_tmpdir_done();
}

int main(void)
{
	RUN(test_round_trip);
	RUN(test_version_1);
	RUN(test_hostile);
	RUN(test_index);
	return 0;
}
