/* platform.h on Windows: the service life cycle (issue 6).
 *
 * `signwatch run` calls sw_plat_service_run. Started by the service control
 * manager, StartServiceCtrlDispatcherW connects and calls service_main on a
 * thread of its own, which runs the agent; started from a console it fails
 * with ERROR_FAILED_SERVICE_CONTROLLER_CONNECT and the agent runs in the
 * foreground (Ctrl+C stops it through libuv's SIGINT).
 *
 * The control handler (STOP, SHUTDOWN, PRESHUTDOWN) only records the
 * request, reports STOP_PENDING and calls the agent's control function
 * (SW_SERVICE_STOP), which does a uv_async_send; the loop then stops as it
 * does on SIGTERM. PARAMCHANGE (`signwatch service reload`) is forwarded
 * the same way as SW_SERVICE_RELOAD: the loop reloads as on SIGHUP.
 * SERVICE_START_PENDING and STOP_PENDING are kept alive with checkpoints by
 * a small timer thread until the agent says READY=1 (sw_plat_notify, which
 * reports RUNNING) or returns (STOPPED, with its exit status as the
 * service-specific exit code so the recovery actions see a failure).
 *
 * Messages: the service has no console, so the agent's log lines (stderr)
 * go through a pipe to a reader thread that writes them to the Application
 * event log (source "signwatch"): warn/error lines as warnings/errors, info
 * lines as information, debug lines dropped. The event source's message
 * file is signwatch.exe itself: its message table (messages.mc) has one
 * "%1" message per severity, ids 1, 2 and 3.
 *
 * The data folder (%ProgramData%\signwatch) gets a protected DACL (SYSTEM
 * and Administrators only) at every start, at install and from the MSI's
 * set-recovery action (platform_windows.c: sw_win_protect_data_dir). */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0602
#endif
#include <windows.h>

#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "messages.h" /* windmc's ids (build dir): SW_MSG_INFO, SW_MSG_WARNING, SW_MSG_ERROR */
#include "platform.h"
#include "win_internal.h"

#define SVC_NAME L"signwatch"
#define SVC_DISPLAY L"signwatch endpoint agent"
#define SVC_DESCRIPTION                                                                                      \
	L"Watches the file system for new executables, reads their Authenticode signatures, "                \
	L"evaluates Sentinel hunting rules locally and forwards records and summaries."
#define EVENTLOG_KEY L"SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\signwatch"

#define START_WAIT_HINT_MS 30000
#define STOP_WAIT_HINT_MS 30000
#define PRESHUTDOWN_TIMEOUT_MS 30000
#define RESTART_DELAY_MS 30000
#define FAILURE_RESET_S 86400

/* ------------------------------------------------------------ strings */

static void set_why(char *why, size_t n, const char *what, DWORD err)
{
	char text[512];
	sw_win_strerror(err, text, sizeof(text));
	snprintf(why, n, "%s: %s (error %lu)", what, text, (unsigned long)err);
}

/* ------------------------------------------------------------ event log */

static HANDLE event_source(void)
{
	static HANDLE h;
	static LONG once;
	if (InterlockedCompareExchange(&once, 1, 0) == 0)
		h = RegisterEventSourceW(NULL, SVC_NAME);
	return h;
}

void sw_plat_log_event(int level, const char *msg)
{
	HANDLE h = event_source();
	if (!h || !msg)
		return;
	WORD type = level >= 3   ? EVENTLOG_ERROR_TYPE
	            : level == 2 ? EVENTLOG_WARNING_TYPE
	                         : EVENTLOG_INFORMATION_TYPE;
	/* The message table's ids (severity bits included: the table is
	 * searched by the full id; Event Viewer shows 1, 2, 3). */
	DWORD id = level >= 3 ? SW_MSG_ERROR : level == 2 ? SW_MSG_WARNING : SW_MSG_INFO;
	wchar_t *w = sw_win_utf8_to_wide(msg);
	if (!w)
		return;
	LPCWSTR strs[1] = { w };
	(void)ReportEventW(h, type, 0, id, NULL, 1, 0, strs, NULL);
	free(w);
}

