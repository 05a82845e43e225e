/* test_hub_json.c: tree pages (files, LFS files, directories) into entries, malformed pages of
 * many shapes refused whole (-EBADMSG, the tree untouched, nothing leaked under ASan), the
 * revision sha, error bodies in their three forms, and the dump read back identically. */
#include "fetch/hub_json.h"

#include <errno.h>
#include <stdlib.h>

#include "tests/unit/check.h"
#include "tests/unit/fixture.h"

#define SHA1_A "0123456789abcdef0123456789abcdef01234567"
#define SHA1_B "89abcdef0123456789abcdef0123456789abcdef"
#define SHA256_A "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static int page(const char *json, struct hub_tree *t)
{
	return hub_json_tree_page(json, strlen(json), t);
}

static void test_tree_page(void)
{
	const char *json =
		"[{\"type\":\"directory\",\"oid\":\"" SHA1_B "\",\"size\":0,\"path\":\"sub\"},"
		" {\"type\":\"file\",\"oid\":\"" SHA1_A "\",\"size\":12,\"path\":\"sub/a b.txt\","
		"  \"lastCommit\":{\"id\":\"x\"},\"securityFileStatus\":{}},"
		" {\"type\":\"file\",\"oid\":\"" SHA1_B "\",\"size\":5368709120,"
		"  \"path\":\"model.safetensors\",\"xetHash\":\"" SHA256_A "\","
		"  \"lfs\":{\"oid\":\"" SHA256_A "\",\"size\":5368709120,\"pointerSize\":135}},"
		" {\"type\":\"file\",\"oid\":\"" SHA1_A
		"\",\"size\":0,\"path\":\"empty\",\"lfs\":null},"
		" {\"type\":\"directory\",\"path\":\"d2\"}]";
	struct hub_tree t = { 0 };

	ASSERT_OK(page(json, &t));
	ASSERT_EQ(t.n, 5);
	ASSERT_STR_EQ(t.v[0].path, "sub");
	ASSERT_TRUE(t.v[0].is_dir);
	ASSERT_STR_EQ(t.v[0].oid, SHA1_B);
	ASSERT_STR_EQ(t.v[1].path, "sub/a b.txt");
	ASSERT_FALSE(t.v[1].is_dir);
	ASSERT_FALSE(t.v[1].is_lfs);
	ASSERT_U64_EQ(t.v[1].size, 12);
	ASSERT_STR_EQ(hub_entry_cid(&t.v[1]), SHA1_A);
	ASSERT_TRUE(t.v[2].is_lfs);
	ASSERT_U64_EQ(t.v[2].size, 5368709120ULL);
	ASSERT_STR_EQ(t.v[2].oid, SHA1_B);
	ASSERT_STR_EQ(hub_entry_cid(&t.v[2]), SHA256_A);
	ASSERT_FALSE(t.v[3].is_lfs);
	ASSERT_U64_EQ(t.v[3].size, 0);
	ASSERT_TRUE(t.v[4].is_dir);
	ASSERT_STR_EQ(t.v[4].oid, "");
	/* a second page appends */
	ASSERT_OK(
		page("[{\"type\":\"file\",\"oid\":\"" SHA1_A "\",\"size\":1,\"path\":\"z\"}]", &t));
	ASSERT_EQ(t.n, 6);
	ASSERT_STR_EQ(t.v[5].path, "z");
	ASSERT_OK(page("[]", &t));
	ASSERT_OK(page(" [ ] \n", &t));
	ASSERT_EQ(t.n, 6);
	hub_tree_done(&t);
	ASSERT_EQ(t.n, 0);
	ASSERT_NULL(t.v);
}

#define FILE_OK "{\"type\":\"file\",\"oid\":\"" SHA1_A "\",\"size\":1,\"path\":\"ok\"}"

