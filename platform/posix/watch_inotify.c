/* platform.h, the watcher's part: inotify on Linux (libuv has no
 * recursive watch there and drops IN_Q_OVERFLOW, so agent/watch.c drives
 * the descriptor itself with uv_poll). Elsewhere the OS watches a tree
 * natively through uv_fs_event and these calls only report that. */
#include "platform.h"

#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

#if defined(__linux__)

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

bool sw_plat_native_recursive_watch(void) { return false; }

sw_err sw_plat_inotify_open(int *fd)
{
	/* Non-blocking: the loop reads until EAGAIN and must never stall. */
	*fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (*fd >= 0)
		return SW_OK;
	return errno == EMFILE || errno == ENFILE || errno == ENOMEM ? SW_ERR_LIMIT : SW_ERR_IO;
}

void sw_plat_inotify_close(int fd)
{
	if (fd >= 0)
		close(fd);
}

sw_err sw_plat_inotify_add(int fd, const char *dir, bool follow, int *wd)
{
	/* One watch per directory. IN_ONLYDIR + IN_DONT_FOLLOW: a folder
	 * swapped for a link between listing and watching is refused rather
	 * than followed out of the tree (a root the user named may be a
	 * link: follow says so). IN_EXCL_UNLINK: files already unlinked
	 * (temporaries held open) stop generating events. */
	const uint32_t mask = IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_DELETE |
	                      IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK |
	                      (follow ? 0 : IN_DONT_FOLLOW);
	*wd = inotify_add_watch(fd, dir, mask);
	if (*wd >= 0)
		return SW_OK;
	/* ENOSPC is max_user_watches; ENOMEM/EMFILE are other resource
	 * limits. All mean "this folder is not watched, but exists". */
	if (errno == ENOSPC || errno == ENOMEM || errno == EMFILE)
		return SW_ERR_LIMIT;
	return SW_ERR_IO; /* gone, not a directory, a link, or unreadable */
}

void sw_plat_inotify_rm(int fd, int wd)
{
	/* EINVAL when the kernel already dropped it (deleted folder): fine. */
	(void)inotify_rm_watch(fd, wd);
}

/* Event bits in the order a caller should see them when one record
 * carries several (it rarely does). */
static const struct {
	uint32_t bit;
	sw_inotify_kind kind;
} kinds[] = {
	{ IN_Q_OVERFLOW, SW_INOTIFY_OVERFLOW },     { IN_CREATE, SW_INOTIFY_CREATE },
	{ IN_MOVED_FROM, SW_INOTIFY_MOVED_FROM },   { IN_MOVED_TO, SW_INOTIFY_MOVED_TO },
	{ IN_MODIFY, SW_INOTIFY_MODIFY },           { IN_ATTRIB, SW_INOTIFY_ATTRIB },
	{ IN_CLOSE_WRITE, SW_INOTIFY_CLOSE_WRITE }, { IN_DELETE, SW_INOTIFY_DELETE },
	{ IN_DELETE_SELF, SW_INOTIFY_DELETE_SELF }, { IN_MOVE_SELF, SW_INOTIFY_MOVE_SELF },
	{ IN_UNMOUNT, SW_INOTIFY_UNMOUNT },         { IN_IGNORED, SW_INOTIFY_IGNORED },
};

sw_err sw_plat_inotify_read(int fd, sw_inotify_fn fn, void *ud, size_t *nevents)
{
	/* Aligned for struct inotify_event; 64 KiB holds ~2,000 typical
	 * records, so a burst drains in few system calls. */
	union {
		struct inotify_event ev;
		char b[64 * 1024];
	} buf;
	*nevents = 0;
	ssize_t len;
	do
		len = read(fd, buf.b, sizeof(buf.b));
	while (len < 0 && errno == EINTR);
	if (len < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? SW_OK : SW_ERR_IO;
	for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= len;) {
		const struct inotify_event *e = (const struct inotify_event *)(buf.b + off);
		size_t rec = sizeof(*e) + e->len;
		if ((ssize_t)rec > len - off)
			return SW_ERR_TRUNCATED; /* the kernel never splits a record */
		/* name is NUL-padded to len; "" when the event is about the
		 * watched folder itself. */
		const char *name = e->len ? e->name : "";
		if (e->len && memchr(e->name, 0, e->len) == NULL)
			return SW_ERR_TRUNCATED;
		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
			if (!(e->mask & kinds[i].bit))
				continue;
			sw_inotify_ev ev = { .wd = e->wd,
				             .kind = kinds[i].kind,
				             .is_dir = (e->mask & IN_ISDIR) != 0,
				             .name = name,
				             .cookie = e->cookie };
			fn(ud, &ev);
			(*nevents)++;
		}
		off += (ssize_t)rec;
	}
	return SW_OK;
}

sw_err sw_plat_list_subdirs(const char *dir, bool follow, char ***names, size_t *n)
{
	*names = NULL;
	*n = 0;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
	if (dfd < 0)
		return SW_ERR_IO;
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return SW_ERR_IO;
	}
	size_t cap = 0;
	sw_err ret = SW_OK;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		/* d_type saves a stat per entry; lstat semantics either way,
		 * so a link to a folder is never taken for one. */
		bool is_dir = e->d_type == DT_DIR;
		if (e->d_type == DT_UNKNOWN) {
			struct stat st;
			is_dir =
			        fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
		}
		if (!is_dir)
			continue;
		if (!sw_strv_push(names, n, &cap, e->d_name)) {
			ret = SW_ERR_NOMEM;
			break;
		}
	}
	closedir(d);
	if (ret != SW_OK)
		sw_strv_free(names, n);
	return ret;
}

#else /* no inotify: the watcher uses uv_fs_event's native recursion */

bool sw_plat_native_recursive_watch(void) { return true; }

sw_err sw_plat_inotify_open(int *fd)
{
	*fd = -1;
	return SW_ERR_UNSUPPORTED;
}
void sw_plat_inotify_close(int fd) { (void)fd; }
sw_err sw_plat_inotify_add(int fd, const char *dir, bool follow, int *wd)
{
	(void)fd;
	(void)dir;
	(void)follow;
	*wd = -1;
	return SW_ERR_UNSUPPORTED;
}
void sw_plat_inotify_rm(int fd, int wd)
{
	(void)fd;
	(void)wd;
}
sw_err sw_plat_inotify_read(int fd, sw_inotify_fn fn, void *ud, size_t *nevents)
{
	(void)fd;
	(void)fn;
	(void)ud;
	*nevents = 0;
	return SW_ERR_UNSUPPORTED;
}
sw_err sw_plat_list_subdirs(const char *dir, bool follow, char ***names, size_t *n)
{
	(void)dir;
	(void)follow;
	*names = NULL;
	*n = 0;
	return SW_ERR_UNSUPPORTED;
}

#endif