/* ------------------------------------------------------------ the service */

static struct {
	int (*main_fn)(void *);
	void *ud;
	void (*ctl_fn)(void *, sw_service_ctl);
	void *ctl_ud;
	int status;
	bool active;

	CRITICAL_SECTION lock; /* guards st and stop_requested */
	SERVICE_STATUS_HANDLE h;
	SERVICE_STATUS st;
	bool stop_requested;
	HANDLE tick_stop, tick_thread;

	HANDLE log_read, log_thread; /* stderr → event log */
	int saved_stderr;
} svc;

/* With svc.lock held. */
static void report_locked(DWORD state, DWORD exit_code, DWORD specific, DWORD hint)
{
	svc.st.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
	svc.st.dwCurrentState = state;
	svc.st.dwWin32ExitCode = exit_code;
	svc.st.dwServiceSpecificExitCode = specific;
	svc.st.dwWaitHint = hint;
	svc.st.dwControlsAccepted = state == SERVICE_RUNNING
	                                    ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN |
	                                              SERVICE_ACCEPT_PRESHUTDOWN | SERVICE_ACCEPT_PARAMCHANGE
	                            : state == SERVICE_START_PENDING ? SERVICE_ACCEPT_STOP
	                                                             : 0;
	svc.st.dwCheckPoint =
	        (state == SERVICE_RUNNING || state == SERVICE_STOPPED) ? 0 : svc.st.dwCheckPoint + 1;
	if (svc.h)
		(void)SetServiceStatus(svc.h, &svc.st);
}

static void report(DWORD state, DWORD exit_code, DWORD specific, DWORD hint)
{
	EnterCriticalSection(&svc.lock);
	report_locked(state, exit_code, specific, hint);
	LeaveCriticalSection(&svc.lock);
}

/* While START_PENDING or STOP_PENDING: a checkpoint every second, so the
 * SCM sees progress (loading rules, opening the store, draining scans). */
static DWORD WINAPI tick_main(LPVOID arg)
{
	(void)arg;
	while (WaitForSingleObject(svc.tick_stop, 1000) == WAIT_TIMEOUT) {
		EnterCriticalSection(&svc.lock);
		DWORD s = svc.st.dwCurrentState;
		if (s == SERVICE_START_PENDING || s == SERVICE_STOP_PENDING)
			report_locked(s, NO_ERROR, 0,
			              s == SERVICE_START_PENDING ? START_WAIT_HINT_MS : STOP_WAIT_HINT_MS);
		LeaveCriticalSection(&svc.lock);
	}
	return 0;
}

/* Called by sw_plat_notify (platform_windows.c) with systemd's words. */
void sw_win_service_notify(const char *state)
{
	if (!svc.active || !state)
		return;
	EnterCriticalSection(&svc.lock);
	if (!strncmp(state, "READY=1", 7) && svc.st.dwCurrentState == SERVICE_START_PENDING &&
	    !svc.stop_requested)
		report_locked(SERVICE_RUNNING, NO_ERROR, 0, 0);
	else if (!strncmp(state, "STOPPING=1", 10) && svc.st.dwCurrentState != SERVICE_STOPPED &&
	         svc.st.dwCurrentState != SERVICE_STOP_PENDING)
		report_locked(SERVICE_STOP_PENDING, NO_ERROR, 0, STOP_WAIT_HINT_MS);
	LeaveCriticalSection(&svc.lock);
}

bool sw_plat_service_active(void) { return svc.active; }

