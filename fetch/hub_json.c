/* hub_json.c: Hub JSON replies (revision, tree pages, error bodies; Xet's read token and
 * reconstructions) to structs, and the tree's serialized form. The only cJSON user: strings are copied out before cJSON_Delete(). Pure;
 * any thread. Every input is untrusted and fuzzed (tests/fuzz/fuzz_hub_json.c). */
#include "fetch/hub_json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "fetch/xet_recon.h"
#include "util/cleanup.h"

/* Sizes travel as JSON numbers, i.e. doubles: from 2^53 on, a parsed value may be a neighbour
 * rounded (9007199254740993 reads as ...992), so the largest size taken is 2^53 - 1 (8 PiB,
 * JavaScript's MAX_SAFE_INTEGER). */
#define JSON_EXACT_INT_MAX 9007199254740991.0

static void json_deletep(cJSON **j)
{
	cJSON_Delete(*j);
}

/* cJSON copies a raw control byte inside a string and decodes "\u0000" into a NUL that would
 * silently cut the C string short ("a\u0000b" -> "a"). Neither is valid in a path or a
 * message, so a text holding one is refused before parsing. Also refuses NUL outside
 * strings, which JSON never allows. */
static bool json_is_clean(const char *json, size_t len)
{
	bool in_str = false;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)json[i];

		if (c == 0)
			return false;
		if (!in_str) {
			in_str = c == '"';
			continue;
		}
		if (c < 0x20)
			return false;
		if (c == '"') {
			in_str = false;
		} else if (c == '\\') {
			if (i + 1 >= len)
				return false;
			if (json[i + 1] == 'u' && i + 5 < len && !memcmp(json + i + 2, "0000", 4))
				return false;
			i++;
		}
	}
	return true;
}

/* Parses exactly [json, json+len) (trailing whitespace allowed). NULL when malformed. */
static cJSON *json_parse(const char *json, size_t len)
{
	const char *end = NULL;
	cJSON *j;

	if (!json || !json_is_clean(json, len))
		return NULL;
	j = cJSON_ParseWithLengthOpts(json, len, &end, false);
	if (!j)
		return NULL;
	for (; end && end < json + len; end++)
		if (*end != ' ' && *end != '\t' && *end != '\r' && *end != '\n') {
			cJSON_Delete(j);
			return NULL;
		}
	return j;
}

static bool is_lower_hex(const char *s, size_t n)
{
	if (strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* A non-negative integer that a double holds exactly and unambiguously. */
static int json_size(const cJSON *v, uint64_t *ret)
{
	double d;

	if (!cJSON_IsNumber(v))
		return -EBADMSG;
	d = v->valuedouble;
	if (!(d >= 0) || d > JSON_EXACT_INT_MAX || floor(d) != d)
		return -EBADMSG;
	*ret = (uint64_t)d;
	return 0;
}

/* The string member name of obj when it is n lowercase hex digits, copied into buf (n+1). */
static int json_hex(const cJSON *obj, const char *name, size_t n, char *buf)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!cJSON_IsString(v) || !is_lower_hex(v->valuestring, n))
		return -EBADMSG;
	memcpy(buf, v->valuestring, n + 1);
	return 0;
}

int hub_json_revision(const char *json, size_t len, char *ret_sha)
{
	_cleanup_(json_deletep) cJSON *j = json_parse(json, len);

	if (!cJSON_IsObject(j))
		return -EBADMSG;
	return json_hex(j, "sha", 40, ret_sha);
}

int hub_json_repo_flags(const char *json, size_t len, bool *ret_private, bool *ret_gated)
{
	_cleanup_(json_deletep) cJSON *j = json_parse(json, len);
	const cJSON *gated;

	if (!cJSON_IsObject(j))
		return -EBADMSG;
	*ret_private = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "private"));
	gated = cJSON_GetObjectItemCaseSensitive(j, "gated");
	*ret_gated = cJSON_IsTrue(gated) || (cJSON_IsString(gated) && *gated->valuestring);
	return 0;
}

