/* test_xet_hash.c: the Xet hashes against the test vectors of draft-denis-xet §"Test Vectors"
 * (a chunk hash, the text form, an internal node, a verification hash) and of xet-core's
 * aggregated-hash reference test (merkle roots and file hashes of node lists up to three
 * levels deep), and the merkle tree's shape on leaves chosen to cut at known places. */
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

/* xet-core merklehash/src/aggregated_hashes.rs, test_correctness: leaf i is ref_leaf[i] of size
 * i * 100; each list's xorb hash and its file hash (salt zero). */
static const char *const ref_leaf[] = {
	"0000000000000000000000000000000000000000000000000000000000000000",
	"cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6",
	"c3e67584b5c4fc2a89837ec39e40f2c8a6bb0b2987ac94cd4b31e5fbdd210a72",
	"0d2beb91b9196929a5ddec9f6e306924ddf4a24268e3e59fd8464738d525af37",
	"adf8773496a9b7319b2e50dc98093f344053b17d8ad37100b9c07d9805988784",
	"4ac202caf347fc1e9c874b1ef6a1c5e619141eb775a6f43f0f0124ccd0060d9e",
	"b3b28636f65c149ea52eb1f94669466f70f033b54cea792824c696ba6ef3c389",
	"0e2c1a002aae913d2c0fc8ddfa4e9e14b7b311b3b0d458726d5d9f6a6318013c",
};

struct ref_tree {
	const char *leaves; /* leaf indices as digits; "" for none */
	const char *xorb, *file;
};

static const struct ref_tree ref_trees[] = {
	{ "", "0000000000000000000000000000000000000000000000000000000000000000",
	  "0000000000000000000000000000000000000000000000000000000000000000" },
	{ "0", "0000000000000000000000000000000000000000000000000000000000000000",
	  "638a6bc391964a85939d48f008e8bdbae6a7975e7ca2d87a3ce2492f4e4d8a4c" },
	{ "1", "cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6",
	  "8e16257caa3fe079d484d872a8975264b2ff683b0d6db9028cc7c0f968a45661" },
	{ "123", "71ec1275fca074724e2dd666921b3277c7cee603e4d025bcab2d4050015be2bc",
	  "54e55dccc6653c612bdb5576c5d3cb34bb31bc4e100248abccf4c908b3ef7715" },
	{ "1111", "89f2ada89ff8c96763c6b25010e6dd76a4c05b1466207633ea559acf2093211b",
	  "2cdba690d0e09563596e0cda626d43eb4c96ef1e994fe72d9b2f5a83cfcd36dd" },
	{ "121234", "52c826f99507aa05d0b45e9837fa1709e0485425cfbcb1e80db3905cf98b3ee9",
	  "91d21684db364c8883ab8209fa5eb2e781cf07f37e1fa43e731c30839afe422f" },
	{ "01010", "f36c6a6374a567efd36ed087aeb680b57e3af4e0b5b8e7be2593df4cb647a2de",
	  "ab2f46d31855e1133b3b5b70e78f841394a648710a208923b221c1a8a0572a1f" },
	{ "3453", "73b9dc802ab03a0855c66823a18d95c2a785af594535756abf405038b6270cb8",
	  "c7d5be75ef5ec12888027ad305141e4109e599494477661177475c84e12de48b" },
	{ "01234567", "f62abe77e3fb9c954fe52b0028027ddc90c064c45951a4fd2211d87e5c0011db",
	  "d1b068be5bbdb38992269e8efe61f601881e39f7a7585fd76883cc6ea5c23b44" },
	{ "0123456701234567012345670123456701234567012345670123456701234567",
	  "6554007c9b5d0a5e7918f79596a1b68815c1407535585435f5735db761f21b88",
	  "a8640ab81d48854e00078e12b1ea8be5d90be0ffb5f73a15b7009981d093ddd8" },
	{ "012345671111", "e7fc30b73ec9930593f80fe777b334e9d3bb73e45e6a79fa5784b2603446158b",
	  "69e1af2fd6023ce133e0d1b90e32d1d42ef79f5a710f2b0accfc3a735e98de9d" },
	{ "0011223344556677", "636c65db520ec16e8166f9ec7a0cf9f74b26369077ac60160ec0221c86bc9f77",
	  "6a90ad0d6f5246ac61f1de898c6944c03e14004a1368e6fb23387108c4d039e0" },
};

static void test_reference_trees(void)
{
	for (size_t t = 0; t < sizeof(ref_trees) / sizeof(ref_trees[0]); t++) {
		struct xet_hash_node nodes[64];
		size_t n = strlen(ref_trees[t].leaves);
		struct xet_hash h;

		ASSERT_TRUE(n <= 64);
		for (size_t i = 0; i < n; i++) {
			int leaf = ref_trees[t].leaves[i] - '0';

			nodes[i].hash = from_hex(ref_leaf[leaf]);
			nodes[i].size = (uint64_t)leaf * 100;
		}
		ASSERT_OK(xet_hash_merkle(nodes, n, &h));
		assert_hex(&h, ref_trees[t].xorb);
		ASSERT_OK(xet_hash_file(nodes, n, &h));
		assert_hex(&h, ref_trees[t].file);
	}
}

/* The stream gives the batch root and file hash for every length: 0..300 leaves (every tail
 * shape at the first levels) and 5000 (four levels), on leaves hashed from their index. */
static void test_stream_equals_batch(void)
{
	static struct xet_hash_node l[5000];
	const size_t lens[] = { 5000, 4096, 1000 };

	for (int i = 0; i < 5000; i++) {
		xet_hash_chunk(&i, sizeof(i), &l[i].hash);
		l[i].size = 1 + (uint64_t)i % 70000;
	}
	for (size_t n = 0; n < 300 + sizeof(lens) / sizeof(lens[0]); n++) {
		size_t len = n < 300 ? n : lens[n - 300];
		struct xet_hash_stream st;
		struct xet_hash batch, streamed;

		for (int file = 0; file < 2; file++) {
			xet_hash_stream_init(&st);
			for (size_t i = 0; i < len; i++)
				ASSERT_OK(xet_hash_stream_push(&st, &l[i].hash, l[i].size));
			xet_hash_stream_finish(&st, file, &streamed);
			ASSERT_OK(file ? xet_hash_file(l, len, &batch) :
					 xet_hash_merkle(l, len, &batch));
			if (!xet_hash_eq(&batch, &streamed))
				CHECK_FAIL("%zu leaves (file %d): the stream differs", len, file);
		}
	}
	/* And the reference trees, streamed. */
	for (size_t t = 0; t < sizeof(ref_trees) / sizeof(ref_trees[0]); t++) {
		struct xet_hash_stream st;
		struct xet_hash h;

		xet_hash_stream_init(&st);
		for (const char *c = ref_trees[t].leaves; *c; c++) {
			struct xet_hash leaf = from_hex(ref_leaf[*c - '0']);

			ASSERT_OK(xet_hash_stream_push(&st, &leaf, (uint64_t)(*c - '0') * 100));
		}
		xet_hash_stream_finish(&st, true, &h);
		assert_hex(&h, ref_trees[t].file);
	}
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
	ASSERT_TRUE(xet_hash_eq(&f2, &zero));
}

int main(void)
{
	RUN(test_chunk_vector);
	RUN(test_text_form);
	RUN(test_internal_node_vector);
	RUN(test_verification_vector);
	RUN(test_tree_shape);
	RUN(test_reference_trees);
	RUN(test_stream_equals_batch);
	RUN(test_edges);
	return 0;
}