static DWORD WINAPI ctrl_handler(DWORD ctrl, DWORD type, LPVOID data, LPVOID ctx)
{
	(void)type;
	(void)data;
	(void)ctx;
	switch (ctrl) {
	case SERVICE_CONTROL_STOP:
	case SERVICE_CONTROL_SHUTDOWN:
	case SERVICE_CONTROL_PRESHUTDOWN: {
		bool first;
		EnterCriticalSection(&svc.lock);
		first = !svc.stop_requested;
		svc.stop_requested = true;
		if (svc.st.dwCurrentState != SERVICE_STOPPED)
			report_locked(SERVICE_STOP_PENDING, NO_ERROR, 0, STOP_WAIT_HINT_MS);
		LeaveCriticalSection(&svc.lock);
		if (first && svc.ctl_fn)
			svc.ctl_fn(svc.ctl_ud, SW_SERVICE_STOP); /* records the request, uv_async_send */
		return NO_ERROR;
	}
	case SERVICE_CONTROL_PARAMCHANGE: {
		/* `signwatch service reload`: the configuration, the ROOT and
		 * Disallowed stores and the rules are read again, as on SIGHUP. */
		EnterCriticalSection(&svc.lock);
		bool stopping = svc.stop_requested;
		LeaveCriticalSection(&svc.lock);
		if (!stopping && svc.ctl_fn)
			svc.ctl_fn(svc.ctl_ud, SW_SERVICE_RELOAD); /* records it, uv_async_send */
		return NO_ERROR;
	}
	case SERVICE_CONTROL_INTERROGATE: return NO_ERROR;
	default: return ERROR_CALL_NOT_IMPLEMENTED;
	}
}

/* One log line to the event log, its level from sw_log's "signwatch[lvl]:"
 * tag; untagged lines (configuration errors at start) are errors. */
static void log_line(char *line)
{
	size_t l = strlen(line);
	while (l && (line[l - 1] == '\r' || line[l - 1] == '\n'))
		line[--l] = 0;
	if (!l)
		return;
	int level = 3;
	if (strstr(line, "signwatch[debug]:"))
		return;
	if (strstr(line, "signwatch[info]:"))
		level = 1;
	else if (strstr(line, "signwatch[warn]:"))
		level = 2;
	sw_plat_log_event(level, line);
}

static DWORD WINAPI log_main(LPVOID arg)
{
	(void)arg;
	char buf[8192];
	size_t have = 0;
	for (;;) {
		DWORD got = 0;
		if (have == sizeof(buf) - 1) { /* an over-long line: cut */
			buf[have] = 0;
			log_line(buf);
			have = 0;
		}
		if (!ReadFile(svc.log_read, buf + have, (DWORD)(sizeof(buf) - 1 - have), &got, NULL) || !got)
			break;
		have += got;
		size_t start = 0;
		for (size_t i = 0; i < have; i++) {
			if (buf[i] == '\n') {
				buf[i] = 0;
				log_line(buf + start);
				start = i + 1;
			}
		}
		memmove(buf, buf + start, have - start);
		have -= start;
	}
	if (have) {
		buf[have] = 0;
		log_line(buf);
	}
	return 0;
}

/* stderr (fd 2) into a pipe read by log_main. */
static void log_redirect_start(void)
{
	HANDLE r, w;
	svc.saved_stderr = -1;
	if (!CreatePipe(&r, &w, NULL, 65536))
		return;
	int fd = _open_osfhandle((intptr_t)w, _O_WRONLY | _O_BINARY);
	if (fd < 0) {
		CloseHandle(r);
		CloseHandle(w);
		return;
	}
	fflush(stderr);
	svc.saved_stderr = _dup(2);
	if (_dup2(fd, 2) != 0) {
		_close(fd);
		CloseHandle(r);
		return;
	}
	_close(fd);
	(void)SetStdHandle(STD_ERROR_HANDLE, (HANDLE)_get_osfhandle(2));
	svc.log_read = r;
	svc.log_thread = CreateThread(NULL, 0, log_main, NULL, 0, NULL);
}

/* Close the write side (fd 2 onto NUL) and let the reader drain. */
static void log_redirect_end(void)
{
	if (!svc.log_read)
		return;
	fflush(stderr);
	int nul = _open("NUL", _O_WRONLY);
	if (nul >= 0) {
		_dup2(nul, 2);
		_close(nul);
	} else {
		_close(2);
	}
	if (svc.log_thread) {
		WaitForSingleObject(svc.log_thread, 5000);
		CloseHandle(svc.log_thread);
	}
	CloseHandle(svc.log_read);
	svc.log_read = svc.log_thread = NULL;
	if (svc.saved_stderr >= 0)
		_close(svc.saved_stderr);
}

