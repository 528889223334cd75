#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../core/clock.h"
#include "../../core/log.h"
#include "../../core/text.h"
#include "../../core/xmlparse.h"
#include "coa_mnt.h"
#include "coa_policy.h"

#define MNT_DEPTH 16
#define MNT_TEXT 255
#define MNT_BODY_MAX (256 * 1024)

struct mnt {
	struct http_client *http;
	char origin[600];
	unsigned reauth_type, disconnect_port;
	int64_t timeout_ms;
};

/* One send: the session lookup, then the CoA call. */
struct mnt_op {
	struct mnt *m;
	char mac[18]; /* AA:BB:CC:DD:EE:FF */
	enum transition_kind kind;
	coa_sink_cb cb;
	void *arg;
};

/* --- the answers' XML (core/xmlparse.h) ----------------------------------------------------- */

struct px {
	struct xmlparse x;
	char name[MNT_DEPTH + 1][32]; /* local name of each open element; "" when longer */
	char text[MNT_TEXT + 1];
	struct coa_mnt_session *s; /* session mode */
	int results;		   /* result mode: -1 none, 0 false, 1 true */
};

static void px_open(struct xmlparse *x, const char *name)
{
	struct px *px = x->ctx;

	str_copy(px->name[x->depth], sizeof(px->name[0]), name); /* "" when too long */
}

static void px_close(struct xmlparse *x, const char *t, size_t len)
{
	struct px *px = x->ctx;
	const char *n = px->name[x->depth];

	text_trim(&t, &len);
	/* str_copyn leaves "" for a value too long for its field: no value we keep is. */
	if (px->s && strcasecmp(n, "acs_server") == 0)
		str_copyn(px->s->psn, sizeof(px->s->psn), t, len);
	else if (px->s && strcasecmp(n, "nas_ip_address") == 0)
		str_copyn(px->s->nas_ip, sizeof(px->s->nas_ip), t, len);
	else if (px->s && strcasecmp(n, "framed_ip_address") == 0)
		str_copyn(px->s->framed_ip, sizeof(px->s->framed_ip), t, len);
	else if (!px->s && strcasecmp(n, "results") == 0)
		px->results = len == 4 && strncasecmp(t, "true", 4) == 0 ? 1 : 0;
}

static const struct xmlparse_ops px_ops = {.open = px_open, .close = px_close};

static enum mdm_err parse(struct px *px, const char *xml, size_t len, char *why, size_t whysz)
{
	px->x = (struct xmlparse){.ops = &px_ops,
				  .ctx = px,
				  .max_depth = MNT_DEPTH,
				  .max_body = MNT_BODY_MAX,
				  .encoding = "UTF-8",
				  .text = px->text,
				  .text_max = MNT_TEXT,
				  .why = why,
				  .whysz = whysz};
	return xmlparse_run(&px->x, xml, len);
}

/* Host names and IP addresses only: they go into the CoA URL's path. */
static bool path_safe(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr(".-_:", *s)))
			return false;
	return true;
}

enum mdm_err coa_mnt_parse_session(const char *xml, size_t len, struct coa_mnt_session *out,
				   char *why, size_t whysz)
{
	struct px x = {.s = out, .results = -1};
	enum mdm_err e;

	memset(out, 0, sizeof(*out));
	if (len == 0 || strspn(xml, " \r\n\t") == len)
		return MDM_ERR_NOTFOUND;
	e = parse(&x, xml, len, why, whysz);
	if (e != MDM_OK)
		return e;
	if (!path_safe(out->psn) || !path_safe(out->nas_ip) || !path_safe(out->framed_ip)) {
		err_why(why, whysz,
			"acs_server, nas_ip_address or framed_ip_address holds "
			"characters no host name or address has");
		return MDM_ERR_PARSE;
	}
	return out->psn[0] ? MDM_OK : MDM_ERR_NOTFOUND;
}

enum mdm_err coa_mnt_parse_result(const char *xml, size_t len, bool *ok, char *why, size_t whysz)
{
	struct px x = {.s = NULL, .results = -1};
	enum mdm_err e = parse(&x, xml, len, why, whysz);

	if (e != MDM_OK)
		return e;
	if (x.results < 0) {
		err_why(why, whysz, "the answer has no <results>");
		return MDM_ERR_PARSE;
	}
	*ok = x.results == 1;
	return MDM_OK;
}

/* --- the sink -------------------------------------------------------------------------------- */

static void op_end(struct mnt_op *op, enum coa_outcome o, const char *fmt, ...) MDM_PRINTF(3, 4);

static void op_end(struct mnt_op *op, enum coa_outcome o, const char *fmt, ...)
{
	struct coa_result r = {.outcome = o};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r.detail, sizeof(r.detail), fmt, ap);
	va_end(ap);
	op->cb(op->arg, &r);
	free(op);
}

/* transport: a failure or an unexpected status; true when op was ended. */
static bool transport(struct mnt_op *op, const struct http_result *res, const char *step)
{
	if (res->fail != FAIL_NONE) {
		op_end(op, res->fail == FAIL_TIMEOUT ? COA_NO_ANSWER : COA_ERROR, "%s: %s: %s",
		       step, fail_kind_name(res->fail), res->why);
		return true;
	}
	if (res->status != 200) {
		op_end(op, COA_ERROR, "%s: HTTP %ld", step, res->status);
		return true;
	}
	return false;
}

