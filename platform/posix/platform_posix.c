/* platform.h on POSIX (Linux first; macOS where noted). */
#include "platform.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "record.h"
#include "strbuf.h"

sw_err sw_plat_device_id(char out[41])
{
	static const char *const paths[] = { "/etc/machine-id", "/var/lib/dbus/machine-id" };
	char id[128] = "";
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]) && !id[0]; i++) {
		FILE *f = fopen(paths[i], "r");
		if (!f)
			continue;
		if (!fgets(id, sizeof(id), f))
			id[0] = 0;
		fclose(f);
		id[strcspn(id, "\r\n")] = 0;
	}
	if (!id[0] && gethostname(id, sizeof(id) - 1) != 0)
		return SW_ERR_IO;
	/* Hash it: the machine id itself should not leave the device. */
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	char in[160];
	int len = snprintf(in, sizeof(in), "signwatch-device:%s", id);
	if (!EVP_Digest(in, (size_t)len, d, &dl, EVP_sha1(), NULL) || dl != 20)
		return SW_ERR_CRYPTO;
	static const char h[] = "0123456789abcdef";
	for (unsigned i = 0; i < 20; i++) {
		out[2 * i] = h[d[i] >> 4];
		out[2 * i + 1] = h[d[i] & 15];
	}
	out[40] = 0;
	return SW_OK;
}

sw_err sw_plat_device_name(char *out, size_t n)
{
	char host[256] = "";
	if (gethostname(host, sizeof(host) - 1) != 0)
		return SW_ERR_IO;
	const char *name = host;
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_flags = AI_CANONNAME;
	if (!strchr(host, '.') && getaddrinfo(host, NULL, &hints, &res) == 0 && res && res->ai_canonname)
		name = res->ai_canonname;
	snprintf(out, n, "%s", name);
	if (res)
		freeaddrinfo(res);
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return SW_OK;
}

static int64_t real_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sw_plat_now_ms(void)
{
	/* Read once: the override is part of the process's configuration. */
	static int inited;
	static int64_t offset;
	if (!inited) {
		const char *t = getenv("SIGNWATCH_TEST_NOW");
		int64_t at;
		if (t && *t && sw_time_parse(t, &at) == 0)
			offset = at - real_now_ms();
		inited = 1;
	}
	return real_now_ms() + offset;
}

sw_err sw_plat_mkdirs(const char *dir)
{
	char p[PATH_MAX];
	if ((size_t)snprintf(p, sizeof(p), "%s", dir) >= sizeof(p))
		return SW_ERR_USAGE;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			return SW_ERR_IO;
		*s = '/';
	}
	if (mkdir(p, 0700) != 0 && errno != EEXIST)
		return SW_ERR_IO;
	return SW_OK;
}

char *sw_plat_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

struct sw_file {
	int fd;
	uint64_t size;
	bool regular;
};

static sw_err file_read_at(void *ctx, uint64_t off, void *buf, size_t len)
{
	sw_file *f = ctx;
	uint8_t *p = buf;
	while (len) {
		ssize_t r = pread(f->fd, p, len, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return SW_ERR_IO;
		}
		if (r == 0)
			return SW_ERR_TRUNCATED; /* shrank under us */
		p += r;
		off += (uint64_t)r;
		len -= (size_t)r;
	}
	return SW_OK;
}

sw_err sw_plat_file_open(const char *path, sw_file **out, char *why, size_t n)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(why, n, "%s",
		         errno == ELOOP ? "is a symbolic link (not followed)" : strerror(errno));
		return SW_ERR_IO;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		snprintf(why, n, "%s", strerror(errno));
		close(fd);
		return SW_ERR_IO;
	}
	sw_file *f = calloc(1, sizeof(*f));
	if (!f) {
		close(fd);
		return SW_ERR_NOMEM;
	}
	f->fd = fd;
	f->regular = S_ISREG(st.st_mode);
	f->size = f->regular ? (uint64_t)st.st_size : 0;
#ifdef POSIX_FADV_SEQUENTIAL
	if (f->regular)
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
	*out = f;
	return SW_OK;
}