static void WINAPI service_main(DWORD argc, LPWSTR *argv)
{
	(void)argc;
	(void)argv;
	svc.h = RegisterServiceCtrlHandlerExW(SVC_NAME, ctrl_handler, NULL);
	if (!svc.h) {
		char why[512];
		set_why(why, sizeof(why), "signwatch service: RegisterServiceCtrlHandlerExW", GetLastError());
		sw_plat_log_event(3, why);
		svc.status = 1;
		return;
	}
	svc.active = true;
	report(SERVICE_START_PENDING, NO_ERROR, 0, START_WAIT_HINT_MS);
	svc.tick_stop = CreateEventW(NULL, TRUE, FALSE, NULL);
	if (svc.tick_stop)
		svc.tick_thread = CreateThread(NULL, 0, tick_main, NULL, 0, NULL);
	log_redirect_start();
	{
		/* Before the agent creates its store and logs there; a failure is
		 * reported, not fatal (the files themselves are owner-only). */
		char why[512];
		if (sw_win_protect_data_dir(why, sizeof(why)) != SW_OK)
			sw_plat_log_event(2, why);
	}

	{
		char line[1200], msg[1400];
		sw_win_wide_to_utf8_buf(GetCommandLineW(), line, sizeof(line));
		snprintf(msg, sizeof(msg), "signwatch service starting (pid %lu): %s",
		         (unsigned long)GetCurrentProcessId(), line);
		sw_plat_log_event(1, msg);
	}

	svc.status = svc.main_fn(svc.ud);

	log_redirect_end();
	{
		char msg[256];
		if (svc.status == 0)
			snprintf(msg, sizeof(msg), "%s", "signwatch service stopped");
		else
			snprintf(msg, sizeof(msg),
			         "signwatch service stopped with status %d (%s); the messages before this "
			         "one say why",
			         svc.status,
			         svc.status == 2 ? "bad configuration or rules" : "run-time failure");
		sw_plat_log_event(svc.status ? 3 : 1, msg);
	}
	if (svc.tick_thread) {
		SetEvent(svc.tick_stop);
		WaitForSingleObject(svc.tick_thread, 5000);
		CloseHandle(svc.tick_thread);
		svc.tick_thread = NULL;
	}
	/* A non-zero status is a failure the recovery actions act on
	 * (FailureActionsOnNonCrashFailures is set at install). */
	if (svc.status)
		report(SERVICE_STOPPED, ERROR_SERVICE_SPECIFIC_ERROR, (DWORD)svc.status, 0);
	else
		report(SERVICE_STOPPED, NO_ERROR, 0, 0);
	/* Nothing after this: the SCM may end the process now. */
}

int sw_plat_service_run(int (*main_fn)(void *), void *ud, void (*ctl_fn)(void *, sw_service_ctl),
                        void *ctl_ud)
{
	svc.main_fn = main_fn;
	svc.ud = ud;
	svc.ctl_fn = ctl_fn;
	svc.ctl_ud = ctl_ud;
	InitializeCriticalSection(&svc.lock);
	/* A console (or any parent but the SCM) means the foreground: trying
	 * to connect costs nothing when stdin/stdout is a console or pipe, and
	 * the error tells the two cases apart. */
	static SERVICE_TABLE_ENTRYW table[] = { { (LPWSTR)SVC_NAME, service_main }, { NULL, NULL } };
	if (StartServiceCtrlDispatcherW(table))
		return svc.status;
	DWORD e = GetLastError();
	if (e != ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
		char why[512];
		set_why(why, sizeof(why), "signwatch: StartServiceCtrlDispatcherW", e);
		fprintf(stderr, "%s; running in the foreground\n", why);
	}
	return main_fn(ud);
}

/* ------------------------------------------------------------ management */

static SC_HANDLE open_scm(DWORD access, char *why, size_t n)
{
	SC_HANDLE scm = OpenSCManagerW(NULL, NULL, access);
	if (!scm)
		set_why(why, n,
		        GetLastError() == ERROR_ACCESS_DENIED
		                ? "opening the service manager (run as Administrator)"
		                : "opening the service manager",
		        GetLastError());
	return scm;
}