static void on_coa(struct http_result *res, void *arg)
{
	struct mnt_op *op = arg;
	char why[200] = "";
	bool ok = false;

	if (!transport(op, res, "CoA")) {
		if (coa_mnt_parse_result(buf_str(&res->body), res->body.len, &ok, why,
					 sizeof(why)) != MDM_OK)
			op_end(op, COA_ERROR, "CoA: %s", why);
		else if (ok)
			op_end(op, COA_OK, "MnT results=true");
		else
			op_end(op, COA_REFUSED, "MnT results=false");
	}
	buf_free(&res->body);
}

static void on_session(struct http_result *res, void *arg)
{
	struct mnt_op *op = arg;
	struct mnt *m = op->m;
	struct coa_mnt_session s;
	struct http_request rq = {.method = HTTP_GET};
	char url[1200], why[200] = "";
	enum mdm_err e;

	if (res->fail == FAIL_NONE && res->status == 404) {
		op_end(op, COA_NO_SESSION, "MnT: no active session (HTTP 404)");
		goto out;
	}
	if (transport(op, res, "session lookup"))
		goto out;
	e = coa_mnt_parse_session(buf_str(&res->body), res->body.len, &s, why, sizeof(why));
	if (e == MDM_ERR_NOTFOUND) {
		op_end(op, COA_NO_SESSION, "MnT: no active session");
		goto out;
	}
	if (e != MDM_OK) {
		op_end(op, COA_ERROR, "session lookup: %s", why);
		goto out;
	}
	if (op->kind == TRANSITION_DISCONNECT && (!s.nas_ip[0] || !s.framed_ip[0])) {
		/* final: asking again will not give the session an address */
		op_end(op, COA_REFUSED,
		       "MnT session has no nas_ip_address or framed_ip_address "
		       "for a disconnect");
		goto out;
	}
	if (op->kind == TRANSITION_DISCONNECT)
		snprintf(url, sizeof(url), "%s/admin/API/mnt/CoA/Disconnect/%s/%s/%u/%s/%s",
			 m->origin, s.psn, op->mac, m->disconnect_port, s.nas_ip, s.framed_ip);
	else
		snprintf(url, sizeof(url), "%s/admin/API/mnt/CoA/Reauth/%s/%s/%u", m->origin, s.psn,
			 op->mac, m->reauth_type);
	rq.url = url;
	e = http_request(m->http, &rq, clock_mono_ms() + m->timeout_ms, on_coa, op);
	if (e != MDM_OK)
		op_end(op, COA_ERROR, "CoA not sent: %s", err_str(e));
out:
	buf_free(&res->body);
}

static enum mdm_err mnt_send(void *sink, const struct transition *ev, const struct coa_session *s,
			     coa_sink_cb cb, void *arg)
{
	struct coa_sink *k = sink;
	struct mnt *m = k->priv;
	struct mnt_op *op;
	struct http_request rq = {.method = HTTP_GET};
	char url[800];
	enum mdm_err e;

	(void)s;
	op = calloc(1, sizeof(*op));
	if (!op)
		return MDM_ERR_NOMEM;
	op->m = m;
	op->kind = ev->kind;
	op->cb = cb;
	op->arg = arg;
	if (strlen(ev->mac) != 12) {
		op_end(op, COA_NO_SESSION, "the device has no MAC: MnT finds sessions by MAC");
		return MDM_OK;
	}
	for (int i = 0; i < 6; i++)
		snprintf(op->mac + 3 * i, 4, "%.2s%s", ev->mac + 2 * i, i < 5 ? ":" : "");
	snprintf(url, sizeof(url), "%s/admin/API/mnt/Session/MACAddress/%s", m->origin, op->mac);
	rq.url = url;
	e = http_request(m->http, &rq, clock_mono_ms() + m->timeout_ms, on_session, op);
	if (e != MDM_OK)
		free(op);
	return e;
}

static void mnt_destroy(void *sink)
{
	struct coa_sink *k = sink;

	if (!k)
		return;
	if (k->priv) {
		http_client_destroy(((struct mnt *)k->priv)->http);
		free(k->priv);
	}
	free(k);
}

static const struct coa_sink_ops mnt_ops = {"mnt", false, mnt_send, mnt_destroy};

enum mdm_err coa_mnt_create(struct http_engine *e, const struct coa_mnt_config *cfg,
			    struct coa_sink **out, char *why, size_t whysz)
{
	struct http_client_config hc = {.name = cfg->name ? cfg->name : "mnt",
					.ca_file = cfg->ca_file,
					.auth = HTTP_AUTH_BASIC,
					.user = cfg->user,
					.password = cfg->password,
					.max_connections = 4,
					.max_body = MNT_BODY_MAX};
	struct coa_sink *k = calloc(1, sizeof(*k));
	struct mnt *m = calloc(1, sizeof(*m));
	size_t n;

	*out = NULL;
	if (!k || !m) {
		free(k);
		free(m);
		return MDM_ERR_NOMEM;
	}
	k->ops = &mnt_ops;
	k->priv = m;
	str_copy(k->name, sizeof(k->name), hc.name);
	m->reauth_type = cfg->reauth_type;
	m->disconnect_port = cfg->disconnect_port;
	m->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : COA_HTTP_TIMEOUT_MS_DEFAULT;
	if (!cfg->url || strncmp(cfg->url, "https://", 8) != 0 ||
	    str_copy(m->origin, sizeof(m->origin), cfg->url) != MDM_OK) {
		err_why(why, whysz, "url must be an https:// origin");
		mnt_destroy(k);
		return MDM_ERR_CONFIG;
	}
	for (n = strlen(m->origin); n > 8 && m->origin[n - 1] == '/'; n--)
		m->origin[n - 1] = '\0';
	m->http = http_client_create(e, &hc, why, whysz);
	if (!m->http) {
		mnt_destroy(k);
		return MDM_ERR_CONFIG;
	}
	*out = k;
	return MDM_OK;
}
