/* doctor_xet.h: `hffs doctor`'s `xet` line: whether a repo's file stored on Xet can be read
 * over the Xet protocol from here (probe, read token, reconstruction, one xorb range decoded),
 * through fetch/xet.h, the client a Xet read uses. Single thread; blocks on the network. */
#pragma once

#include "cli/doctor.h"
#include "fetch/hub.h"

/* Checks the Xet path with file (an LFS entry of repo at commit; NULL when the repo has
 * none), reading at most its first 4 MiB; nothing with cfg->disable_xet (HF_HUB_DISABLE_XET).
 * Adds one line named "xet". */
void doctor_check_xet(struct doctor *d, const struct hub_config *cfg, const struct hub_repo *repo,
		      const char *commit, const struct hub_entry *file);