static SC_HANDLE open_service(DWORD access, char *why, size_t n)
{
	SC_HANDLE scm = open_scm(SC_MANAGER_CONNECT, why, n);
	if (!scm)
		return NULL;
	SC_HANDLE s = OpenServiceW(scm, SVC_NAME, access);
	if (!s)
		set_why(why, n,
		        GetLastError() == ERROR_SERVICE_DOES_NOT_EXIST
		                ? "the signwatch service is not installed (signwatch service install)"
		                : "opening the signwatch service",
		        GetLastError());
	CloseServiceHandle(scm);
	return s;
}

/* Description, recovery (restart after 30 s, three times, then nothing;
 * the count resets after a day; also when the agent exits with a non-zero
 * status, not only on a crash) and the pre-shutdown timeout. */
static sw_err apply_recovery(SC_HANDLE s, char *why, size_t n)
{
	SERVICE_DESCRIPTIONW d = { (LPWSTR)SVC_DESCRIPTION };
	if (!ChangeServiceConfig2W(s, SERVICE_CONFIG_DESCRIPTION, &d)) {
		set_why(why, n, "setting the service description", GetLastError());
		return SW_ERR_IO;
	}
	SC_ACTION acts[4] = {
		{ SC_ACTION_RESTART, RESTART_DELAY_MS },
		{ SC_ACTION_RESTART, RESTART_DELAY_MS },
		{ SC_ACTION_RESTART, RESTART_DELAY_MS },
		{ SC_ACTION_NONE, 0 }, /* the last action repeats: stop restarting after three */
	};
	SERVICE_FAILURE_ACTIONSW fa;
	memset(&fa, 0, sizeof(fa));
	fa.dwResetPeriod = FAILURE_RESET_S;
	fa.cActions = 4;
	fa.lpsaActions = acts;
	if (!ChangeServiceConfig2W(s, SERVICE_CONFIG_FAILURE_ACTIONS, &fa)) {
		set_why(why, n, "setting the recovery actions", GetLastError());
		return SW_ERR_IO;
	}
	/* These two are Vista's; a service manager that does not know the
	 * level (wine's: ERROR_INVALID_LEVEL) is told about it, not failed. */
	SERVICE_FAILURE_ACTIONS_FLAG flag = { TRUE };
	if (!ChangeServiceConfig2W(s, SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, &flag)) {
		if (GetLastError() != ERROR_INVALID_LEVEL) {
			set_why(why, n, "setting FailureActionsOnNonCrashFailures", GetLastError());
			return SW_ERR_IO;
		}
		fprintf(stderr, "signwatch service: this service manager does not support "
		                "FailureActionsOnNonCrashFailures (only crashes will restart the service)\n");
	}
	SERVICE_PRESHUTDOWN_INFO pre = { PRESHUTDOWN_TIMEOUT_MS };
	if (!ChangeServiceConfig2W(s, SERVICE_CONFIG_PRESHUTDOWN_INFO, &pre)) {
		if (GetLastError() != ERROR_INVALID_LEVEL) {
			set_why(why, n, "setting the pre-shutdown timeout", GetLastError());
			return SW_ERR_IO;
		}
		fprintf(stderr, "signwatch service: this service manager does not support the pre-shutdown "
		                "timeout (SHUTDOWN is handled all the same)\n");
	}
	return SW_OK;
}

/* The event source, so Event Viewer can show our messages: the message
 * table is in the service's binary. (The MSI writes the same two values
 * itself, component C.eventlog, and removes them at uninstall.) */
