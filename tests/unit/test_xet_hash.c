/* test_xet_hash.c: the Xet hashes against the test vectors of draft-denis-xet §"Test Vectors"
 * (a chunk hash, the text form, an internal node, a verification hash), and the merkle tree's
 * shape (where nodes close, sizes summed) on leaves chosen to cut at known places. */
#include "cache/xet_hash.h"

#include <errno.h>
#include <string.h>

#include "tests/unit/check.h"

static struct xet_hash from_hex(const char *hex)
{
	struct xet_hash h;

	ASSERT_OK(xet_hash_from_hex(hex, &h));
	return h;
}

/* Raw bytes as plain hex (not the text form). */
static struct xet_hash from_raw(const char *hex)
{
	struct xet_hash h;

	for (int i = 0; i < XET_HASH_LEN; i++)
		ASSERT_EQ(sscanf(hex + 2 * i, "%2hhx", &h.b[i]), 1);
	return h;
}

static void assert_hex(const struct xet_hash *h, const char *want)
{
	char hex[XET_HASH_HEX];

	xet_hash_to_hex(h, hex);
	ASSERT_STR_EQ(hex, want);
}

static void test_chunk_vector(void)
{
	struct xet_hash h,
		want = from_raw("a29cfb08e608d4d8726dd8659a90b9134b3240d5d8e42d5fcb28e2a6e763a3e8");

	xet_hash_chunk("Hello World!", 12, &h);
	ASSERT_TRUE(xet_hash_eq(&h, &want));
	assert_hex(&h, "d8d408e608fb9ca213b9909a65d86d725f2de4d8d540324be8a363e7a6e228cb");
}

static void test_text_form(void)
{
	const char *want = "07060504030201000f0e0d0c0b0a090817161514131211101f1e1d1c1b1a1918";
	struct xet_hash h, back;

	for (int i = 0; i < XET_HASH_LEN; i++)
		h.b[i] = (uint8_t)i;
	assert_hex(&h, want);
	ASSERT_OK(xet_hash_from_hex(want, &back));
	ASSERT_TRUE(xet_hash_eq(&h, &back));
	/* Upper case parses; anything but exactly 64 hex digits does not. */
	ASSERT_OK(xet_hash_from_hex(
		"07060504030201000F0E0D0C0B0A090817161514131211101F1E1D1C1B1A1918", &back));
	ASSERT_TRUE(xet_hash_eq(&h, &back));
	ASSERT_EQ(xet_hash_from_hex("0706050403020100", &back), -EBADMSG);
	ASSERT_EQ(
		xet_hash_from_hex(
			"07060504030201000f0e0d0c0b0a090817161514131211101f1e1d1c1b1a19180", &back),
		-EBADMSG);
	ASSERT_EQ(
		xet_hash_from_hex(
			"g7060504030201000f0e0d0c0b0a090817161514131211101f1e1d1c1b1a1918", &back),
		-EBADMSG);
	ASSERT_EQ(xet_hash_from_hex("", &back), -EBADMSG);
}

/* Two children merge into one node (n <= 2): the root is the draft's internal node vector. */
static void test_internal_node_vector(void)
{
	struct xet_hash_node n[2] = {
		{ from_hex("c28f58387a60d4aa200c311cda7c7f77f686614864f5869eadebf765d0a14a69"),
		  100 },
		{ from_hex("6e4e3263e073ce2c0e78cc770c361e2778db3b054b98ab65e277fc084fa70f22"),
		  200 },
	};
	struct xet_hash root, raw;

	ASSERT_OK(xet_hash_merkle(n, 2, &root));
	assert_hex(&root, "be64c7003ccd3cf4357364750e04c9592b3c36705dee76a71590c011766b6c14");
	/* The same children are the draft's raw verification-vector hashes. */
	raw = from_raw("aad4607a38588fc2777f7cda1c310c209e86f564486186f6694aa1d065f7ebad");
	ASSERT_TRUE(xet_hash_eq(&n[0].hash, &raw));
}