/* "YYYY-MM-DDTHH:MM:SS" then ".fff", "Z" or an end: unix seconds, or 0. */
static uint64_t iso8601_utc(const char *s)
{
	struct tm tm = { 0 };
	int n = 0;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n != 19 || (s[n] && s[n] != '.' && s[n] != 'Z') || tm.tm_year < 1970 || tm.tm_mon < 1 ||
	    tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (uint64_t)timegm(&tm);
}

int hub_json_last_modified(const char *json, size_t len, uint64_t *ret_s)
{
	_cleanup_(json_deletep) cJSON *j = json_parse(json, len);
	const cJSON *v;

	if (!cJSON_IsObject(j))
		return -EBADMSG;
	v = cJSON_GetObjectItemCaseSensitive(j, "lastModified");
	*ret_s = cJSON_IsString(v) ? iso8601_utc(v->valuestring) : 0;
	return 0;
}

int hub_json_whoami(const char *json, size_t len, char *buf, size_t buflen)
{
	_cleanup_(json_deletep) cJSON *j = json_parse(json, len);
	const cJSON *name = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "name") : NULL;

	if (!cJSON_IsString(name))
		return -EBADMSG;
	if (strlen(name->valuestring) >= buflen)
		return -ENAMETOOLONG;
	strcpy(buf, name->valuestring);
	return 0;
}

/* The lfs member of a file entry: absent or null means a regular file. */
static int tree_entry_lfs(const cJSON *item, struct hub_entry *e)
{
	const cJSON *lfs = cJSON_GetObjectItemCaseSensitive(item, "lfs");
	uint64_t size;
	int r;

	if (!lfs || cJSON_IsNull(lfs))
		return 0;
	if (!cJSON_IsObject(lfs))
		return -EBADMSG;
	r = json_hex(lfs, "oid", 64, e->sha256);
	if (r < 0)
		return r;
	r = json_size(cJSON_GetObjectItemCaseSensitive(lfs, "size"), &size);
	/* The entry's size is the content's size, which lfs.size also states (HUB_PROTOCOL.md
	 * 3): two different sizes for one sha256 leave no right answer. */
	if (r < 0 || size != e->size)
		return -EBADMSG;
	e->is_lfs = true;
	return 0;
}

/* One §3 entry into e (e->path malloc'd on success). Directories may omit size and oid. */
static int tree_entry(const cJSON *item, struct hub_entry *e)
{
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(item, "type");
	const cJSON *path = cJSON_GetObjectItemCaseSensitive(item, "path");
	const cJSON *size = cJSON_GetObjectItemCaseSensitive(item, "size");
	int r;

	memset(e, 0, sizeof(*e));
	if (!cJSON_IsObject(item) || !cJSON_IsString(type) || !cJSON_IsString(path))
		return -EBADMSG;
	if (!strcmp(type->valuestring, "directory"))
		e->is_dir = true;
	else if (strcmp(type->valuestring, "file") != 0)
		return -EBADMSG;
	if (size || !e->is_dir) {
		r = json_size(size, &e->size);
		if (r < 0)
			return r;
	}
	if (!e->is_dir || cJSON_GetObjectItemCaseSensitive(item, "oid")) {
		r = json_hex(item, "oid", 40, e->oid);
		if (r < 0)
			return r;
	}
	if (!e->is_dir) {
		r = tree_entry_lfs(item, e);
		if (r < 0)
			return r;
	}
	e->path = strdup(path->valuestring);
	return e->path ? 0 : -ENOMEM;
}

int hub_json_tree_page(const char *json, size_t len, struct hub_tree *tree)
{
	_cleanup_(json_deletep) cJSON *j = json_parse(json, len);
	size_t start = tree->n;
	const cJSON *item;

	if (!cJSON_IsArray(j))
		return -EBADMSG;
	cJSON_ArrayForEach(item, j)
	{
		struct hub_entry e;
		int r = tree_entry(item, &e);

		if (r >= 0) {
			r = hub_tree_push(tree, &e);
			if (r < 0)
				free(e.path);
		}
		if (r < 0) {
			/* A page is taken whole or not at all. */
			hub_tree_truncate(tree, start);
			return r;
		}
	}
	return 0;
}

