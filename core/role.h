/*
 * role: what an account may do. An account holds a set of roles; every route and every action
 * names the roles one of which it needs. Shared by the HTTP front, the ISE API, the action
 * pipeline and the configuration.
 */
#ifndef MDM_ROLE_H
#define MDM_ROLE_H

enum role_bits { ROLE_QUERY = 1u << 0, ROLE_ACTION = 1u << 1, ROLE_ADMIN = 1u << 2 };

/* role_parse: "query" | "action" | "admin" -> ROLE_* bit; 0 for anything else. */
unsigned role_parse(const char *name);

#endif
