/* http_env.c: the proxy and the TLS trust the environment names, as the official client
 * reads them (HUB_PROTOCOL.md 6), read and set on a curl easy handle in one place so that
 * metadata exchanges (http_exchange.c) and transfers (xfer_hop.c) take the same route and
 * trust the same CAs. Any thread. */
#include "fetch/http_env.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "util/cleanup.h"

int http_env_proxy(char **ret)
{
	const char *v = getenv("HTTP_PROXY");

	*ret = NULL;
	if (!v || !*v || getenv("http_proxy") || getenv("REQUEST_METHOD"))
		return 0;
	*ret = strdup(v);
	return *ret ? 0 : -ENOMEM;
}

int http_env_proxy_setopt(const char *http_proxy, const char *url, void *curl)
{
	/* As for the CAs: a failure must not send the request direct, around the proxy. */
	if (http_proxy && strncasecmp(url, "http://", 7) == 0 &&
	    curl_easy_setopt(curl, CURLOPT_PROXY, http_proxy) != CURLE_OK)
		return -ENOMEM;
	return 0;
}

int http_env_ca(struct http_env_ca *ret)
{
	static const char *const names[] = { "SSL_CERT_FILE", "SSL_CERT_DIR" };
	char **fields[] = { &ret->file, &ret->dir };

	*ret = (struct http_env_ca){ 0 };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		const char *v = getenv(names[i]);

		if (!v || !*v)
			continue;
		*fields[i] = strdup(v);
		if (!*fields[i])
			return -ENOMEM;
	}
	return 0;
}

void http_env_ca_done(struct http_env_ca *ca)
{
	if (!ca)
		return;
	free(ca->file);
	free(ca->dir);
	*ca = (struct http_env_ca){ 0 };
}

int http_env_ca_setopt(const struct http_env_ca *ca, void *curl)
{
	/* A failure here must not pass silently: the handle would trust curl's default CAs
	 * instead of the ones asked for. */
	if ((ca->file && curl_easy_setopt(curl, CURLOPT_CAINFO, ca->file) != CURLE_OK) ||
	    (ca->dir && curl_easy_setopt(curl, CURLOPT_CAPATH, ca->dir) != CURLE_OK))
		return -ENOMEM;
	return 0;
}