static sw_err register_event_source(const wchar_t *exe, char *why, size_t n)
{
	HKEY k;
	LSTATUS r =
	        RegCreateKeyExW(HKEY_LOCAL_MACHINE, EVENTLOG_KEY, 0, NULL, 0, KEY_SET_VALUE, NULL, &k, NULL);
	if (r != ERROR_SUCCESS) {
		set_why(why, n, "registering the event source", (DWORD)r);
		return SW_ERR_IO;
	}
	DWORD types = EVENTLOG_ERROR_TYPE | EVENTLOG_WARNING_TYPE | EVENTLOG_INFORMATION_TYPE;
	r = RegSetValueExW(k, L"EventMessageFile", 0, REG_EXPAND_SZ, (const BYTE *)exe,
	                   (DWORD)((wcslen(exe) + 1) * sizeof(wchar_t)));
	if (r == ERROR_SUCCESS)
		r = RegSetValueExW(k, L"TypesSupported", 0, REG_DWORD, (const BYTE *)&types, sizeof(types));
	RegCloseKey(k);
	if (r != ERROR_SUCCESS) {
		set_why(why, n, "registering the event source", (DWORD)r);
		return SW_ERR_IO;
	}
	return SW_OK;
}

sw_err sw_plat_service_set_recovery(char *why, size_t n)
{
	SC_HANDLE s = open_service(SERVICE_CHANGE_CONFIG | SERVICE_START | SERVICE_QUERY_CONFIG, why, n);
	if (!s)
		return SW_ERR_IO;
	sw_err e = apply_recovery(s, why, n);
	CloseServiceHandle(s);
	/* The MSI's custom action: after SwConfigure made the folder, before
	 * the service starts. Tried even when the recovery settings failed;
	 * a failure is in why (the command exits 1, the MSI fails) and in the
	 * event log. */
	char acl[512];
	if (sw_win_protect_data_dir(acl, sizeof acl) != SW_OK) {
		if (!e)
			snprintf(why, n, "%s", acl);
		else {
			size_t l = strlen(why);
			if (l < n)
				snprintf(why + l, n - l, "; %s", acl);
		}
		e = SW_ERR_IO;
	}
	if (e) {
		char msg[1200];
		snprintf(msg, sizeof msg, "signwatch service set-recovery: %s", why);
		sw_plat_log_event(3, msg);
	}
	return e;
}

/* An absolute wide path of a UTF-8 path, malloc'd. */
static wchar_t *full_path(const char *p)
{
	wchar_t *w = sw_win_utf8_to_wide(p);
	if (!w)
		return NULL;
	DWORD k = GetFullPathNameW(w, 0, NULL, NULL);
	wchar_t *f = k ? malloc((size_t)k * sizeof(wchar_t)) : NULL;
	if (f && !GetFullPathNameW(w, k, f, NULL)) {
		free(f);
		f = NULL;
	}
	free(w);
	return f;
}