static int dump_entry(cJSON *arr, const struct hub_entry *e)
{
	cJSON *o = cJSON_CreateObject();
	char size[24];

	/* Raw digits: cJSON prints numbers with %.15g and calls a neighbour equal, which would
	 * turn 9007199254740991 into ...990. */
	snprintf(size, sizeof(size), "%" PRIu64, e->size);

	if (!o)
		return -ENOMEM;
	if (!cJSON_AddItemToArray(arr, o)) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	if (!cJSON_AddStringToObject(o, "type", e->is_dir ? "directory" : "file") ||
	    !cJSON_AddStringToObject(o, "path", e->path) || !cJSON_AddRawToObject(o, "size", size))
		return -ENOMEM;
	if (e->oid[0] && !cJSON_AddStringToObject(o, "oid", e->oid))
		return -ENOMEM;
	if (e->is_lfs) {
		cJSON *lfs = cJSON_AddObjectToObject(o, "lfs");

		if (!lfs || !cJSON_AddStringToObject(lfs, "oid", e->sha256) ||
		    !cJSON_AddRawToObject(lfs, "size", size))
			return -ENOMEM;
	}
	return 0;
}

char *hub_json_tree_dump(const struct hub_tree *tree, size_t *ret_len)
{
	_cleanup_(json_deletep) cJSON *arr = cJSON_CreateArray();
	char *out;

	if (!arr)
		return NULL;
	for (size_t i = 0; i < tree->n; i++)
		if (dump_entry(arr, &tree->v[i]) < 0)
			return NULL;
	out = cJSON_PrintUnformatted(arr);
	if (out && ret_len)
		*ret_len = strlen(out);
	return out;
}

/* Appends s to buf (of buflen, holding *pos bytes), "; "-separated, control characters as
 * spaces, truncated to fit. */
static void msg_append(char *buf, size_t buflen, size_t *pos, const char *s)
{
	if (*pos && *pos + 2 < buflen) {
		memcpy(buf + *pos, "; ", 2);
		*pos += 2;
	}
	for (; *s && *pos + 1 < buflen; s++)
		buf[(*pos)++] = (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s;
	buf[*pos] = '\0';
}

int hub_json_error_message(const char *json, size_t len, char *buf, size_t buflen)
{
	_cleanup_(json_deletep) cJSON *j = json_parse(json, len);
	const cJSON *v, *item;
	size_t pos = 0;

	if (!cJSON_IsObject(j) || buflen == 0)
		return -EBADMSG;
	buf[0] = '\0';
	v = cJSON_GetObjectItemCaseSensitive(j, "error");
	if (cJSON_IsString(v)) {
		msg_append(buf, buflen, &pos, v->valuestring);
	} else if (cJSON_IsArray(v)) {
		cJSON_ArrayForEach(item, v)
		{
			if (cJSON_IsString(item) && item->valuestring[0])
				msg_append(buf, buflen, &pos, item->valuestring);
		}
	}
	v = cJSON_GetObjectItemCaseSensitive(j, "errors");
	if (!pos && cJSON_IsArray(v)) {
		cJSON_ArrayForEach(item, v)
		{
			const cJSON *m = cJSON_GetObjectItemCaseSensitive(item, "message");

			if (cJSON_IsString(m) && m->valuestring[0])
				msg_append(buf, buflen, &pos, m->valuestring);
		}
	}
	v = cJSON_GetObjectItemCaseSensitive(j, "message");
	if (!pos && cJSON_IsString(v))
		msg_append(buf, buflen, &pos, v->valuestring);
	return pos ? 0 : -EBADMSG;
}

int hub_json_index_files(const char *json, size_t len, char ***ret, size_t *ret_n)
{
	_cleanup_(json_deletep) cJSON *root = json_parse(json, len);
	const cJSON *map, *item;
	char **names = NULL;
	size_t n = 0;

	*ret = NULL;
	*ret_n = 0;
	map = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
	if (!cJSON_IsObject(map))
		return -EBADMSG;
	cJSON_ArrayForEach(item, map)
	{
		bool seen = false;
		char **v;

		if (!cJSON_IsString(item) || !item->valuestring[0])
			goto out_free_names;
		for (size_t i = 0; i < n && !seen; i++)
			seen = !strcmp(names[i], item->valuestring);
		if (seen)
			continue;
		v = realloc(names, (n + 1) * sizeof(*v));
		if (!v)
			goto out_free_names;
		names = v;
		names[n] = strdup(item->valuestring);
		if (!names[n])
			goto out_free_names;
		n++;
	}
	*ret = names;
	*ret_n = n;
	return 0;
out_free_names:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return -EBADMSG;
}

static bool is_http_url(const char *s)
{
	/* Absolute with a host, and nothing curl would have to guess about (no space; controls
	 * are refused with the whole text). */
	const char *host = !strncmp(s, "https://", 8) ? s + 8 :
			   !strncmp(s, "http://", 7)  ? s + 7 :
							NULL;

	return host && *host && *host != '/' && !strchr(s, ' ');
}

/* {"start": a, "end": b} of obj's member name. */
static int json_range(const cJSON *obj, const char *name, uint64_t *ret_start, uint64_t *ret_end)
{
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!cJSON_IsObject(r) ||
	    json_size(cJSON_GetObjectItemCaseSensitive(r, "start"), ret_start) < 0 ||
	    json_size(cJSON_GetObjectItemCaseSensitive(r, "end"), ret_end) < 0)
		return -EBADMSG;
	return 0;
}

