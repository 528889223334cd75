/*
 * ident: the identifiers a NAC engine asks by, parsed and normalised once at the edge.
 * MAC: 12 upper-case hex digits. GUID: opaque vendor id, 1..128 printable bytes, kept as sent.
 * UDID, serial: 1..64 of [A-Za-z0-9._-]. IMEI: 14..16 digits. MEID: 14 hex digits (upper case)
 * or 18 decimal digits. Hostname: 1..253 of [A-Za-z0-9._-], lower-cased.
 * User name: 1..128 bytes with no control characters, lower-cased (ASCII).
 */
#ifndef MDM_IDENT_H
#define MDM_IDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "err.h"

enum ident_kind {
	IDENT_MAC = 0,
	IDENT_GUID,
	IDENT_UDID,
	IDENT_IMEI,
	IDENT_MEID,
	IDENT_SERIAL,
	IDENT_HOSTNAME,
	IDENT_USERNAME,
	IDENT_KIND_COUNT
};

#define IDENT_VALUE_MAX 253 /* longest value of any kind (a hostname), without the NUL */
#define MAC_STR_LEN 12
#define GUID_MAX 128

struct ident {
	enum ident_kind kind;
	bool mac_local; /* MAC only: locally administered (randomised) address */
	size_t len;
	char value[IDENT_VALUE_MAX + 1];
};

/*
 * mac_parse: one MAC in any common form (aa:bb:cc:dd:ee:ff, AA-BB-..., aabb.ccdd.eeff,
 * AABBCCDDEEFF) into out (12 upper-case hex + NUL). Multicast, broadcast and all-zero addresses
 * are refused. *local tells whether the address is locally administered. On error, why holds
 * a sentence for the client.
 */
enum mdm_err mac_parse(const char *s, size_t len, char out[MAC_STR_LEN + 1], bool *local, char *why,
		       size_t whysz);

/*
 * ident_parse: value s (len bytes, surrounding white space ignored) of the given kind into out,
 * validated and normalised as described above. On error, why holds a sentence for the client.
 */
enum mdm_err ident_parse(enum ident_kind kind, const char *s, size_t len, struct ident *out,
			 char *why, size_t whysz);

/* hex_value: 0..15 for a hex digit of either case, -1 for anything else. */
int hex_value(char c);

/*
 * ident_hash: a 64-bit FNV-1a hash of (kind, value), ASCII case folded so that identifiers
 * compared case-insensitively hash alike. Never 0, so 0 can mark an empty slot.
 */
uint64_t ident_hash(int kind, const char *value);

/* ident_kind_name: "mac", "guid", "udid", "imei", "meid", "serial", "hostname", "username". */
const char *ident_kind_name(enum ident_kind kind);
/* ident_kind_parse: the inverse of ident_kind_name. */
enum mdm_err ident_kind_parse(const char *name, enum ident_kind *out);

#endif
