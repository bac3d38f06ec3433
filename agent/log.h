/* signwatch: the agent's log. Lines go to stderr (the journal under
 * systemd, the console in the foreground); hostile text is escaped. */
#ifndef SW_LOG_H
#define SW_LOG_H

#include "sw_attr.h"

typedef enum sw_log_level { SW_LOG_DEBUG, SW_LOG_INFO, SW_LOG_WARN, SW_LOG_ERROR } sw_log_level;

void sw_log_set_level(sw_log_level l);
SW_PRINTF(2, 3)
void sw_log(sw_log_level l, const char *fmt, ...);

#endif