sw_src sw_plat_file_source(sw_file *f)
{
	sw_src s = { file_read_at, f, f->size };
	return s;
}

bool sw_plat_file_is_regular(const sw_file *f) { return f->regular; }

void sw_plat_file_close(sw_file *f)
{
	if (!f)
		return;
	close(f->fd);
	free(f);
}

void sw_plat_split_path(const char *path, char **folder, char **name)
{
	char abs[PATH_MAX];
	const char *p = path;
	/* Make the folder absolute without resolving links in the name. */
	if (path[0] != '/') {
		char cwd[PATH_MAX];
		if (getcwd(cwd, sizeof(cwd)) &&
		    (size_t)snprintf(abs, sizeof(abs), "%s/%s", cwd, path) < sizeof(abs))
			p = abs;
	}
	const char *slash = strrchr(p, '/');
	if (!slash) {
		*folder = sw_utf8_sanitize(".", 1);
		*name = sw_utf8_sanitize(p, strlen(p));
		return;
	}
	size_t flen = (size_t)(slash - p);
	*folder = sw_utf8_sanitize(p, flen ? flen : 1);
	*name = sw_utf8_sanitize(slash + 1, strlen(slash + 1));
}

bool sw_plat_isatty(int fd) { return isatty(fd) == 1; }

bool sw_plat_file_identity(const sw_file *f, sw_file_id *id)
{
	struct stat st;
	memset(id, 0, sizeof(*id));
	if (fstat(f->fd, &st) != 0)
		return false;
	id->dev = (uint64_t)st.st_dev;
	id->ino = (uint64_t)st.st_ino;
	id->size = (uint64_t)st.st_size;
#ifdef __APPLE__
	id->mtime_ns = (int64_t)st.st_mtimespec.tv_sec * 1000000000 + st.st_mtimespec.tv_nsec;
	id->ctime_ns = (int64_t)st.st_ctimespec.tv_sec * 1000000000 + st.st_ctimespec.tv_nsec;
#else
	id->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	id->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
#endif
	return true;
}

static void stat_to_id(const struct stat *st, sw_file_id *id)
{
	id->dev = (uint64_t)st->st_dev;
	id->ino = (uint64_t)st->st_ino;
	id->size = (uint64_t)st->st_size;
#ifdef __APPLE__
	id->mtime_ns = (int64_t)st->st_mtimespec.tv_sec * 1000000000 + st->st_mtimespec.tv_nsec;
	id->ctime_ns = (int64_t)st->st_ctimespec.tv_sec * 1000000000 + st->st_ctimespec.tv_nsec;
#else
	id->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	id->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
#endif
}

typedef struct walker {
	bool cross_fs;
	dev_t dev;
	sw_walk_visit_fn visit;
	sw_walk_error_fn on_error;
	void *ud;
	char path[PATH_MAX];
} walker;

/* dirfd is open on w->path; it is closed here. Opening each child relative
 * to its parent's descriptor with O_NOFOLLOW means a folder swapped for a
 * link mid-walk cannot lead us out of the tree. */
static int walk_dir(walker *w, int dirfd, int depth)
{
	DIR *d = fdopendir(dirfd);
	if (!d) {
		close(dirfd);
		return w->on_error ? w->on_error(w->ud, w->path, strerror(errno)) : 0;
	}
	size_t base = strlen(w->path);
	int stop = 0;
	struct dirent *e;
	while (!stop && (errno = 0, e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if ((size_t)snprintf(w->path + base, sizeof(w->path) - base, "%s%s",
		                     base && w->path[base - 1] == '/' ? "" : "/",
		                     e->d_name) >= sizeof(w->path) - base) {
			w->path[base] = 0;
			if (w->on_error)
				stop = w->on_error(w->ud, w->path, "path too long");
			continue;
		}
		struct stat st;
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno != ENOENT && w->on_error) /* vanished: nothing to scan */
				stop = w->on_error(w->ud, w->path, strerror(errno));
		} else if (S_ISREG(st.st_mode)) {
			sw_file_id id;
			stat_to_id(&st, &id);
			stop = w->visit(w->ud, w->path, &id);
		} else if (S_ISDIR(st.st_mode) && (w->cross_fs || st.st_dev == w->dev)) {
			if (depth + 1 > SW_WALK_MAX_DEPTH) {
				if (w->on_error)
					stop = w->on_error(w->ud, w->path, "too deep (not scanned)");
			} else {
				int fd = openat(dirfd, e->d_name,
				                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (fd < 0) {
					if (errno != ENOENT && w->on_error)
						stop = w->on_error(w->ud, w->path, strerror(errno));
				} else {
					stop = walk_dir(w, fd, depth + 1);
				}
			}
		}
		w->path[base] = 0;
	}
	if (!e && errno && !stop && w->on_error)
		stop = w->on_error(w->ud, w->path, strerror(errno));
	closedir(d);
	return stop;
}

