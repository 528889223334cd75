#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "ident.h"

static const char *const kind_names[IDENT_KIND_COUNT] = {
    "mac", "guid", "udid", "imei", "meid", "serial", "hostname", "username",
};

const char *ident_kind_name(enum ident_kind kind)
{
	if ((unsigned)kind >= IDENT_KIND_COUNT)
		return "unknown";
	return kind_names[kind];
}

enum mdm_err ident_kind_parse(const char *name, enum ident_kind *out)
{
	for (int i = 0; i < IDENT_KIND_COUNT; i++) {
		if (strcmp(name, kind_names[i]) == 0) {
			*out = (enum ident_kind)i;
			return MDM_OK;
		}
	}
	return MDM_ERR_INVALID;
}

int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* FNV-1a 64: offset basis 0xcbf29ce484222325, prime 0x100000001b3. */
#define FNV64_BASIS 0xcbf29ce484222325ull
#define FNV64_PRIME 0x100000001b3ull

uint64_t ident_hash(int kind, const char *v)
{
	uint64_t h = FNV64_BASIS ^ (uint64_t)kind;

	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		h = (h ^ c) * FNV64_PRIME;
	}
	return h ? h : 1;
}

static enum mdm_err fail(char *why, size_t whysz, const char *msg)
{
	err_why(why, whysz, "%s", msg);
	return MDM_ERR_INVALID;
}

/*
 * The four accepted layouts, as (group length, separator). Each is exact: separators may not
 * be mixed and groups may not be short, so "a:b:c:d:e:f" is refused rather than guessed at.
 */
static int mac_layout_ok(const char *s, size_t len, size_t group, char sep)
{
	size_t ngroups = 12 / group;

	if (len != 12 + (sep ? ngroups - 1 : 0))
		return 0;
	for (size_t i = 0; i < len; i++) {
		size_t pos = i % (group + 1);

		if (sep && pos == group) {
			if (s[i] != sep)
				return 0;
		} else if (hex_value(s[i]) < 0) {
			return 0;
		}
	}
	return 1;
}

enum mdm_err mac_parse(const char *s, size_t len, char out[MAC_STR_LEN + 1], bool *local, char *why,
		       size_t whysz)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char oct[6];
	size_t n = 0;
	int ok;

	if (len == 0)
		return fail(why, whysz, "MAC address is empty");
	if (len > 17)
		return fail(why, whysz, "MAC address is too long");
	if (len == 12)
		ok = mac_layout_ok(s, len, 12, 0);
	else if (len == 14)
		ok = mac_layout_ok(s, len, 4, '.');
	else if (len == 17)
		ok = mac_layout_ok(s, len, 2, s[2] == '-' ? '-' : ':');
	else
		ok = 0;
	if (!ok)
		return fail(why, whysz,
			    "MAC address must be 12 hex digits, alone or as aa:bb:cc:dd:ee:ff, "
			    "aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff");
	for (size_t i = 0; i < len && n < 12; i++) {
		int v = hex_value(s[i]);

		if (v < 0)
			continue;
		out[n++] = hex[v];
	}
	out[12] = '\0';
	for (int i = 0; i < 6; i++)
		oct[i] = (unsigned char)(hex_value(out[2 * i]) << 4 | hex_value(out[2 * i + 1]));
	if (memcmp(out, "000000000000", 12) == 0)
		return fail(why, whysz, "MAC address 000000000000 is not a device address");
	if (oct[0] & 0x01)
		return fail(why, whysz,
			    memcmp(out, "FFFFFFFFFFFF", 12) == 0
				? "MAC address FFFFFFFFFFFF is the broadcast address"
				: "MAC address is a multicast address, not a device address");
	if (local)
		*local = (oct[0] & 0x02) != 0;
	return MDM_OK;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int all_of(const char *s, size_t len, const char *extra, int hexonly)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		int ok = (c >= '0' && c <= '9');

		if (!ok && hexonly)
			ok = (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
		else if (!ok && !hexonly)
			ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (extra && c && strchr(extra, c));
		if (!ok)
			return 0;
	}
	return 1;
}

static void lower_ascii(char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			s[i] = (char)(s[i] - 'A' + 'a');
}

static void upper_ascii(char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] >= 'a' && s[i] <= 'z')
			s[i] = (char)(s[i] - 'a' + 'A');
}

static int digits_only(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

static enum mdm_err check_kind(enum ident_kind kind, const char *s, size_t len, char *why,
			       size_t whysz)
{
	switch (kind) {
	case IDENT_GUID:
		if (len > GUID_MAX)
			return fail(why, whysz, "GUID is longer than 128 bytes");
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
				return fail(why, whysz, "GUID may hold printable ASCII only");
		return MDM_OK;
	case IDENT_UDID:
	case IDENT_SERIAL:
		if (len > 64 || !all_of(s, len, "._-", 0))
			return fail(why, whysz,
				    kind == IDENT_UDID
					? "UDID must be 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'"
					: "serial number must be 1 to 64 of A-Z, a-z, 0-9, "
					  "'.', '_', '-'");
		return MDM_OK;
	case IDENT_IMEI:
		if (len < 14 || len > 16 || !digits_only(s, len))
			return fail(why, whysz, "IMEI must be 14 to 16 decimal digits");
		return MDM_OK;
	case IDENT_MEID:
		if (!((len == 14 && all_of(s, len, NULL, 1)) || (len == 18 && digits_only(s, len))))
			return fail(why, whysz, "MEID must be 14 hex digits or 18 decimal digits");
		return MDM_OK;
	case IDENT_HOSTNAME:
		if (len > 253 || !all_of(s, len, "._-", 0))
			return fail(why, whysz,
				    "host name must be 1 to 253 of A-Z, a-z, 0-9, '.', '_', '-'");
		return MDM_OK;
	case IDENT_USERNAME:
		if (len > 128)
			return fail(why, whysz, "user name is longer than 128 bytes");
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
				return fail(why, whysz, "user name holds a control character");
		return MDM_OK;
	default:
		return fail(why, whysz, "unknown identifier kind");
	}
}

enum mdm_err ident_parse(enum ident_kind kind, const char *s, size_t len, struct ident *out,
			 char *why, size_t whysz)
{
	enum mdm_err e;

	while (len && is_space(*s)) {
		s++;
		len--;
	}
	while (len && is_space(s[len - 1]))
		len--;
	memset(out, 0, sizeof(*out));
	out->kind = kind;
	if (kind == IDENT_MAC) {
		e = mac_parse(s, len, out->value, &out->mac_local, why, whysz);
		if (e == MDM_OK)
			out->len = MAC_STR_LEN;
		return e;
	}
	if (len == 0)
		return fail(why, whysz, "identifier value is empty");
	if (len > IDENT_VALUE_MAX)
		return fail(why, whysz, "identifier value is too long");
	e = check_kind(kind, s, len, why, whysz);
	if (e)
		return e;
	memcpy(out->value, s, len);
	out->value[len] = '\0';
	out->len = len;
	if (kind == IDENT_HOSTNAME || kind == IDENT_USERNAME)
		lower_ascii(out->value, len);
	else if (kind == IDENT_MEID)
		upper_ascii(out->value, len);
	return MDM_OK;
}