static void test_tree_page_malformed(void)
{
	static const char *const bad[] = {
		"",
		"   ",
		"{}",
		"null",
		"\"[]\"",
		"[",
		"[" FILE_OK ",",
		"[" FILE_OK "] x",
		"[" FILE_OK "][]",
		"[1]",
		"[null]",
		"[[]]",
		"[" FILE_OK ", 7]",
		/* type */
		"[{\"oid\":\"" SHA1_A "\",\"size\":1,\"path\":\"a\"}]",
		"[{\"type\":\"symlink\",\"oid\":\"" SHA1_A "\",\"size\":1,\"path\":\"a\"}]",
		"[{\"type\":1,\"oid\":\"" SHA1_A "\",\"size\":1,\"path\":\"a\"}]",
		/* path */
		"[{\"type\":\"file\",\"oid\":\"" SHA1_A "\",\"size\":1}]",
		"[{\"type\":\"file\",\"oid\":\"" SHA1_A "\",\"size\":1,\"path\":null}]",
		"[{\"type\":\"file\",\"oid\":\"" SHA1_A "\",\"size\":1,\"path\":[\"a\"]}]",
		"[{\"type\":\"file\",\"oid\":\"" SHA1_A "\",\"size\":1,\"path\":\"a\\u0000b\"}]",
		"[{\"type\":\"file\",\"oid\":\"" SHA1_A "\",\"size\":1,\"path\":\"a\nb\"}]",
		/* size */
		"[{\"type\":\"file\",\"oid\":\"" SHA1_A "\",\"path\":\"a\"}]",
		"[{\"type\":\"file\",\"oid\":\"" SHA1_A "\",\"size\":-1,\"path\":\"a\"}]",
		"[{\"type\":\"file\",\"oid\":\"" SHA1_A "\",\"size\":1.5,\"path\":\"a\"}]",
		"[{\"type\":\"file\",\"oid\":\"" SHA1_A "\",\"size\":\"1\",\"path\":\"a\"}]",
		"[{\"type\":\"file\",\"oid\":\"" SHA1_A "\",\"size\":1e300,\"path\":\"a\"}]",
		"[{\"type\":\"file\",\"oid\":\"" SHA1_A
		"\",\"size\":9007199254740993,\"path\":\"a\"}]",
		"[{\"type\":\"file\",\"oid\":\"" SHA1_A
		"\",\"size\":9007199254740992,\"path\":\"a\"}]",
		"[{\"type\":\"directory\",\"size\":-3,\"path\":\"d\"}]",
		/* oid */
		"[{\"type\":\"file\",\"size\":1,\"path\":\"a\"}]",
		"[{\"type\":\"file\",\"oid\":\"0123\",\"size\":1,\"path\":\"a\"}]",
		"[{\"type\":\"file\",\"oid\":\"0123456789ABCDEF0123456789abcdef01234567\","
		"\"size\":1,\"path\":\"a\"}]",
		"[{\"type\":\"file\",\"oid\":\"" SHA1_A "0\",\"size\":1,\"path\":\"a\"}]",
		"[{\"type\":\"directory\",\"oid\":\"xyz\",\"path\":\"d\"}]",
		/* lfs */
		"[{\"type\":\"file\",\"oid\":\"" SHA1_A "\",\"size\":1,\"path\":\"a\",\"lfs\":1}]",
		"[{\"type\":\"file\",\"oid\":\"" SHA1_A "\",\"size\":1,\"path\":\"a\",\"lfs\":{}}]",
		"[{\"type\":\"file\",\"oid\":\"" SHA1_A "\",\"size\":1,\"path\":\"a\","
		"\"lfs\":{\"oid\":\"" SHA256_A "\"}}]",
		"[{\"type\":\"file\",\"oid\":\"" SHA1_A "\",\"size\":1,\"path\":\"a\","
		"\"lfs\":{\"oid\":\"" SHA1_A "\",\"size\":1}}]",
		"[{\"type\":\"file\",\"oid\":\"" SHA1_A "\",\"size\":1,\"path\":\"a\","
		"\"lfs\":{\"oid\":\"" SHA256_A "\",\"size\":2}}]",
		"[{\"type\":\"file\",\"oid\":\"" SHA1_A "\",\"size\":1,\"path\":\"a\","
		"\"lfs\":{\"sha256\":\"" SHA256_A "\",\"size\":1}}]",
	};
	struct hub_tree t = { 0 };

	ASSERT_OK(page("[" FILE_OK "]", &t));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = page(bad[i], &t);

		if (r != -EBADMSG)
			CHECK_FAIL("page %zu \"%s\": %d, want -EBADMSG", i, bad[i], r);
		/* refused whole: the good entries of a bad page are not kept */
		ASSERT_EQ(t.n, 1);
		ASSERT_STR_EQ(t.v[0].path, "ok");
	}
	/* a NUL byte inside the length */
	ASSERT_EQ(hub_json_tree_page("[]\0", 3, &t), -EBADMSG);
	ASSERT_EQ(hub_json_tree_page("[" FILE_OK "]", 5, &t), -EBADMSG);
	ASSERT_EQ(t.n, 1);
	hub_tree_done(&t);
}