sw_err sw_plat_service_install(const sw_service_opts *o, char *why, size_t n)
{
	wchar_t exe[32768];
	wchar_t *wcfg = full_path(o && o->config ? o->config : sw_plat_default_config());
	if (!wcfg) {
		snprintf(why, n, "%s", "the configuration path is not valid UTF-8");
		return SW_ERR_USAGE;
	}
	if (o && o->exe) {
		wchar_t *e = full_path(o->exe);
		if (!e) {
			free(wcfg);
			snprintf(why, n, "%s", "the binary path is not valid UTF-8");
			return SW_ERR_USAGE;
		}
		wcsncpy(exe, e, 32767);
		exe[32767] = 0;
		free(e);
	} else {
		DWORD k = GetModuleFileNameW(NULL, exe, 32768);
		if (!k || k >= 32768) {
			free(wcfg);
			set_why(why, n, "GetModuleFileNameW", GetLastError());
			return SW_ERR_IO;
		}
	}
	if (wcschr(exe, L'"') || wcschr(wcfg, L'"')) {
		free(wcfg);
		snprintf(why, n, "%s", "a path holds a double quote");
		return SW_ERR_USAGE;
	}
	size_t cl = wcslen(exe) + wcslen(wcfg) + 32;
	wchar_t *cmd = malloc(cl * sizeof(wchar_t));
	if (!cmd) {
		free(wcfg);
		return SW_ERR_NOMEM;
	}
	/* Quoted: "C:\Program Files\..." must not be read as C:\Program. */
	swprintf(cmd, cl, L"\"%ls\" run --config \"%ls\"", exe, wcfg);
	free(wcfg);

	SC_HANDLE scm = open_scm(SC_MANAGER_CONNECT | SC_MANAGER_CREATE_SERVICE, why, n);
	if (!scm) {
		free(cmd);
		return SW_ERR_IO;
	}
	sw_err ret = SW_OK;
	SC_HANDLE s = CreateServiceW(scm, SVC_NAME, SVC_DISPLAY, SERVICE_ALL_ACCESS,
	                             SERVICE_WIN32_OWN_PROCESS, SERVICE_AUTO_START, SERVICE_ERROR_NORMAL, cmd,
	                             NULL, NULL, NULL, NULL /* LocalSystem */, NULL);
	if (!s && GetLastError() == ERROR_SERVICE_EXISTS) {
		/* Re-installing: point the existing service at this binary and file. */
		s = OpenServiceW(scm, SVC_NAME, SERVICE_ALL_ACCESS);
		if (s && !ChangeServiceConfigW(s, SERVICE_WIN32_OWN_PROCESS, SERVICE_AUTO_START,
		                               SERVICE_ERROR_NORMAL, cmd, NULL, NULL, NULL, L"LocalSystem",
		                               L"", SVC_DISPLAY)) {
			set_why(why, n, "updating the existing signwatch service", GetLastError());
			ret = SW_ERR_IO;
		}
	}
	if (!s && ret == SW_OK) {
		set_why(why, n, "creating the signwatch service", GetLastError());
		ret = SW_ERR_IO;
	}
	if (s && ret == SW_OK)
		ret = apply_recovery(s, why, n);
	if (ret == SW_OK)
		ret = register_event_source(exe, why, n);
	if (ret == SW_OK)
		ret = sw_win_protect_data_dir(why, n);
	if (s)
		CloseServiceHandle(s);
	CloseServiceHandle(scm);
	free(cmd);
	return ret;
}

static const char *state_name(DWORD s)
{
	switch (s) {
	case SERVICE_STOPPED: return "stopped";
	case SERVICE_START_PENDING: return "start pending";
	case SERVICE_STOP_PENDING: return "stop pending";
	case SERVICE_RUNNING: return "running";
	case SERVICE_CONTINUE_PENDING: return "continue pending";
	case SERVICE_PAUSE_PENDING: return "pause pending";
	case SERVICE_PAUSED: return "paused";
	default: return "unknown";
	}
}

static bool query(SC_HANDLE s, SERVICE_STATUS_PROCESS *sp)
{
	DWORD need;
	return QueryServiceStatusEx(s, SC_STATUS_PROCESS_INFO, (LPBYTE)sp, sizeof(*sp), &need) != 0;
}

/* Poll until the state is `want` (or, waiting for RUNNING, STOPPED). */
static sw_err wait_state(SC_HANDLE s, DWORD want, unsigned timeout_ms, char *why, size_t n)
{
	ULONGLONG end = GetTickCount64() + timeout_ms;
	SERVICE_STATUS_PROCESS sp;
	for (;;) {
		if (!query(s, &sp)) {
			set_why(why, n, "querying the signwatch service", GetLastError());
			return SW_ERR_IO;
		}
		if (sp.dwCurrentState == want)
			return SW_OK;
		if (want == SERVICE_RUNNING && sp.dwCurrentState == SERVICE_STOPPED) {
			if (sp.dwWin32ExitCode == ERROR_SERVICE_SPECIFIC_ERROR)
				snprintf(why, n,
				         "the service stopped with status %lu (2: bad configuration or "
				         "rules, 1: run-time "
				         "failure); the Application event log (source signwatch) says why",
				         (unsigned long)sp.dwServiceSpecificExitCode);
			else
				set_why(why, n, "the service stopped", sp.dwWin32ExitCode);
			return SW_ERR_IO;
		}
		if (GetTickCount64() >= end) {
			snprintf(why, n, "timed out after %u s; the service is %s", timeout_ms / 1000,
			         state_name(sp.dwCurrentState));
			return SW_ERR_IO;
		}
		Sleep(250);
	}
}