static int recon_url(struct xet_recon *r, const cJSON *entry, size_t *ret)
{
	const cJSON *url = cJSON_GetObjectItemCaseSensitive(entry, "url");
	char **urls;

	if (!cJSON_IsString(url) || !is_http_url(url->valuestring))
		return -EBADMSG;
	urls = realloc(r->urls, (r->n_urls + 1) * sizeof(*urls));
	if (!urls)
		return -ENOMEM;
	r->urls = urls;
	urls[r->n_urls] = strdup(url->valuestring);
	if (!urls[r->n_urls])
		return -ENOMEM;
	*ret = r->n_urls++;
	return 0;
}

static int recon_add_fetch(struct xet_recon *r, const struct xet_fetch *f)
{
	struct xet_fetch *fs = realloc(r->fetches, (r->n_fetches + 1) * sizeof(*fs));

	if (!fs)
		return -ENOMEM;
	r->fetches = fs;
	fs[r->n_fetches++] = *f;
	return 0;
}

/* v1: one entry {range: chunks, url, url_range: bytes} is one fetch. */
static int recon_v1_entry(struct xet_recon *r, const char *xorb, const cJSON *e)
{
	struct xet_fetch f = { .chunk_start = 0 };
	int rc;

	memcpy(f.xorb, xorb, XET_HEX_LEN);
	if (!cJSON_IsObject(e) || json_range(e, "range", &f.chunk_start, &f.chunk_end) < 0 ||
	    json_range(e, "url_range", &f.byte_first, &f.byte_last) < 0)
		return -EBADMSG;
	rc = recon_url(r, e, &f.url);
	return rc < 0 ? rc : recon_add_fetch(r, &f);
}