static void test_verification_vector(void)
{
	struct xet_hash h[2] = {
		from_raw("aad4607a38588fc2777f7cda1c310c209e86f564486186f6694aa1d065f7ebad"),
		from_raw("2cce73e063324e6e271e360c77cc780e65ab984b053bdb78220fa74f08fc77e2"),
	};
	struct xet_hash v;

	xet_hash_verification(h, 2, &v);
	assert_hex(&v, "eb06a8ad81d588ac05d1d9a079232d9c1e7d0b07232fa58091caa7bf333a2768");
}

/* A leaf whose last u64 is m mod 4 (the tree's cut rule reads it). */
static struct xet_hash_node leaf(int i, unsigned m)
{
	struct xet_hash_node n;

	xet_hash_chunk(&i, sizeof(i), &n.hash);
	n.hash.b[24] = (uint8_t)((n.hash.b[24] & ~3U) | m);
	n.size = 1000 + (uint64_t)i;
	return n;
}

/* The parent of n <= 3 nodes: at most 3 children always make one node, so their merkle root is
 * that node's hash. */
static struct xet_hash_node parent(const struct xet_hash_node *c, size_t n)
{
	struct xet_hash_node p = { .size = 0 };

	ASSERT_TRUE(n >= 2 && n <= 3);
	ASSERT_OK(xet_hash_merkle(c, n, &p.hash));
	for (size_t i = 0; i < n; i++)
		p.size += c[i].size;
	return p;
}

static void test_tree_shape(void)
{
	struct xet_hash_node l[12], mid[2], top;
	struct xet_hash root;

	/* Leaf 1 is 0 mod 4 but a node has at least 3 children; leaf 2 closes {0,1,2}; leaves
	 * 3..11 never cut and make one node of 9, the most. */
	for (int i = 0; i < 12; i++)
		l[i] = leaf(i, i == 1 || i == 2 ? 0 : 1);
	ASSERT_OK(xet_hash_merkle(l, 12, &root));
	mid[0] = parent(l, 3);
	/* Nine leaves that cannot cut are one node: their root is it. */
	ASSERT_OK(xet_hash_merkle(l + 3, 9, &mid[1].hash));
	mid[1].size = 0;
	for (int i = 3; i < 12; i++)
		mid[1].size += l[i].size;
	top = parent(mid, 2);
	ASSERT_TRUE(xet_hash_eq(&root, &top.hash));
	/* With leaf 1 closing instead (were the minimum 2), the root would differ: a cut at 5
	 * (leaf 4) moves the second node's start and changes the root. */
	l[4] = leaf(4, 0);
	ASSERT_OK(xet_hash_merkle(l, 12, &top.hash));
	ASSERT_FALSE(xet_hash_eq(&root, &top.hash));
}

static void test_edges(void)
{
	struct xet_hash_node one = leaf(7, 2);
	struct xet_hash h, zero = { { 0 } }, f, f2;

	ASSERT_OK(xet_hash_merkle(NULL, 0, &h));
	ASSERT_TRUE(xet_hash_eq(&h, &zero));
	ASSERT_OK(xet_hash_merkle(&one, 1, &h));
	ASSERT_TRUE(xet_hash_eq(&h, &one.hash));
	/* The file hash is the root hashed again: never the root itself. */
	ASSERT_OK(xet_hash_file(&one, 1, &f));
	ASSERT_FALSE(xet_hash_eq(&f, &one.hash));
	ASSERT_OK(xet_hash_file(NULL, 0, &f2));
	ASSERT_FALSE(xet_hash_eq(&f2, &zero));
	ASSERT_FALSE(xet_hash_eq(&f, &f2));
}

int main(void)
{
	RUN(test_chunk_vector);
	RUN(test_text_form);
	RUN(test_internal_node_vector);
	RUN(test_verification_vector);
	RUN(test_tree_shape);
	RUN(test_edges);
	return 0;
}
