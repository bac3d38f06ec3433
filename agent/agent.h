/* signwatch run: the agent. A libuv loop watches the configured roots,
 * waits until each new file is complete, scans it on the worker pool and
 * stores records, rule matches and summaries; the store's file-state
 * cache and periodic walks are the truth, events only hints. */
#ifndef SW_AGENT_H
#define SW_AGENT_H

#include <stdbool.h>

/* Run until SIGTERM/SIGINT (SIGHUP reloads). Returns the exit status. */
int sw_agent_run(const char *config_path, bool config_given);

#endif
