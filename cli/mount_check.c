/* mount_check.c: friendly checks of `hffs mount`'s repo, endpoint and --allow-other (see
 * mount_check.h). */
#include "cli/mount_check.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util/log.h"

static bool has_scheme(const char *s)
{
	return !strncasecmp(s, "http://", 7) || !strncasecmp(s, "https://", 8);
}

/* The repo id in a Hub page URL: "https://huggingface.co/org/name/tree/main" ->
 * "org/name", "https://host/datasets/org/name" -> "datasets/org/name". False when none. */
static bool id_from_url(const char *url, char *buf, size_t len)
{
	const char *p = strstr(url, "://"), *end;
	size_t n, segs = 0;

	if (!p || !(p = strchr(p + 3, '/')))
		return false;
	p++;
	for (end = p; *end && *end != '?' && *end != '#'; end++) {
		if (*end != '/')
			continue;
		/* "datasets/" and "spaces/" add a segment; /tree/, /blob/, /resolve/ end it. */
		segs++;
		if (segs == 2U + (!strncmp(p, "datasets/", 9) || !strncmp(p, "spaces/", 7)))
			break;
	}
	n = (size_t)(end - p);
	if (!n || n >= len)
		return false;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return true;
}

int cli_check_repo_arg(const char *spec)
{
	char id[256];
	size_t n = strlen(spec);

	if (has_scheme(spec)) {
		if (id_from_url(spec, id, sizeof(id)))
			log_err("'%s' is a URL; give the repo id: hffs mount %s MOUNTPOINT", spec,
				id);
		else
			log_err("'%s' is a URL; give the repo id, e.g. org/name", spec);
		return 2;
	}
	if (n > 1 && spec[n - 1] == '/') {
		while (n > 1 && spec[n - 1] == '/')
			n--;
		log_err("'%s' ends with '/'; the repo id is '%.*s'", spec, (int)n, spec);
		return 2;
	}
	return 0;
}

int cli_check_endpoint(const char *endpoint, const char *from)
{
	if (!endpoint || !*endpoint)
		return 0;
	if (!has_scheme(endpoint) || !strchr(endpoint, ':')[3]) {
		log_err("%s '%s' is not a URL: give it with its scheme, e.g. https://%s", from,
			endpoint, has_scheme(endpoint) ? "huggingface.co" : endpoint);
		return 2;
	}
	return 0;
}

/* fusermount3 reads each line without its surrounding blanks; '#' starts a comment. */
bool cli_fuse_conf_allows_other(const char *conf)
{
	FILE *f = fopen(conf, "re");
	char line[256];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *p = line + strspn(line, " \t"), *end = p + strcspn(p, "#\n");

		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		found = end - p == 16 && !strncmp(p, "user_allow_other", 16);
	}
	fclose(f);
	return found;
}

int cli_check_allow_other(const char *conf)
{
	if (geteuid() == 0 || cli_fuse_conf_allows_other(conf))
		return 0;
	log_err("--allow-other needs a line 'user_allow_other' in %s when not mounting as root "
		"(fusermount3 refuses it otherwise): as root, echo user_allow_other >> %s",
		conf, conf);
	return 1;
}
