/*
 * tools: the commands an operator runs against a configuration without serving:
 *   check-config -c FILE                        load and validate everything it points at
 *   test-connection -c FILE NAME                one adapter's connection test
 *   query -c FILE [--kind KIND] IDENTIFIER      ask every adapter, bypassing the cache
 * Each prints what it found and returns the process's exit code (0 ok, 1 failed, 2 bad use).
 */
#ifndef MDM_TOOLS_H
#define MDM_TOOLS_H

#include <stdbool.h>

#define TOOL_USAGE (-1) /* tool_main: the arguments are wrong; show the usage */

/* tool_check_config: check-config; 0 when the configuration and everything it names load. */
int tool_check_config(const char *path);

/* tool_is_command: whether argv[1] is test-connection or query. */
bool tool_is_command(const char *cmd);

/* tool_main: runs test-connection or query (argv[1]); TOOL_USAGE for wrong arguments. */
int tool_main(int argc, char **argv);

#endif
