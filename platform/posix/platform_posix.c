/* platform.h on POSIX (Linux first; macOS where noted). */
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "record.h"

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

int64_t sw_plat_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
