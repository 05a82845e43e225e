/* main.c: the hffs command: picks the subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "util/log.h"

static const char usage[] =
	"Usage: hffs COMMAND [ARGS]\n"
	"\n"
	"Mount a Hugging Face Hub repo as a read-only filesystem: files are usable at once,\n"
	"their bytes are fetched on demand into a verified cache shared by every mount.\n"
	"\n"
	"Commands:\n"
	"  mount REPO MOUNTPOINT   mount REPO (org/name, datasets/org/name, spaces/org/name)\n"
	"  unmount MOUNTPOINT      unmount it and wait for the daemon to finish\n"
	"  status [MOUNTPOINT]     mounts, per-file coverage and state (--json)\n"
	"  verify [REPO|MOUNTPOINT] rehash complete files against their content ids\n"
	"  cache ls|rm|gc|verify   what the cache holds; remove, evict, check it (--json)\n"
	"  doctor [REPO]           why a mount would fail or be slow: network, token, repo,\n"
	"                          FUSE, cache; one OK/WARN/FAIL line per check (--json)\n"
	"\n"
	"Options:\n"
	"  -h, --help              this text; 'hffs COMMAND --help' for a command's options\n"
	"  -V, --version           the version\n"
	"\n"
	"Environment: HF_ENDPOINT, HF_TOKEN, HF_TOKEN_PATH, HF_HOME, HF_HUB_OFFLINE,\n"
	"HFFS_CACHE_DIR. See 'man hffs' or docs/cli.md.\n"
	"\n"
	"Example:\n"
	"  hffs mount Qwen/Qwen2.5-VL-7B-Instruct /models/qwen\n"
	"  python -c \"from transformers import AutoModel; AutoModel.from_pretrained('/models/qwen')\"\n"
	"  hffs status\n"
	"  hffs pull Qwen/Qwen2.5-VL-7B-Instruct --local-dir /models/qwen   # download instead\n";

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "mount", cmd_mount },	  { "unmount", cmd_unmount }, { "umount", cmd_unmount },
		{ "status", cmd_status }, { "cache", cmd_cache },     { "verify", cmd_verify },
		{ "doctor", cmd_doctor }, { "pull", cmd_pull },
	};

	log_init("hffs", LOG_LEVEL_INFO, -1);
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("hffs %s\n", HFFS_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "hffs: unknown command '%s'; see 'hffs --help'\n", argv[1]);
	return 2;
}
