/* hub_json.h: Hub JSON replies to structs, and the tree's serialized form for the cache.
 * The only cJSON user. Pure; any thread. Every parser takes untrusted bytes (fuzzed). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "fetch/hub_tree.h"

/* "sha" of a revision reply into ret_sha (41 bytes). -EBADMSG when missing or not 40 hex. */
int hub_json_revision(const char *json, size_t len, char *ret_sha);
/* "private" and "gated" ("auto" or "manual"; false otherwise) of a repo or revision reply;
 * an absent field is false. -EBADMSG when json is not an object. */
int hub_json_repo_flags(const char *json, size_t len, bool *ret_private, bool *ret_gated);
/* "lastModified" of a revision reply (ISO-8601 UTC, "2024-01-02T03:04:05.000Z") as unix
 * seconds into *ret_s; 0 when absent or not of that form (HUB_PROTOCOL.md 2). -EBADMSG when
 * json is not an object. */
int hub_json_last_modified(const char *json, size_t len, uint64_t *ret_s);
/* "name" of a whoami-v2 reply into buf. -EBADMSG when missing, -ENAMETOOLONG when buf is short. */
int hub_json_whoami(const char *json, size_t len, char *buf, size_t buflen);
/* Appends the entries of one tree page (a JSON array of §3 entries) to tree. Unknown fields
 * are ignored; a missing path/type/size or a malformed lfs object is -EBADMSG. */
int hub_json_tree_page(const char *json, size_t len, struct hub_tree *tree);
/* The tree as one JSON array in the page format, so hub_json_tree_page() reads it back.
 * malloc'd, NULL on OOM. */
char *hub_json_tree_dump(const struct hub_tree *tree, size_t *ret_len);
/* The message of an error body: {"error": "..."}, {"error": ["a","b"]}, {"errors":
 * [{"message": ...}]}. -EBADMSG when none is found. */
int hub_json_error_message(const char *json, size_t len, char *buf, size_t buflen);
/* The distinct file names a safetensors index ({"weight_map": {tensor: file}}) lists, in the
 * order of first appearance. *ret (and each name) malloc'd; the caller frees. -EBADMSG when
 * there is no weight_map object or a value is not a non-empty string. */
int hub_json_index_files(const char *json, size_t len, char ***ret, size_t *ret_n);

struct xet_recon;
struct xet_token;

/* A Xet CAS's reconstruction reply, /v1 (terms, fetch_info with url and url_range) or /v2
 * (terms, xorbs with a url and its ranges' chunks and bytes), into ret, then checked by
 * xet_recon_check(). Unknown fields are ignored. -EBADMSG, with *ret_why saying what, when a
 * field is missing or of the wrong type, a hash is not 64 lowercase hex, a URL is not an
 * absolute http(s) one, or the check fails; -ENOMEM. ret is left empty on failure. */
int hub_json_xet_recon(const char *json, size_t len, struct xet_recon *ret, const char **ret_why);
/* A read-token reply {"accessToken", "casUrl", "exp"} into ret (casUrl without its trailing
 * slashes). -EBADMSG when a field is missing, empty or of the wrong type, or casUrl is not
 * an absolute http(s) URL; -ENOMEM. ret is left empty on failure. */
int hub_json_xet_token(const char *json, size_t len, struct xet_token *ret);
