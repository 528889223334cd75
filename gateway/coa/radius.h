/*
 * radius: a small RADIUS codec (RFC 2865, 2866, 3579, 5176) on OpenSSL's EVP MD5 and HMAC-MD5.
 * It parses a packet into a bounded list of attributes that point into the caller's buffer,
 * builds requests and responses in a fixed 4096-byte buffer, and computes and checks the
 * Request/Response Authenticators and the Message-Authenticator. No I/O, no allocation.
 *
 * Used by the CoA sink (coa_radius.c: CoA/Disconnect requests, checking their replies) and the
 * accounting listener (acct.c: checking Accounting-Requests, answering Accounting-Responses).
 * Secrets are NUL-terminated strings; every compare of a computed value is constant-time.
 */
#ifndef MDM_RADIUS_H
#define MDM_RADIUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../core/err.h"

#define RADIUS_MAX_LEN 4096 /* RFC 2865 3: the largest packet */
#define RADIUS_HDR_LEN 20   /* code, id, length (2), authenticator (16) */
#define RADIUS_AUTH_LEN 16
#define RADIUS_ATTR_MAX 253  /* the largest attribute value */
#define RADIUS_MAX_ATTRS 256 /* attributes kept by radius_parse (VSA sub-attributes count too) */

/* Packet codes. */
enum {
	RADIUS_ACCOUNTING_REQUEST = 4,
	RADIUS_ACCOUNTING_RESPONSE = 5,
	RADIUS_DISCONNECT_REQUEST = 40,
	RADIUS_DISCONNECT_ACK = 41,
	RADIUS_DISCONNECT_NAK = 42,
	RADIUS_COA_REQUEST = 43,
	RADIUS_COA_ACK = 44,
	RADIUS_COA_NAK = 45,
};

/* Attribute types. */
enum {
	RADIUS_USER_NAME = 1,
	RADIUS_NAS_IP_ADDRESS = 4,
	RADIUS_NAS_PORT = 5,
	RADIUS_FRAMED_IP_ADDRESS = 8,
	RADIUS_VENDOR_SPECIFIC = 26,
	RADIUS_CALLED_STATION_ID = 30,
	RADIUS_CALLING_STATION_ID = 31,
	RADIUS_NAS_IDENTIFIER = 32,
	RADIUS_ACCT_STATUS_TYPE = 40,
	RADIUS_ACCT_SESSION_ID = 44,
	RADIUS_EVENT_TIMESTAMP = 55,
	RADIUS_MESSAGE_AUTHENTICATOR = 80,
	RADIUS_NAS_IPV6_ADDRESS = 95,
	RADIUS_ERROR_CAUSE = 101,
};

/* Acct-Status-Type values (RFC 2866 5.1). */
enum {
	RADIUS_ACCT_START = 1,
	RADIUS_ACCT_STOP = 2,
	RADIUS_ACCT_INTERIM_UPDATE = 3,
	RADIUS_ACCT_ON = 7,
	RADIUS_ACCT_OFF = 8,
};

#define RADIUS_VENDOR_CISCO 9
#define RADIUS_CISCO_AVPAIR 1

/* Error-Cause values (RFC 5176 3.5). */
enum {
	RADIUS_EC_RESIDUAL_SESSION_CONTEXT_REMOVED = 201,
	RADIUS_EC_INVALID_EAP_PACKET = 202,
	RADIUS_EC_UNSUPPORTED_ATTRIBUTE = 401,
	RADIUS_EC_MISSING_ATTRIBUTE = 402,
	RADIUS_EC_NAS_IDENTIFICATION_MISMATCH = 403,
	RADIUS_EC_INVALID_REQUEST = 404,
	RADIUS_EC_UNSUPPORTED_SERVICE = 405,
	RADIUS_EC_UNSUPPORTED_EXTENSION = 406,
	RADIUS_EC_INVALID_ATTRIBUTE_VALUE = 407,
	RADIUS_EC_ADMINISTRATIVELY_PROHIBITED = 501,
	RADIUS_EC_REQUEST_NOT_ROUTABLE = 502,
	RADIUS_EC_SESSION_CONTEXT_NOT_FOUND = 503,
	RADIUS_EC_SESSION_CONTEXT_NOT_REMOVABLE = 504,
	RADIUS_EC_OTHER_PROXY_PROCESSING_ERROR = 505,
	RADIUS_EC_RESOURCES_UNAVAILABLE = 506,
	RADIUS_EC_REQUEST_INITIATED = 507,
	RADIUS_EC_MULTIPLE_SESSION_SELECTION_UNSUPPORTED = 508,
};

/*
 * One attribute. Top-level attributes have vendor 0; the sub-attributes of a Vendor-Specific
 * attribute in the RFC 2865 5.26 layout (vendor id, then type/length/value triples) are listed
 * after it with vendor set and type the vendor's type. A Vendor-Specific attribute whose value
 * does not follow that layout, or names vendor 0, is kept as the raw type 26 only (vendors may
 * use their own layout; vendor 0 sub-attributes would pass for top-level ones).
 */
struct radius_attr {
	uint32_t vendor;
	uint8_t type;
	uint8_t len;	      /* value length, 0..253 */
	const uint8_t *value; /* into the parsed buffer */
};

struct radius_pkt {
	uint8_t code, id;
	uint16_t len; /* the Length field; octets after it in the datagram are padding */
	uint8_t auth[RADIUS_AUTH_LEN];
	size_t nattrs;
	struct radius_attr attrs[RADIUS_MAX_ATTRS];
	int ma_off; /* offset of the Message-Authenticator value in the packet; -1 when absent */
};

