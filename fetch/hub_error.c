/* hub_error.c: a failed Hub call as a reason, a status and one line of words. Pure; any
 * thread. */
#include "fetch/hub_error.h"

#include <stdarg.h>
#include <stdio.h>

void hub_error_set(struct hub_error *err, enum fetch_reason reason, long status, const char *fmt,
		   ...)
{
	va_list ap;

	if (!err)
		return;
	err->reason = reason;
	err->status = status;
	va_start(ap, fmt);
	(void)vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}
