#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/clock.h"
#include "../../core/jout.h"
#include "../../core/log.h"
#include "coa_policy.h"
#include "coa_webhook.h"

#define WEBHOOK_BODY_MAX 8192

struct webhook {
	struct http_client *http;
	char url[1024];
	char secret[256];
	int64_t timeout_ms;
};

/* One send in progress. */
struct wh_op {
	coa_sink_cb cb;
	void *arg;
};

const char *coa_webhook_event_name(const struct transition *ev)
{
	if (strcmp(ev->to, "blocked") == 0)
		return "blocked";
	if (strcmp(ev->to, "unblocked") == 0)
		return "unblocked";
	if (strcmp(ev->to, "registered") == 0 || strcmp(ev->to, "unregistered") == 0 ||
	    strcmp(ev->from, "unregistered") == 0)
		return "registration_changed";
	return "compliance_changed";
}

static json_t *str_or_null(const char *s)
{
	return s[0] ? jout_str(s) : json_null();
}

enum mdm_err coa_webhook_body(const struct transition *ev, struct buf *out)
{
	json_t *o = json_object();
	char at[CLOCK_ISO_SIZE];
	char *text = NULL;
	bool bad = false;
	enum mdm_err e = MDM_ERR_NOMEM;

	if (clock_iso(ev->at_ms, at) != MDM_OK)
		at[0] = '\0';
	jout_set(o, "event", json_string(coa_webhook_event_name(ev)), &bad);
	jout_set(o, "id", jout_str(ev->id), &bad);
	jout_set(o, "epoch", json_integer((json_int_t)ev->epoch), &bad);
	jout_set(o, "mac", str_or_null(ev->mac), &bad);
	jout_set(o, "guid", str_or_null(ev->guid), &bad);
	jout_set(o, "from", jout_str(ev->from), &bad);
	jout_set(o, "to", jout_str(ev->to), &bad);
	jout_set(o, "reason", jout_str(ev->reason), &bad);
	jout_set(o, "at", str_or_null(at), &bad);
	if (!bad)
		text = json_dumps(o, JSON_COMPACT);
	if (text)
		e = buf_addstr(out, text);
	free(text);
	json_decref(o);
	return e;
}

enum mdm_err coa_webhook_sign(const char *secret, int64_t t, const char *body, size_t len,
			      char *out, size_t outsz)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1], ts[24];
	struct buf msg;
	bool ok;

	if (!secret || !*secret || outsz < 96)
		return MDM_ERR_INVALID;
	snprintf(ts, sizeof(ts), "%lld", (long long)t);
	/* what is signed: "<t>.<body>", so a captured body cannot be replayed with a new t */
	buf_init(&msg, len + sizeof(ts) + 2);
	ok = buf_addf(&msg, "%s.", ts) == MDM_OK && buf_add(&msg, body, len) == MDM_OK &&
	     HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg.mem,
		  msg.len, mac, &maclen) != NULL;
	buf_free(&msg);
	if (!ok)
		return MDM_ERR_INTERNAL;
	for (unsigned i = 0; i < maclen; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	snprintf(out, outsz, "t=%s,v1=%s", ts, hex);
	return MDM_OK;
}

/* A header value from an id that may carry anything a vendor's id can: only printable ASCII
 * goes through, the rest percent-encoded, so no id can add a header. */
static void header_safe(const char *s, char *out, size_t sz)
{
	size_t n = 0;

	for (; *s && n + 4 < sz; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch > 0x20 && ch < 0x7f && ch != '%')
			out[n++] = (char)ch;
		else
			n += (size_t)snprintf(out + n, sz - n, "%%%02X", ch);
	}
	out[n] = '\0';
}

static void on_answer(struct http_result *res, void *arg)
{
	struct wh_op *op = arg;
	struct coa_result r = {.outcome = COA_ERROR};

	if (res->fail != FAIL_NONE) {
		r.outcome = res->fail == FAIL_TIMEOUT ? COA_NO_ANSWER : COA_ERROR;
		snprintf(r.detail, sizeof(r.detail), "%s: %s", fail_kind_name(res->fail), res->why);
	} else if (res->status >= 200 && res->status < 300) {
		r.outcome = COA_OK;
		snprintf(r.detail, sizeof(r.detail), "HTTP %ld", res->status);
	} else {
		bool refused = res->status >= 400 && res->status < 500 && res->status != 408 &&
			       res->status != 429;

		r.outcome = refused ? COA_REFUSED : COA_ERROR;
		snprintf(r.detail, sizeof(r.detail), "HTTP %ld", res->status);
	}
	buf_free(&res->body);
	op->cb(op->arg, &r);
	free(op);
}

