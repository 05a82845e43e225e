/* http_env.h: the proxy and the TLS trust the environment names, read and set on a curl easy
 * handle in one place so that metadata exchanges and transfers take the same route and trust
 * the same CAs. No curl in this header, so a handle travels as void *. */
#pragma once

/* The proxy as Python's urllib reads it (HUB_PROTOCOL.md 6). libcurl honours http_proxy,
 * HTTPS_PROXY, ALL_PROXY and NO_PROXY (either case) itself, but for http:// URLs reads only
 * the lowercase http_proxy; the uppercase HTTP_PROXY is passed explicitly. Under CGI
 * (REQUEST_METHOD set) a client's "Proxy:" header may have set HTTP_PROXY: ignored there, as
 * urllib and curl do. */

/* Copies HTTP_PROXY into *ret when libcurl would not read it itself: set and not empty, with
 * neither http_proxy (even empty: urllib lets the lowercase one win) nor REQUEST_METHOD set;
 * else *ret is NULL. Any thread, as http_env_ca(). -ENOMEM. The caller frees *ret. */
int http_env_proxy(char **ret);
/* Sets http_proxy as CURLOPT_PROXY on curl, a CURL * easy handle, when url is http:// (any
 * case); nothing for other URLs or a NULL http_proxy. Again after each curl_easy_reset().
 * Borrows both (curl copies the string). -ENOMEM. Any thread that owns curl. */
int http_env_proxy_setopt(const char *http_proxy, const char *url, void *curl);

/* The CA locations as Python's httpx reads them from the environment (HUB_PROTOCOL.md 6):
 * SSL_CERT_FILE, a PEM bundle used in place of curl's built-in one (CURLOPT_CAINFO), and
 * SSL_CERT_DIR, a directory of c_rehash'd certificates searched as well (CURLOPT_CAPATH).
 * Each is malloc'd, or NULL when the variable is unset or empty (curl's default stays). */
struct http_env_ca {
	char *file;
	char *dir;
};

/* Copies SSL_CERT_FILE and SSL_CERT_DIR into ret. Any thread: getenv() only races a
 * setenv(), which hffs never calls (tests do, between requests). -ENOMEM; ret is then partly
 * filled, and http_env_ca_done() frees it either way. */
int http_env_ca(struct http_env_ca *ret);
/* Frees ca's strings and clears them; ca may then be reused. Takes NULL. */
void http_env_ca_done(struct http_env_ca *ca);
/* Sets ca on curl, a CURL * easy handle: CURLOPT_CAINFO and CURLOPT_CAPATH for the fields
 * that are set, nothing for the others. Again after each curl_easy_reset(). Borrows ca (curl
 * copies the strings). -ENOMEM. Any thread that owns curl. */
int http_env_ca_setopt(const struct http_env_ca *ca, void *curl);
