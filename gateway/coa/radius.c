/* radius: the codec; see radius.h. */
#include "radius.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../../core/buf.h"

/* --- parsing ----------------------------------------------------------------------------------
 */

static enum mdm_err keep(struct radius_pkt *pkt, uint32_t vendor, uint8_t type, const uint8_t *val,
			 size_t len)
{
	struct radius_attr *a;

	if (pkt->nattrs >= RADIUS_MAX_ATTRS)
		return MDM_ERR_TOOBIG;
	a = &pkt->attrs[pkt->nattrs++];
	a->vendor = vendor;
	a->type = type;
	a->len = (uint8_t)len;
	a->value = val;
	return MDM_OK;
}

/* vsa_layout_ok: whether a Vendor-Specific value is a vendor id then well-formed triples. */
static bool vsa_layout_ok(const uint8_t *v, size_t len)
{
	size_t off = 4;

	if (len < 4 + 2)
		return false;
	while (off < len) {
		if (len - off < 2 || v[off + 1] < 2 || v[off + 1] > len - off)
			return false;
		off += v[off + 1];
	}
	return true;
}

/* parse_vsa: lists the sub-attributes of a well-formed Vendor-Specific value. */
static enum mdm_err parse_vsa(struct radius_pkt *pkt, const uint8_t *v, size_t len)
{
	uint32_t vendor;
	enum mdm_err e;

	if (!vsa_layout_ok(v, len))
		return MDM_OK;
	vendor = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
	/* Vendor 0 is no vendor: its sub-attributes would pass for top-level ones. */
	if (vendor == 0)
		return MDM_OK;
	for (size_t off = 4; off < len; off += v[off + 1]) {
		e = keep(pkt, vendor, v[off], v + off + 2, (size_t)v[off + 1] - 2);
		if (e != MDM_OK)
			return e;
	}
	return MDM_OK;
}

enum mdm_err radius_parse(const uint8_t *buf, size_t len, struct radius_pkt *pkt)
{
	size_t plen, off = RADIUS_HDR_LEN;
	enum mdm_err e;

	memset(pkt, 0, sizeof(*pkt));
	pkt->ma_off = -1;
	if (!buf || len < RADIUS_HDR_LEN)
		return MDM_ERR_PARSE;
	plen = (size_t)buf[2] << 8 | buf[3];
	if (plen < RADIUS_HDR_LEN || plen > RADIUS_MAX_LEN || plen > len)
		return MDM_ERR_PARSE;
	pkt->code = buf[0];
	pkt->id = buf[1];
	pkt->len = (uint16_t)plen;
	memcpy(pkt->auth, buf + 4, RADIUS_AUTH_LEN);
	while (off < plen) {
		uint8_t type, alen;

		if (plen - off < 2)
			return MDM_ERR_PARSE;
		type = buf[off];
		alen = buf[off + 1];
		if (alen < 2 || alen > plen - off)
			return MDM_ERR_PARSE;
		if (type == RADIUS_MESSAGE_AUTHENTICATOR) {
			if (alen != 2 + 16 || pkt->ma_off >= 0)
				return MDM_ERR_PARSE;
			pkt->ma_off = (int)off + 2;
		}
		e = keep(pkt, 0, type, buf + off + 2, (size_t)alen - 2);
		if (e == MDM_OK && type == RADIUS_VENDOR_SPECIFIC)
			e = parse_vsa(pkt, buf + off + 2, (size_t)alen - 2);
		if (e != MDM_OK)
			return e;
		off += alen;
	}
	return MDM_OK;
}

const struct radius_attr *radius_attr_find(const struct radius_pkt *pkt, uint32_t vendor,
					   uint8_t type, size_t from, size_t *idx)
{
	for (size_t i = from; i < pkt->nattrs; i++) {
		if (pkt->attrs[i].vendor != vendor || pkt->attrs[i].type != type)
			continue;
		if (idx)
			*idx = i;
		return &pkt->attrs[i];
	}
	return NULL;
}

enum mdm_err radius_attr_u32(const struct radius_pkt *pkt, uint8_t type, uint32_t *out)
{
	const struct radius_attr *a = radius_attr_find(pkt, 0, type, 0, NULL);
	const uint8_t *v;