static enum mdm_err wh_send(void *sink, const struct transition *ev, const struct coa_session *s,
			    coa_sink_cb cb, void *arg)
{
	struct coa_sink *k = sink;
	struct webhook *w = k->priv;
	struct wh_op *op;
	struct buf body;
	char sig[160], sighdr[200], idhdr[600], id[480];
	const char *hdrs[] = {"Content-Type: application/json", sighdr, idhdr, NULL};
	struct http_request rq = {.method = HTTP_POST, .url = w->url, .headers = hdrs};
	enum mdm_err e;

	(void)s;
	buf_init(&body, WEBHOOK_BODY_MAX);
	e = coa_webhook_body(ev, &body);
	if (e == MDM_OK)
		e = coa_webhook_sign(w->secret, clock_wall_ms() / 1000, body.mem, body.len, sig,
				     sizeof(sig));
	op = e == MDM_OK ? calloc(1, sizeof(*op)) : NULL;
	if (e == MDM_OK && !op)
		e = MDM_ERR_NOMEM;
	if (e != MDM_OK)
		goto out;
	snprintf(sighdr, sizeof(sighdr), "X-Mdmgw-Signature: %s", sig);
	header_safe(ev->id, id, sizeof(id));
	snprintf(idhdr, sizeof(idhdr), "X-Mdmgw-Event-Id: %s", id);
	op->cb = cb;
	op->arg = arg;
	rq.body = body.mem;
	rq.body_len = body.len;
	e = http_request(w->http, &rq, clock_mono_ms() + w->timeout_ms, on_answer, op);
	if (e != MDM_OK)
		free(op);
out:
	buf_free(&body);
	return e;
}

static void wh_destroy(void *sink)
{
	struct coa_sink *k = sink;
	struct webhook *w;

	if (!k)
		return;
	w = k->priv;
	if (w) {
		http_client_destroy(w->http); /* completes what is still out */
		explicit_bzero(w->secret, sizeof(w->secret));
		free(w);
	}
	free(k);
}

static const struct coa_sink_ops webhook_ops = {"webhook", false, wh_send, wh_destroy};

enum mdm_err coa_webhook_create(struct http_engine *e, const struct coa_webhook_config *cfg,
				struct coa_sink **out, char *why, size_t whysz)
{
	struct http_client_config hc = {.name = cfg->name ? cfg->name : "webhook",
					.ca_file = cfg->ca_file,
					.auth = HTTP_AUTH_NONE,
					.max_connections = 4,
					.max_body = 65536};
	struct coa_sink *k = calloc(1, sizeof(*k));
	struct webhook *w = calloc(1, sizeof(*w));

	*out = NULL;
	if (!k || !w) {
		free(k);
		free(w);
		return MDM_ERR_NOMEM;
	}
	k->ops = &webhook_ops;
	k->priv = w;
	str_copy(k->name, sizeof(k->name), hc.name);
	w->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : COA_HTTP_TIMEOUT_MS_DEFAULT;
	if (!cfg->url || strncmp(cfg->url, "https://", 8) != 0 ||
	    str_copy(w->url, sizeof(w->url), cfg->url) != MDM_OK) {
		err_why(why, whysz, "url must be an https:// URL of at most %zu bytes",
			sizeof(w->url) - 1);
		wh_destroy(k);
		return MDM_ERR_CONFIG;
	}
	if (!cfg->secret || strlen(cfg->secret) < COA_WEBHOOK_SECRET_MIN ||
	    str_copy(w->secret, sizeof(w->secret), cfg->secret) != MDM_OK) {
		err_why(why, whysz, "secret must be %d to 255 bytes", COA_WEBHOOK_SECRET_MIN);
		wh_destroy(k);
		return MDM_ERR_CONFIG;
	}
	w->http = http_client_create(e, &hc, why, whysz);
	if (!w->http) {
		wh_destroy(k);
		return MDM_ERR_CONFIG;
	}
	*out = k;
	return MDM_OK;
}
