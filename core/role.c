#include <string.h>

#include "role.h"

unsigned role_parse(const char *name)
{
	if (!name)
		return 0;
	if (strcmp(name, "query") == 0)
		return ROLE_QUERY;
	if (strcmp(name, "action") == 0)
		return ROLE_ACTION;
	if (strcmp(name, "admin") == 0)
		return ROLE_ADMIN;
	return 0;
}
