/*
 * walferry_archive: a PostgreSQL archive module (archive_library =
 * 'walferry_archive') that hands each WAL file to the local `walferry agent`
 * over its unix socket, without fork/exec, and reports success only when the
 * agent answers that the file is durable on the receiver.
 *
 *   archive_library = 'walferry_archive'
 *   walferry_archive.socket = '/run/walferry-agent/agent.sock'
 *   walferry_archive.timeout = 600      # seconds to wait for one answer
 *
 * The protocol is the agent's (docs/agent.md): "PUSH <name> <absolute path>\n"
 * answered by "OK ...\n" or "ERR <code> <message>\n".
 *
 * Nothing here raises an ERROR: an ERROR in an archive callback restarts the
 * archiver on 15/16 (contrib/basic_archive catches them for that reason), so
 * every failure is one WARNING line and `false`, and PostgreSQL retries. Only
 * stack buffers and plain syscalls are used on the archiving path.
 *
 * Version guards: 15 has `void _PG_archive_module_init(ArchiveModuleCallbacks *)`
 * and stateless callbacks (postmaster/pgarch.h); 16+ has
 * `const ArchiveModuleCallbacks *_PG_archive_module_init(void)` and callbacks
 * taking ArchiveModuleState * (archive/archive_module.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* struct ucred, SO_PEERCRED */
#endif
#include "postgres.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/pmsignal.h"
#include "utils/guc.h"

#if PG_VERSION_NUM >= 160000
#include "archive/archive_module.h"
#else
#include "postmaster/pgarch.h"
#endif

PG_MODULE_MAGIC;

#define WF_MAX_LINE 8192

static char *wf_socket = NULL;
static int	wf_timeout = 600;

void		_PG_init(void);

void
_PG_init(void)
{
	DefineCustomStringVariable("walferry_archive.socket",
							   "Unix socket of the walferry agent.",
							   NULL, &wf_socket, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("walferry_archive.timeout",
							"Seconds to wait for the agent's answer for one file.",
							NULL, &wf_timeout, 600, 1, 86400, PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	MarkGUCPrefixReserved("walferry_archive");
}

static bool
wf_configured(void)
{
	return wf_socket != NULL && wf_socket[0] != '\0';
}

/* Writes all of buf; false on error (errno set). */
static bool
wf_send_all(int fd, const char *buf, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return false;
		}
		buf += n;
		len -= (size_t) n;
	}
	return true;
}

/*
 * Asks the agent about one file. Returns true on "OK"; otherwise logs one
 * WARNING line and returns false.
 */