static void test_revision(void)
{
	char sha[41];
	const char *ok = "{\"_id\":\"x\",\"id\":\"org/m\",\"sha\":\"" SHA1_A "\",\"siblings\":[]}";

	ASSERT_OK(hub_json_revision(ok, strlen(ok), sha));
	ASSERT_STR_EQ(sha, SHA1_A);

	static const char *const bad[] = {
		"{}",
		"[]",
		"{\"sha\":null}",
		"{\"sha\":1}",
		"{\"sha\":\"main\"}",
		"{\"sha\":\"0123456789ABCDEF0123456789abcdef01234567\"}",
		"{\"sha\":\"" SHA1_A "\"",
		"{\"sha\":\"" SHA256_A "\"}",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (hub_json_revision(bad[i], strlen(bad[i]), sha) != -EBADMSG)
			CHECK_FAIL("revision \"%s\" accepted", bad[i]);
}

static void test_repo_flags_and_whoami(void)
{
	static const struct {
		const char *json;
		bool is_private, is_gated;
	} cases[] = {
		{ "{\"sha\":\"x\"}", false, false },
		{ "{\"private\":true,\"gated\":false}", true, false },
		{ "{\"private\":false,\"gated\":\"manual\"}", false, true },
		{ "{\"gated\":\"auto\"}", false, true },
		{ "{\"private\":\"yes\",\"gated\":\"\"}", false, false },
	};
	bool p, g;
	char name[8];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ASSERT_OK(hub_json_repo_flags(cases[i].json, strlen(cases[i].json), &p, &g));
		ASSERT_EQ(p, cases[i].is_private);
		ASSERT_EQ(g, cases[i].is_gated);
	}
	ASSERT_EQ(hub_json_repo_flags("[]", 2, &p, &g), -EBADMSG);
	ASSERT_OK(hub_json_whoami("{\"name\":\"alice\"}", 16, name, sizeof(name)));
	ASSERT_STR_EQ(name, "alice");
	ASSERT_EQ(hub_json_whoami("{\"name\":\"alice-long\"}", 21, name, sizeof(name)),
		  -ENAMETOOLONG);
	ASSERT_EQ(hub_json_whoami("{\"name\":1}", 10, name, sizeof(name)), -EBADMSG);
	ASSERT_EQ(hub_json_whoami("{}", 2, name, sizeof(name)), -EBADMSG);
}

static void error_case(const char *json, size_t buflen, int want_r, const char *want)
{
	char buf[256];

	ASSERT_TRUE(buflen <= sizeof(buf));
	ASSERT_EQ(hub_json_error_message(json, strlen(json), buf, buflen), want_r);
	if (want)
		ASSERT_STR_EQ(buf, want);
}