/*
 * radius_parse: checks and indexes one datagram of len bytes. The Length field must be
 * 20..4096 and no more than len (extra octets are padding, RFC 2865 3); every attribute has a
 * length of at least 2 that stays within Length and they end exactly at Length; a
 * Message-Authenticator, at most one, has a 16-octet value. MDM_ERR_PARSE when not, or
 * MDM_ERR_TOOBIG past RADIUS_MAX_ATTRS. The attributes point into buf: keep it alive.
 */
enum mdm_err radius_parse(const uint8_t *buf, size_t len, struct radius_pkt *pkt);

/* radius_attr_find: the first attribute of (vendor, type) at index from or later; NULL if none.
 * *idx (may be NULL) gets its index, so that from = *idx + 1 finds the next one. */
const struct radius_attr *radius_attr_find(const struct radius_pkt *pkt, uint32_t vendor,
					   uint8_t type, size_t from, size_t *idx);

/* radius_attr_u32: a 4-octet integer attribute's value; MDM_ERR_NOTFOUND / MDM_ERR_PARSE. */
enum mdm_err radius_attr_u32(const struct radius_pkt *pkt, uint8_t type, uint32_t *out);

/* radius_attr_str: copies a text attribute into out (size bytes, NUL-terminated); MDM_ERR_TOOBIG
 * when it does not fit, MDM_ERR_NOTFOUND when absent. */
enum mdm_err radius_attr_str(const struct radius_pkt *pkt, uint8_t type, char *out, size_t size);

/*
 * A packet being built. Adding fails (MDM_ERR_TOOBIG past 4096 octets, MDM_ERR_INVALID for an
 * empty or over-long value) and the failure sticks: the finish functions return it, so a
 * sequence of adds needs one check only.
 */
struct radius_builder {
	uint8_t buf[RADIUS_MAX_LEN];
	size_t len;
	int ma_off; /* offset of the Message-Authenticator value; -1 when none was added */
	enum mdm_err err;
};

/* radius_builder_init: an empty packet with this code and identifier. */
void radius_builder_init(struct radius_builder *b, uint8_t code, uint8_t id);
/* radius_add_bytes: one attribute of 1..253 octets. */
enum mdm_err radius_add_bytes(struct radius_builder *b, uint8_t type, const void *val, size_t len);
/* radius_add_str: a text attribute (without its NUL). */
enum mdm_err radius_add_str(struct radius_builder *b, uint8_t type, const char *s);
/* radius_add_u32: a 4-octet integer in network order. */
enum mdm_err radius_add_u32(struct radius_builder *b, uint8_t type, uint32_t v);
/* radius_add_ipv4: an address attribute from dotted text; MDM_ERR_INVALID if not IPv4. */
enum mdm_err radius_add_ipv4(struct radius_builder *b, uint8_t type, const char *ip);
/* radius_add_vsa: a Vendor-Specific attribute holding one sub-attribute (1..247 octets). */
enum mdm_err radius_add_vsa(struct radius_builder *b, uint32_t vendor, uint8_t vtype,
			    const void *val, size_t len);
/* radius_add_cisco_avpair: Cisco-AVPair (vendor 9, type 1), e.g. "subscriber:command=...". */
enum mdm_err radius_add_cisco_avpair(struct radius_builder *b, const char *pair);
/* radius_add_ma: a zeroed Message-Authenticator, filled in by the finish functions. Once. */
enum mdm_err radius_add_ma(struct radius_builder *b);

/*
 * radius_finish_request: for Accounting-, CoA- and Disconnect-Requests. Fills the
 * Message-Authenticator (when added) over the packet with a zero authenticator, then sets the
 * Request Authenticator to MD5(code+id+length+16 zeros+attributes+secret). The packet is
 * b->buf, b->len octets. Returns the first add error, if any.
 */
enum mdm_err radius_finish_request(struct radius_builder *b, const char *secret);

/*
 * radius_finish_response: for replies to a request with authenticator req_auth. Fills the
 * Message-Authenticator (when added) with req_auth in the authenticator field, then sets the
 * Response Authenticator to MD5(code+id+length+req_auth+attributes+secret).
 */
enum mdm_err radius_finish_response(struct radius_builder *b, const uint8_t req_auth[16],
				    const char *secret);

/*
 * radius_verify_request: checks a request of the Accounting/CoA/Disconnect kind: its Request
 * Authenticator, and its Message-Authenticator when present or when require_ma (then its
 * absence fails). MDM_OK, MDM_ERR_PARSE (malformed) or MDM_ERR_AUTH (a check failed).
 */
enum mdm_err radius_verify_request(const uint8_t *buf, size_t len, const char *secret,
				   bool require_ma);

/*
 * radius_verify_response: checks a reply to the request whose authenticator was req_auth: its
 * Response Authenticator, and its Message-Authenticator when present or when require_ma. The
 * Message-Authenticator is taken when computed with req_auth in the authenticator field (RFC
 * 3579, RFC 5176 3.4) or, as FreeRADIUS 3.x servers sign CoA/Disconnect replies, with 16 zero
 * octets there. Results as radius_verify_request.
 */
enum mdm_err radius_verify_response(const uint8_t *buf, size_t len, const uint8_t req_auth[16],
				    const char *secret, bool require_ma);

/* radius_code_name: "CoA-Request", "Disconnect-ACK", ...; "Unknown" for other codes. */
const char *radius_code_name(uint8_t code);
/* radius_error_cause_name: "Session-Context-Not-Found" for 503, ...; "Unknown" for others. */
const char *radius_error_cause_name(uint32_t cause);
/* radius_acct_status_name: "Start", "Stop", "Interim-Update", "Accounting-On", ...; "Unknown". */
const char *radius_acct_status_name(uint32_t status);

#endif
