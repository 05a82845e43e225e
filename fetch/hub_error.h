/* hub_error.h: a failed Hub call as a reason, a status and one line of words a person can act
 * on; what every hub_*.c call fills. Pure; any thread. */
#pragma once

#include "fetch/reason.h"

struct hub_error {
	enum fetch_reason reason;
	long status; /* HTTP status, 0 without a reply */
	char message[512]; /* one line for a person: what, which object, why */
};

/* Fills err (when not NULL) with reason, status and a printf-formatted line, truncated. */
void hub_error_set(struct hub_error *err, enum fetch_reason reason, long status, const char *fmt,
		   ...) __attribute__((format(printf, 4, 5)));