static void test_last_modified(void)
{
	static const struct {
		const char *json;
		uint64_t want;
	} cases[] = {
		{ "{\"lastModified\":\"2024-01-02T03:04:05.000Z\"}", 1704164645 },
		{ "{\"lastModified\":\"2024-01-02T03:04:05Z\"}", 1704164645 },
		{ "{\"lastModified\":\"1970-01-01T00:00:00\"}", 0 },
		{ "{\"lastModified\":\"2024-13-02T03:04:05Z\"}", 0 },
		{ "{\"lastModified\":\"2024-01-02 03:04:05\"}", 0 },
		{ "{\"lastModified\":\"2024-01-02T03:04:05+0200\"}", 0 },
		{ "{\"lastModified\":20240102}", 0 },
		{ "{}", 0 },
	};
	uint64_t t;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		t = 99;
		ASSERT_OK(hub_json_last_modified(cases[i].json, strlen(cases[i].json), &t));
		ASSERT_U64_EQ(t, cases[i].want);
	}
	ASSERT_EQ(hub_json_last_modified("[]", 2, &t), -EBADMSG);
}

static void test_error_message(void)
{
	error_case("{\"error\":\"Repository Not Found\"}", 256, 0, "Repository Not Found");
	error_case("{\"error\":[\"a\",\"b\",3,\"\"]}", 256, 0, "a; b");
	error_case("{\"errors\":[{\"message\":\"m1\"},{\"code\":1},{\"message\":\"m2\"}]}", 256, 0,
		   "m1; m2");
	error_case("{\"message\":\"just this\"}", 256, 0, "just this");
	error_case("{\"error\":\"line1\\nline2\\ttab\"}", 256, 0, "line1 line2 tab");
	error_case("{\"error\":\"0123456789\"}", 5, 0, "0123");
	error_case("{\"error\":\"\"}", 256, -EBADMSG, NULL);
	error_case("{\"error\":{}}", 256, -EBADMSG, NULL);
	error_case("{\"errors\":[1,2]}", 256, -EBADMSG, NULL);
	error_case("[\"error\"]", 256, -EBADMSG, NULL);
	error_case("<html>Bad Gateway</html>", 256, -EBADMSG, NULL);
	error_case("", 256, -EBADMSG, NULL);
}

static void test_dump_round_trip(void)
{
	struct hub_tree a = { 0 }, b = { 0 };
	size_t len = 0;
	char *json;

	fixture_tree_push(&a, "dir", true, 0, SHA1_B, NULL);
	fixture_tree_push(&a, "dir/caf\xc3\xa9 \"q\" \\ #?%+.txt", false, 3, SHA1_A, NULL);
	fixture_tree_push(&a, "w.safetensors", false, 9007199254740991ULL, SHA1_B, SHA256_A);
	fixture_tree_push(&a, "empty", false, 0, SHA1_A, NULL);
	fixture_tree_push(&a, "bare", true, 0, "", NULL);
	json = hub_json_tree_dump(&a, &len);
	ASSERT_NOT_NULL(json);
	ASSERT_EQ(len, strlen(json));
	ASSERT_OK(hub_json_tree_page(json, len, &b));
	ASSERT_EQ(b.n, a.n);
	for (size_t i = 0; i < a.n; i++) {
		ASSERT_STR_EQ(b.v[i].path, a.v[i].path);
		ASSERT_U64_EQ(b.v[i].size, a.v[i].size);
		ASSERT_EQ(b.v[i].is_dir, a.v[i].is_dir);
		ASSERT_EQ(b.v[i].is_lfs, a.v[i].is_lfs);
		ASSERT_STR_EQ(b.v[i].oid, a.v[i].oid);
		ASSERT_STR_EQ(b.v[i].sha256, a.v[i].sha256);
	}
	free(json);
	hub_tree_done(&b);
	/* the empty tree */
	json = hub_json_tree_dump(&b, &len);
	ASSERT_STR_EQ(json, "[]");
	free(json);
	hub_tree_done(&a);
}

int main(void)
{
	RUN(test_tree_page);
	RUN(test_tree_page_malformed);
	RUN(test_revision);
	RUN(test_repo_flags_and_whoami);
	RUN(test_last_modified);
	RUN(test_error_message);
	RUN(test_dump_round_trip);
	return 0;
}
