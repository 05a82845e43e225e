/* test_atomic_file.c: a file replaced whole: the new contents and mode after a write, the old
 * contents after a failed one, and no temporary file left either way. */
#include "util/atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/check.h"

static int fill_text(FILE *f, void *ud)
{
	fputs(ud, f);
	return 0;
}

static int fill_fails(FILE *f, void *ud)
{
	(void)ud;
	fputs("half", f);
	return -EIO;
}

static void read_file(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	ASSERT_NOT_NULL(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static size_t entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	ASSERT_NOT_NULL(d);
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

static void test_replace(void)
{
	char dir[] = "/tmp/hffs-atomic-XXXXXX", path[64], buf[64], one[] = "one\n", two[] = "two\n";
	struct stat st;
	ino_t first;

	ASSERT_NOT_NULL(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/m.prom", dir);
	ASSERT_OK(atomic_file_write(path, 0644, fill_text, one));
	read_file(path, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "one\n");
	ASSERT_OK(stat(path, &st));
	ASSERT_EQ(st.st_mode & 0777, 0644);
	first = st.st_ino;
	ASSERT_OK(atomic_file_write(path, 0640, fill_text, two));
	read_file(path, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "two\n");
	ASSERT_OK(stat(path, &st));
	ASSERT_EQ(st.st_mode & 0777, 0640);
	ASSERT_TRUE(st.st_ino != first); /* a new file took the name: readers keep the old one */
	/* A failed fill leaves the old file, and nothing beside it. */
	ASSERT_EQ(atomic_file_write(path, 0644, fill_fails, NULL), -EIO);
	read_file(path, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "two\n");
	ASSERT_EQ(entries(dir), 1);
	ASSERT_OK(unlink(path));
	/* No such directory: the error, nothing created. */
	snprintf(path, sizeof(path), "%s/no/m.prom", dir);
	ASSERT_EQ(atomic_file_write(path, 0644, fill_text, one), -ENOENT);
	ASSERT_OK(rmdir(dir));
}

int main(void)
{
	RUN(test_replace);
	return 0;
}