sw_err sw_plat_walk(const char *root, bool cross_fs, sw_walk_visit_fn visit, sw_walk_error_fn on_error,
                    void *ud)
{
	walker *w = calloc(1, sizeof(*w));
	if (!w)
		return SW_ERR_NOMEM;
	w->cross_fs = cross_fs;
	w->visit = visit;
	w->on_error = on_error;
	w->ud = ud;
	snprintf(w->path, sizeof(w->path), "%s", root);
	struct stat st;
	sw_err ret = SW_OK;
	/* The root itself may be a link the user named on purpose: follow it. */
	if (stat(root, &st) != 0) {
		if (on_error)
			on_error(ud, root, strerror(errno));
		ret = SW_ERR_IO;
	} else if (S_ISREG(st.st_mode)) {
		sw_file_id id;
		stat_to_id(&st, &id);
		visit(ud, root, &id);
	} else if (S_ISDIR(st.st_mode)) {
		w->dev = st.st_dev;
		int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			if (on_error)
				on_error(ud, root, strerror(errno));
			ret = SW_ERR_IO;
		} else {
			walk_dir(w, fd, 0);
		}
	}
	free(w);
	return ret;
}

int sw_plat_is_dir(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	return S_ISDIR(st.st_mode) ? 1 : 0;
}

sw_err sw_plat_list_dir(const char *dir, char ***names, size_t *n)
{
	*names = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return SW_ERR_IO;
	size_t cap = 0;
	struct dirent *e;
	sw_err ret = SW_OK;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
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

const char *sw_plat_default_store(void) { return "/var/lib/signwatch/signwatch.db"; }
const char *sw_plat_default_config(void) { return "/etc/signwatch/signwatch.yaml"; }
const char *sw_plat_default_rules(void) { return "/usr/share/signwatch/rules"; }

bool sw_plat_windows_paths(void) { return false; }

bool sw_plat_dir_readable(const char *path) { return access(path, R_OK | X_OK) == 0; }

int sw_plat_file_mode(const char *path, unsigned *mode)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return -1;
	*mode = (unsigned)(st.st_mode & 07777);
	return 0;
}

const char *const *sw_plat_default_roots(size_t *n)
{
	static const char *const roots[] = { "/home", "/tmp", "/opt" };
	*n = sizeof(roots) / sizeof(roots[0]);
	return roots;
}

const char *sw_plat_default_records(void) { return "/var/log/signwatch/records.jsonl"; }

FILE *sw_plat_fopen_private(const char *path, const char *mode)
{
	/* Create with 0600 first so the file is never briefly world-readable. */
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return NULL;
	FILE *f = fdopen(fd, mode);
	if (!f)
		close(fd);
	return f;
}

void sw_plat_background_priority(void)
{
	/* Nice 10 for CPU; for I/O the best-effort class at its lowest level
	 * (ioprio_set has no libc wrapper). */
	errno = 0;
	(void)!nice(10);
#if defined(__linux__) && defined(SYS_ioprio_set)
	(void)syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, (2 << 13) | 7 /* BE, level 7 */);
#endif
}