	if (!a)
		return MDM_ERR_NOTFOUND;
	if (a->len != 4)
		return MDM_ERR_PARSE;
	v = a->value;
	*out = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
	return MDM_OK;
}

enum mdm_err radius_attr_str(const struct radius_pkt *pkt, uint8_t type, char *out, size_t size)
{
	const struct radius_attr *a = radius_attr_find(pkt, 0, type, 0, NULL);

	if (size)
		out[0] = '\0';
	if (!a)
		return MDM_ERR_NOTFOUND;
	return str_copyn(out, size, (const char *)a->value, a->len);
}

/* --- building ---------------------------------------------------------------------------------
 */

void radius_builder_init(struct radius_builder *b, uint8_t code, uint8_t id)
{
	memset(b->buf, 0, RADIUS_HDR_LEN);
	b->buf[0] = code;
	b->buf[1] = id;
	b->len = RADIUS_HDR_LEN;
	b->ma_off = -1;
	b->err = MDM_OK;
}

/* room: reserves n octets at the end, or records why not. */
static uint8_t *room(struct radius_builder *b, size_t n)
{
	uint8_t *p;

	if (b->err != MDM_OK)
		return NULL;
	if (n > RADIUS_MAX_LEN - b->len) {
		b->err = MDM_ERR_TOOBIG;
		return NULL;
	}
	p = b->buf + b->len;
	b->len += n;
	return p;
}

enum mdm_err radius_add_bytes(struct radius_builder *b, uint8_t type, const void *val, size_t len)
{
	uint8_t *p;

	if (b->err == MDM_OK && (len == 0 || len > RADIUS_ATTR_MAX))
		b->err = MDM_ERR_INVALID;
	p = room(b, len + 2);
	if (!p)
		return b->err;
	p[0] = type;
	p[1] = (uint8_t)(len + 2);
	memcpy(p + 2, val, len);
	return MDM_OK;
}

enum mdm_err radius_add_str(struct radius_builder *b, uint8_t type, const char *s)
{
	return radius_add_bytes(b, type, s, strlen(s));
}

enum mdm_err radius_add_u32(struct radius_builder *b, uint8_t type, uint32_t v)
{
	uint8_t n[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	return radius_add_bytes(b, type, n, sizeof(n));
}

enum mdm_err radius_add_ipv4(struct radius_builder *b, uint8_t type, const char *ip)
{
	struct in_addr a;

	if (inet_pton(AF_INET, ip, &a) != 1) {
		if (b->err == MDM_OK)
			b->err = MDM_ERR_INVALID;
		return b->err;
	}
	return radius_add_bytes(b, type, &a.s_addr, 4);
}

enum mdm_err radius_add_vsa(struct radius_builder *b, uint32_t vendor, uint8_t vtype,
			    const void *val, size_t len)
{
	uint8_t v[RADIUS_ATTR_MAX];

	if (len == 0 || len > RADIUS_ATTR_MAX - 6) {
		if (b->err == MDM_OK)
			b->err = MDM_ERR_INVALID;
		return b->err;
	}
	v[0] = (uint8_t)(vendor >> 24);
	v[1] = (uint8_t)(vendor >> 16);
	v[2] = (uint8_t)(vendor >> 8);
	v[3] = (uint8_t)vendor;
	v[4] = vtype;
	v[5] = (uint8_t)(len + 2);
	memcpy(v + 6, val, len);
	return radius_add_bytes(b, RADIUS_VENDOR_SPECIFIC, v, len + 6);
}

enum mdm_err radius_add_cisco_avpair(struct radius_builder *b, const char *pair)
{
	return radius_add_vsa(b, RADIUS_VENDOR_CISCO, RADIUS_CISCO_AVPAIR, pair, strlen(pair));
}

enum mdm_err radius_add_ma(struct radius_builder *b)
{
	static const uint8_t zero[16];