sw_err sw_plat_service_start(unsigned timeout_ms, char *why, size_t n)
{
	SC_HANDLE s = open_service(SERVICE_START | SERVICE_QUERY_STATUS, why, n);
	if (!s)
		return SW_ERR_IO;
	sw_err ret = SW_OK;
	if (!StartServiceW(s, 0, NULL) && GetLastError() != ERROR_SERVICE_ALREADY_RUNNING) {
		set_why(why, n, "starting the signwatch service", GetLastError());
		ret = SW_ERR_IO;
	}
	if (ret == SW_OK)
		ret = wait_state(s, SERVICE_RUNNING, timeout_ms, why, n);
	CloseServiceHandle(s);
	return ret;
}

static sw_err stop_handle(SC_HANDLE s, unsigned timeout_ms, char *why, size_t n)
{
	SERVICE_STATUS ss;
	SERVICE_STATUS_PROCESS sp;
	if (query(s, &sp) && sp.dwCurrentState == SERVICE_STOPPED)
		return SW_OK;
	if (!ControlService(s, SERVICE_CONTROL_STOP, &ss)) {
		DWORD e = GetLastError();
		if (e != ERROR_SERVICE_NOT_ACTIVE && e != ERROR_SERVICE_CANNOT_ACCEPT_CTRL) {
			set_why(why, n, "stopping the signwatch service", e);
			return SW_ERR_IO;
		}
	}
	return wait_state(s, SERVICE_STOPPED, timeout_ms, why, n);
}

sw_err sw_plat_service_stop(unsigned timeout_ms, char *why, size_t n)
{
	SC_HANDLE s = open_service(SERVICE_STOP | SERVICE_QUERY_STATUS, why, n);
	if (!s)
		return SW_ERR_IO;
	sw_err ret = stop_handle(s, timeout_ms, why, n);
	CloseServiceHandle(s);
	return ret;
}

sw_err sw_plat_service_reload(char *why, size_t n)
{
	SC_HANDLE s = open_service(SERVICE_PAUSE_CONTINUE | SERVICE_QUERY_STATUS, why, n);
	if (!s)
		return SW_ERR_IO;
	SERVICE_STATUS ss;
	sw_err ret = SW_OK;
	if (!ControlService(s, SERVICE_CONTROL_PARAMCHANGE, &ss)) {
		DWORD e = GetLastError();
		set_why(why, n,
		        e == ERROR_SERVICE_NOT_ACTIVE ? "reloading the signwatch service (it is not running)"
		                                      : "reloading the signwatch service",
		        e);
		ret = SW_ERR_IO;
	}
	CloseServiceHandle(s);
	return ret;
}

sw_err sw_plat_service_uninstall(unsigned timeout_ms, char *why, size_t n)
{
	SC_HANDLE s = open_service(SERVICE_STOP | SERVICE_QUERY_STATUS | DELETE, why, n);
	if (!s)
		return SW_ERR_IO;
	sw_err ret = stop_handle(s, timeout_ms, why, n);
	if (ret == SW_OK && !DeleteService(s) && GetLastError() != ERROR_SERVICE_MARKED_FOR_DELETE) {
		set_why(why, n, "deleting the signwatch service", GetLastError());
		ret = SW_ERR_IO;
	}
	CloseServiceHandle(s);
	if (ret == SW_OK)
		(void)RegDeleteKeyW(HKEY_LOCAL_MACHINE, EVENTLOG_KEY);
	return ret;
}

sw_err sw_plat_service_state(char *state, size_t ns, char *why, size_t n)
{
	if (ns)
		state[0] = 0;
	SC_HANDLE s = open_service(SERVICE_QUERY_STATUS, why, n);
	if (!s)
		return SW_ERR_IO;
	SERVICE_STATUS_PROCESS sp;
	sw_err ret = SW_OK;
	if (!query(s, &sp)) {
		set_why(why, n, "querying the signwatch service", GetLastError());
		ret = SW_ERR_IO;
	} else {
		snprintf(state, ns, "%s", state_name(sp.dwCurrentState));
	}
	CloseServiceHandle(s);
	return ret;
}