void sw_plat_notify(const char *state, const char *status)
{
	/* The sd_notify protocol: one datagram to $NOTIFY_SOCKET. */
	const char *sock = getenv("NOTIFY_SOCKET");
	if (!sock || !*sock || (sock[0] != '/' && sock[0] != '@'))
		return;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	size_t len = strlen(sock);
	if (len < sizeof(sa.sun_path)) {
		memcpy(sa.sun_path, sock, len);
		if (sa.sun_path[0] == '@')
			sa.sun_path[0] = 0; /* abstract namespace */
		char msg[512];
		int m = snprintf(msg, sizeof(msg), "%s%s%s", state, status ? "\nSTATUS=" : "",
		                 status ? status : "");
		(void)sendto(fd, msg, (size_t)m, MSG_NOSIGNAL, (struct sockaddr *)&sa,
		             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	}
	close(fd);
}

int64_t sw_plat_cpu_us(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
	       ru.ru_stime.tv_usec;
}

sw_err sw_plat_stat_nofollow(const char *path, sw_file_id *id)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return SW_ERR_IO;
	if (!S_ISREG(st.st_mode))
		return SW_ERR_UNSUPPORTED;
	stat_to_id(&st, id);
	return SW_OK;
}

/* ---- service life cycle (issue 6): systemd runs the daemon here, so only
 * running in the foreground and the system log are meaningful. */
#include <syslog.h>

int sw_plat_service_run(int (*main_fn)(void *), void *ud, void (*ctl_fn)(void *, sw_service_ctl),
                        void *ctl_ud)
{
	(void)ctl_fn; /* SIGTERM and SIGHUP reach the agent's own signal handlers */
	(void)ctl_ud;
	return main_fn(ud);
}

bool sw_plat_service_active(void) { return false; }

static sw_err no_service(char *why, size_t n)
{
	snprintf(why, n, "%s",
	         "not a Windows service here: the systemd unit signwatch.service is used instead "
	         "(systemctl enable --now signwatch)");
	return SW_ERR_UNSUPPORTED;
}

sw_err sw_plat_service_install(const sw_service_opts *o, char *why, size_t n)
{
	(void)o;
	return no_service(why, n);
}
sw_err sw_plat_service_set_recovery(char *why, size_t n) { return no_service(why, n); }
sw_err sw_plat_service_uninstall(unsigned timeout_ms, char *why, size_t n)
{
	(void)timeout_ms;
	return no_service(why, n);
}
sw_err sw_plat_service_start(unsigned timeout_ms, char *why, size_t n)
{
	(void)timeout_ms;
	return no_service(why, n);
}
sw_err sw_plat_service_stop(unsigned timeout_ms, char *why, size_t n)
{
	(void)timeout_ms;
	return no_service(why, n);
}
sw_err sw_plat_service_reload(char *why, size_t n) { return no_service(why, n); }
sw_err sw_plat_service_state(char *state, size_t ns, char *why, size_t n)
{
	if (ns)
		state[0] = 0;
	return no_service(why, n);
}

void sw_plat_log_event(int level, const char *msg)
{
	static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
	syslog(LOG_DAEMON | prio[level < 0 ? 0 : level > 3 ? 3 : level], "%s", msg);
}

/* ---- code-signing trust and security catalogs: Windows only ------------
 * Linux and macOS have no code-signing root store (ca_file is used) and no
 * catalog database. */
sw_err sw_plat_system_trust(sw_trust **out, char *why, size_t n)
{
	*out = NULL;
	snprintf(why, n, "this OS has no code-signing root store; set ca_file");
	return SW_ERR_UNSUPPORTED;
}

sw_plat_catdb *sw_plat_catdb_open(void) { return NULL; }
void sw_plat_catdb_close(sw_plat_catdb *db) { (void)db; }

sw_err sw_plat_catalogs_for_hash(sw_plat_catdb *db, const uint8_t *digest, size_t len, size_t max,
                                 char ***paths, size_t *n)
{
	(void)db;
	*paths = NULL;
	*n = 0;
	return SW_ERR_UNSUPPORTED;
}

bool sw_plat_has_catalogs(void) { return false; }