	if (b->err == MDM_OK && b->ma_off >= 0)
		b->err = MDM_ERR_INVALID;
	if (radius_add_bytes(b, RADIUS_MESSAGE_AUTHENTICATOR, zero, sizeof(zero)) != MDM_OK)
		return b->err;
	b->ma_off = (int)b->len - 16;
	return MDM_OK;
}

/* --- digests ----------------------------------------------------------------------------------
 */

/* set_length: writes the Length field for the packet as built. */
static void set_length(struct radius_builder *b)
{
	b->buf[2] = (uint8_t)(b->len >> 8);
	b->buf[3] = (uint8_t)b->len;
}

/* hmac_md5: HMAC-MD5 of pkt keyed with secret. */
static enum mdm_err hmac_md5(const uint8_t *pkt, size_t len, const char *secret, uint8_t out[16])
{
	unsigned int n = 0;

	if (!HMAC(EVP_md5(), secret, (int)strlen(secret), pkt, len, out, &n) || n != 16)
		return MDM_ERR_INTERNAL;
	return MDM_OK;
}

/* md5_with_secret: MD5(pkt || secret), the Request and Response Authenticators' digest. */
static enum mdm_err md5_with_secret(const uint8_t *pkt, size_t len, const char *secret,
				    uint8_t out[16])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;
	enum mdm_err e = MDM_ERR_INTERNAL;

	if (!ctx)
		return MDM_ERR_NOMEM;
	if (EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 && EVP_DigestUpdate(ctx, pkt, len) == 1 &&
	    EVP_DigestUpdate(ctx, secret, strlen(secret)) == 1 &&
	    EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == 16)
		e = MDM_OK;
	EVP_MD_CTX_free(ctx);
	return e;
}

/* finish: auth_in goes in the authenticator field for both digests (NULL: zeros). */
static enum mdm_err finish(struct radius_builder *b, const uint8_t *auth_in, const char *secret)
{
	uint8_t digest[16];
	enum mdm_err e;

	if (b->err != MDM_OK)
		return b->err;
	set_length(b);
	if (auth_in)
		memcpy(b->buf + 4, auth_in, RADIUS_AUTH_LEN);
	else
		memset(b->buf + 4, 0, RADIUS_AUTH_LEN);
	if (b->ma_off >= 0) {
		memset(b->buf + b->ma_off, 0, 16);
		e = hmac_md5(b->buf, b->len, secret, digest);
		if (e != MDM_OK)
			return e;
		memcpy(b->buf + b->ma_off, digest, 16);
	}
	e = md5_with_secret(b->buf, b->len, secret, digest);
	if (e != MDM_OK)
		return e;
	memcpy(b->buf + 4, digest, RADIUS_AUTH_LEN);
	return MDM_OK;
}

enum mdm_err radius_finish_request(struct radius_builder *b, const char *secret)
{
	return finish(b, NULL, secret);
}

enum mdm_err radius_finish_response(struct radius_builder *b, const uint8_t req_auth[16],
				    const char *secret)
{
	return finish(b, req_auth, secret);
}

/* --- verifying --------------------------------------------------------------------------------
 */

/*
 * verify: copies the packet (its Length octets), puts auth_in (NULL: zeros) in the
 * authenticator field and checks the Message-Authenticator, then the authenticator itself.
 */