/* v2: one entry {url, ranges: [{chunks, bytes}]} is a fetch per range, sharing the URL. */
static int recon_v2_entry(struct xet_recon *r, const char *xorb, const cJSON *e)
{
	const cJSON *ranges = cJSON_GetObjectItemCaseSensitive(e, "ranges"), *item;
	struct xet_fetch f = { .chunk_start = 0 };
	int rc;

	memcpy(f.xorb, xorb, XET_HEX_LEN);
	if (!cJSON_IsObject(e) || !cJSON_IsArray(ranges) || !cJSON_GetArraySize(ranges))
		return -EBADMSG;
	rc = recon_url(r, e, &f.url);
	if (rc < 0)
		return rc;
	cJSON_ArrayForEach(item, ranges)
	{
		if (!cJSON_IsObject(item) ||
		    json_range(item, "chunks", &f.chunk_start, &f.chunk_end) < 0 ||
		    json_range(item, "bytes", &f.byte_first, &f.byte_last) < 0)
			return -EBADMSG;
		rc = recon_add_fetch(r, &f);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int recon_terms(struct xet_recon *r, const cJSON *terms)
{
	const cJSON *item;
	size_t n = 0;

	if (!cJSON_IsArray(terms))
		return -EBADMSG;
	r->terms = calloc((size_t)cJSON_GetArraySize(terms) + 1, sizeof(*r->terms));
	if (!r->terms)
		return -ENOMEM;
	cJSON_ArrayForEach(item, terms)
	{
		struct xet_term *t = &r->terms[n++];

		if (!cJSON_IsObject(item) || json_hex(item, "hash", 64, t->xorb) < 0 ||
		    json_range(item, "range", &t->chunk_start, &t->chunk_end) < 0 ||
		    json_size(cJSON_GetObjectItemCaseSensitive(item, "unpacked_length"),
			      &t->unpacked_len) < 0)
			return -EBADMSG;
		r->n_terms = n;
	}
	return 0;
}

static int recon_parse(const cJSON *j, struct xet_recon *r, const char **why)
{
	const cJSON *xorbs = cJSON_GetObjectItemCaseSensitive(j, "xorbs");
	const cJSON *info = cJSON_GetObjectItemCaseSensitive(j, "fetch_info");
	const cJSON *map = xorbs ? xorbs : info, *entries;
	int rc;

	*why = "a reconstruction that is not the JSON the protocol defines";
	if (!cJSON_IsObject(j) || !cJSON_IsObject(map) ||
	    json_size(cJSON_GetObjectItemCaseSensitive(j, "offset_into_first_range"),
		      &r->offset_into_first_range) < 0)
		return -EBADMSG;
	rc = recon_terms(r, cJSON_GetObjectItemCaseSensitive(j, "terms"));
	if (rc < 0)
		return rc;
	cJSON_ArrayForEach(entries, map)
	{
		const cJSON *e;

		if (!is_lower_hex(entries->string, 64) || !cJSON_IsArray(entries))
			return -EBADMSG;
		cJSON_ArrayForEach(e, entries)
		{
			rc = xorbs ? recon_v2_entry(r, entries->string, e) :
				     recon_v1_entry(r, entries->string, e);
			if (rc < 0)
				return rc;
		}
	}
	return xet_recon_check(r, why);
}

int hub_json_xet_recon(const char *json, size_t len, struct xet_recon *ret, const char **ret_why)
{
	_cleanup_(json_deletep) cJSON *j = json_parse(json, len);
	struct xet_recon r = { .n_terms = 0 };
	int rc = recon_parse(j, &r, ret_why);

	if (rc < 0) {
		xet_recon_done(&r);
		return rc;
	}
	*ret = r;
	return 0;
}

int hub_json_xet_token(const char *json, size_t len, struct xet_token *ret)
{
	_cleanup_(json_deletep) cJSON *j = json_parse(json, len);
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(j, "accessToken");
	const cJSON *cas = cJSON_GetObjectItemCaseSensitive(j, "casUrl");
	const cJSON *exp = cJSON_GetObjectItemCaseSensitive(j, "exp");
	struct xet_token t = { .exp = 0 };
	uint64_t e;
	size_t n;

	if (!cJSON_IsObject(j) || !cJSON_IsString(tok) || !*tok->valuestring ||
	    !cJSON_IsString(cas) || !is_http_url(cas->valuestring) || json_size(exp, &e) < 0)
		return -EBADMSG;
	t.access_token = strdup(tok->valuestring);
	t.cas_url = strdup(cas->valuestring);
	if (!t.access_token || !t.cas_url) {
		xet_token_done(&t);
		return -ENOMEM;
	}
	n = strlen(t.cas_url);
	while (n && t.cas_url[n - 1] == '/')
		t.cas_url[--n] = '\0';
	t.exp = (int64_t)e;
	*ret = t;
	return 0;
}
