/* hub_config.h: what the official client reads from the environment (HUB_PROTOCOL.md 5-6):
 * the endpoint, the token and where it came from, offline mode, the metadata timeout. */
#pragma once

#include <stdbool.h>

/* The endpoints the official client uses without HF_ENDPOINT (HUB_PROTOCOL.md 6), and with
 * HUGGINGFACE_CO_STAGING=1. */
#define HUB_DEFAULT_ENDPOINT \
	"https://"           \
	"huggingface.co"
#define HUB_STAGING_ENDPOINT \
	"https://"           \
	"hub-ci.huggingface.co"

/* Filled once by hub_config_init(), read-only afterwards: any thread may read it. */
struct hub_config {
	char *endpoint; /* HF_ENDPOINT or the override, no trailing '/' */
	char *token; /* NULL: anonymous */
	char *token_source; /* "HF_TOKEN", "/root/.cache/huggingface/token", ... for messages */
	char *user_agent; /* "hffs/<version>; curl/<v>" */
	bool offline; /* HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE */
	bool disable_xet; /* HF_HUB_DISABLE_XET: never speak the Xet protocol */
	long timeout_s; /* metadata requests (HF_HUB_ETAG_TIMEOUT, default 10) */
};

/* Fills cfg from the environment (HUB_PROTOCOL.md 5-6): HF_ENDPOINT (endpoint_override wins
 * when non-NULL; HUGGINGFACE_CO_STAGING picks the staging Hub), HF_TOKEN, HUGGING_FACE_HUB_TOKEN,
 * HF_TOKEN_PATH, HF_HOME/token (HF_HOME from XDG_CACHE_HOME or ~/.cache/huggingface; ~ and
 * $VAR expanded), HF_HUB_DISABLE_IMPLICIT_TOKEN, HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE,
 * HF_HUB_DISABLE_XET, HF_HUB_ETAG_TIMEOUT. The first token source whose value is non-empty once CR/LF are removed
 * and it is trimmed wins; a missing or unreadable token file means none. -ENOMEM only (cfg is
 * then empty). Reads the environment: call before starting threads that change it. */
int hub_config_init(struct hub_config *cfg, const char *endpoint_override);
/* Frees cfg's strings (the token wiped first). */
void hub_config_done(struct hub_config *cfg);