static enum mdm_err verify(const uint8_t *buf, size_t len, const uint8_t *auth_in,
			   const char *secret, bool require_ma)
{
	static const uint8_t zero[RADIUS_AUTH_LEN];
	uint8_t copy[RADIUS_MAX_LEN], digest[16];
	struct radius_pkt *pkt;
	enum mdm_err e;

	/* struct radius_pkt is ~6 KB: too much for the receive threads' stacks twice over. */
	pkt = malloc(sizeof(*pkt));
	if (!pkt)
		return MDM_ERR_NOMEM;
	e = radius_parse(buf, len, pkt);
	if (e != MDM_OK)
		goto out;
	memcpy(copy, buf, pkt->len);
	memcpy(copy + 4, auth_in ? auth_in : zero, RADIUS_AUTH_LEN);
	e = MDM_ERR_AUTH;
	if (pkt->ma_off < 0 && require_ma)
		goto out;
	if (pkt->ma_off >= 0) {
		bool ok;

		memset(copy + pkt->ma_off, 0, 16);
		if (hmac_md5(copy, pkt->len, secret, digest) != MDM_OK)
			goto out;
		ok = CRYPTO_memcmp(digest, buf + pkt->ma_off, 16) == 0;
		/* FreeRADIUS 3.x (3.2.1 at least) signs its CoA/Disconnect replies with 16 zero
		 * octets in the field, not the request's authenticator (RFC 5176 3.4). Both are
		 * keyed with the secret, and the Response Authenticator below still binds the
		 * reply to the request, so that form is accepted too. */
		if (!ok && auth_in) {
			memset(copy + 4, 0, RADIUS_AUTH_LEN);
			if (hmac_md5(copy, pkt->len, secret, digest) != MDM_OK)
				goto out;
			ok = CRYPTO_memcmp(digest, buf + pkt->ma_off, 16) == 0;
			memcpy(copy + 4, auth_in, RADIUS_AUTH_LEN);
		}
		if (!ok)
			goto out;
		memcpy(copy + pkt->ma_off, buf + pkt->ma_off, 16);
	}
	if (md5_with_secret(copy, pkt->len, secret, digest) != MDM_OK)
		goto out;
	if (CRYPTO_memcmp(digest, buf + 4, RADIUS_AUTH_LEN) != 0)
		goto out;
	e = MDM_OK;
out:
	free(pkt);
	return e;
}

enum mdm_err radius_verify_request(const uint8_t *buf, size_t len, const char *secret,
				   bool require_ma)
{
	return verify(buf, len, NULL, secret, require_ma);
}

enum mdm_err radius_verify_response(const uint8_t *buf, size_t len, const uint8_t req_auth[16],
				    const char *secret, bool require_ma)
{
	return verify(buf, len, req_auth, secret, require_ma);
}

/* --- names ------------------------------------------------------------------------------------
 */

const char *radius_code_name(uint8_t code)
{
	switch (code) {
	case RADIUS_ACCOUNTING_REQUEST:
		return "Accounting-Request";
	case RADIUS_ACCOUNTING_RESPONSE:
		return "Accounting-Response";
	case RADIUS_DISCONNECT_REQUEST:
		return "Disconnect-Request";
	case RADIUS_DISCONNECT_ACK:
		return "Disconnect-ACK";
	case RADIUS_DISCONNECT_NAK:
		return "Disconnect-NAK";
	case RADIUS_COA_REQUEST:
		return "CoA-Request";
	case RADIUS_COA_ACK:
		return "CoA-ACK";
	case RADIUS_COA_NAK:
		return "CoA-NAK";
	default:
		return "Unknown";
	}
}

const char *radius_error_cause_name(uint32_t cause)
{
	static const struct {
		uint32_t v;
		const char *name;
	} names[] = {
	    {201, "Residual-Session-Context-Removed"},
	    {202, "Invalid-EAP-Packet"},
	    {401, "Unsupported-Attribute"},
	    {402, "Missing-Attribute"},
	    {403, "NAS-Identification-Mismatch"},
	    {404, "Invalid-Request"},
	    {405, "Unsupported-Service"},
	    {406, "Unsupported-Extension"},
	    {407, "Invalid-Attribute-Value"},
	    {501, "Administratively-Prohibited"},
	    {502, "Request-Not-Routable"},
	    {503, "Session-Context-Not-Found"},
	    {504, "Session-Context-Not-Removable"},
	    {505, "Other-Proxy-Processing-Error"},
	    {506, "Resources-Unavailable"},
	    {507, "Request-Initiated"},
	    {508, "Multiple-Session-Selection-Unsupported"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].v == cause)
			return names[i].name;
	return "Unknown";
}

const char *radius_acct_status_name(uint32_t status)
{
	switch (status) {
	case RADIUS_ACCT_START:
		return "Start";
	case RADIUS_ACCT_STOP:
		return "Stop";
	case RADIUS_ACCT_INTERIM_UPDATE:
		return "Interim-Update";
	case RADIUS_ACCT_ON:
		return "Accounting-On";
	case RADIUS_ACCT_OFF:
		return "Accounting-Off";
	default:
		return "Unknown";
	}
}
