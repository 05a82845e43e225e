/* test_mountinfo.c: finding what is mounted at a path in mountinfo text: escaped names, the
 * topmost of stacked mounts, optional fields, absent paths, malformed lines. */
#include "util/mountinfo.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tests/unit/check.h"

static const char sample[] =
	"22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
	"30 22 0:25 / /tmp rw,nosuid,nodev - tmpfs tmpfs rw\n"
	"41 30 0:40 / /tmp/my\\040models rw,nosuid,nodev,relatime shared:7 master:2 - fuse.hffs "
	"hffs:org/model rw,user_id=0,group_id=0\n"
	"42 30 0:41 / /tmp/stack rw - tmpfs tmpfs rw\n"
	"43 42 0:42 / /tmp/stack rw - fuse.hffs hffs:org/top rw\n";

static FILE *text(const char *s)
{
	FILE *f = fmemopen((void *)s, strlen(s), "r");

	ASSERT_NOT_NULL(f);
	return f;
}

static void test_find(void)
{
	struct mountinfo_entry e;
	FILE *f;

	f = text(sample);
	ASSERT_OK(mountinfo_find_in(f, "/tmp/my models", &e));
	ASSERT_STR_EQ(e.fstype, "fuse.hffs");
	ASSERT_STR_EQ(e.source, "hffs:org/model");
	fclose(f);

	f = text(sample);
	ASSERT_OK(mountinfo_find_in(f, "/tmp", &e));
	ASSERT_STR_EQ(e.fstype, "tmpfs");
	fclose(f);

	/* Stacked: the last line is what the path shows. */
	f = text(sample);
	ASSERT_OK(mountinfo_find_in(f, "/tmp/stack", &e));
	ASSERT_STR_EQ(e.source, "hffs:org/top");
	fclose(f);

	f = text(sample);
	ASSERT_EQ(mountinfo_find_in(f, "/tmp/my\\040models", &e), -ENOENT);
	fclose(f);
	f = text(sample);
	ASSERT_EQ(mountinfo_find_in(f, "/nowhere", &e), -ENOENT);
	fclose(f);
}

static void test_malformed(void)
{
	struct mountinfo_entry e;
	FILE *f = text("41 30 0:40 / /x rw,relatime shared:7\n");

	ASSERT_EQ(mountinfo_find_in(f, "/x", &e), -EBADMSG); /* no separator */
	fclose(f);
	f = text("41 30\n");
	ASSERT_EQ(mountinfo_find_in(f, "/x", &e), -EBADMSG);
	fclose(f);
}

static void test_self(void)
{
	struct mountinfo_entry e;

	/* This process's own root is always mounted. */
	ASSERT_OK(mountinfo_find("/", &e));
	ASSERT_TRUE(e.fstype[0] != '\0');
}

int main(void)
{
	RUN(test_find);
	RUN(test_malformed);
	RUN(test_self);
	return 0;
}