static bool
wf_archive(const char *file, const char *path)
{
	struct sockaddr_un addr;
	struct ucred cred;
	socklen_t	credlen = sizeof(cred);
	char		req[WF_MAX_LINE];
	char		ans[WF_MAX_LINE];
	size_t		got = 0;
	int			fd;
	int			n;
	time_t		deadline;

	if (!wf_configured())
	{
		ereport(WARNING, (errmsg("walferry_archive: walferry_archive.socket is not set")));
		return false;
	}
	if (path[0] == '/')
		n = snprintf(req, sizeof(req), "PUSH %s %s\n", file, path);
	else
		n = snprintf(req, sizeof(req), "PUSH %s %s/%s\n", file, DataDir, path);
	if (n < 0 || (size_t) n >= sizeof(req) || strchr(file, ' ') || strchr(file, '/'))
	{
		ereport(WARNING, (errmsg("walferry_archive: cannot archive \"%s\": path too long or bad name", file)));
		return false;
	}
	if (strlen(wf_socket) >= sizeof(addr.sun_path))
	{
		ereport(WARNING, (errmsg("walferry_archive: socket path \"%s\" too long", wf_socket)));
		return false;
	}
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	strcpy(addr.sun_path, wf_socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
	{
		ereport(WARNING, (errmsg("walferry_archive: socket: %m")));
		return false;
	}
	if (connect(fd, (struct sockaddr *) &addr, sizeof(addr)) != 0)
	{
		int			save = errno;

		close(fd);
		errno = save;
		ereport(WARNING,
				(errmsg("walferry_archive: cannot reach the walferry agent at \"%s\": %m (is `walferry agent` running?)",
						wf_socket)));
		return false;
	}
	/* An agent of another user must never vouch for our WAL. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) != 0 || cred.uid != geteuid())
	{
		close(fd);
		ereport(WARNING, (errmsg("walferry_archive: the process at \"%s\" does not run as our user; not trusted",
								 wf_socket)));
		return false;
	}
	if (!wf_send_all(fd, req, (size_t) n))
	{
		int			save = errno;

		close(fd);
		errno = save;
		ereport(WARNING, (errmsg("walferry_archive: writing to the agent at \"%s\": %m", wf_socket)));
		return false;
	}
	deadline = time(NULL) + wf_timeout;
	for (;;)
	{
		struct pollfd p;
		int			r;
		ssize_t		k;
		char	   *nl;

		if (got > 0 && (nl = memchr(ans, '\n', got)) != NULL)
		{
			*nl = '\0';
			break;
		}
		if (got >= sizeof(ans) - 1)
		{
			close(fd);
			ereport(WARNING, (errmsg("walferry_archive: the agent's answer is too long")));
			return false;
		}
		if (time(NULL) >= deadline)
		{
			close(fd);
			ereport(WARNING, (errmsg("walferry_archive: no answer from the agent for \"%s\" within %d s", file,
									 wf_timeout)));
			return false;
		}
		if (!PostmasterIsAlive())
		{
			close(fd);
			ereport(WARNING, (errmsg("walferry_archive: postmaster died while archiving \"%s\"", file)));
			return false;
		}
		p.fd = fd;
		p.events = POLLIN;
		p.revents = 0;
		r = poll(&p, 1, 1000);
		if (r < 0 && errno != EINTR)
		{
			close(fd);
			ereport(WARNING, (errmsg("walferry_archive: waiting for the agent: %m")));
			return false;
		}
		if (r <= 0)
			continue;
		k = recv(fd, ans + got, sizeof(ans) - 1 - got, 0);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k <= 0)
		{
			close(fd);
			ereport(WARNING, (errmsg("walferry_archive: the agent closed the connection before answering for \"%s\"",
									 file)));
			return false;
		}
		got += (size_t) k;
	}
	close(fd);
	if (strncmp(ans, "OK ", 3) == 0)
		return true;
	if (strncmp(ans, "ERR ", 4) == 0)
	{
		const char *msg = strchr(ans + 4, ' ');

		ereport(WARNING, (errmsg("walferry_archive: archiving \"%s\" failed: %s", file, msg ? msg + 1 : ans + 4)));
		return false;
	}
	ereport(WARNING, (errmsg("walferry_archive: malformed answer from the agent for \"%s\"", file)));
	return false;
}

#if PG_VERSION_NUM >= 160000

static bool
wf_check_configured_cb(ArchiveModuleState *state)
{
	(void) state;
	return wf_configured();
}

static bool
wf_archive_file_cb(ArchiveModuleState *state, const char *file, const char *path)
{
	(void) state;
	return wf_archive(file, path);
}

static const ArchiveModuleCallbacks wf_callbacks = {
	.startup_cb = NULL,
	.check_configured_cb = wf_check_configured_cb,
	.archive_file_cb = wf_archive_file_cb,
	.shutdown_cb = NULL
};

const ArchiveModuleCallbacks *
_PG_archive_module_init(void)
{
	return &wf_callbacks;
}

#else							/* PostgreSQL 15 */

static bool
wf_check_configured_cb(void)
{
	return wf_configured();
}

static bool
wf_archive_file_cb(const char *file, const char *path)
{
	return wf_archive(file, path);
}

void		_PG_archive_module_init(ArchiveModuleCallbacks *cb);

void
_PG_archive_module_init(ArchiveModuleCallbacks *cb)
{
	cb->check_configured_cb = wf_check_configured_cb;
	cb->archive_file_cb = wf_archive_file_cb;
	cb->shutdown_cb = NULL;
}

#endif
