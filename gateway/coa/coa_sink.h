/*
 * coa_sink: the small interface between the CoA dispatcher (coa.c) and the ways a Change of
 * Authorization is delivered: RFC 5176 to the NAS (coa_radius.c), ISE's MnT REST API
 * (coa_mnt.c) and a signed webhook (coa_webhook.c). The dispatcher owns queueing, rate,
 * retries and the one-in-flight-per-session rule; a sink makes one attempt per send().
 */
#ifndef MDM_COA_SINK_H
#define MDM_COA_SINK_H

#include <stdbool.h>
#include <stdint.h>

#include "../../core/err.h"
#include "../../core/transition.h"

/* The events a sink delivers are transitions (core/transition.h): id, MAC, GUID, from, to,
 * reason, kind (reauthenticate or disconnect), at_ms, epoch. */

/* One active network session of a MAC, as accounting or the admin API reported it. */
struct coa_session {
	char mac[13];		  /* 12 upper-case hex */
	char nas_ip[46];	  /* NAS-IP-Address (or the packet's source) as text; "" unknown */
	char nas_id[64];	  /* NAS-Identifier; "" unknown */
	char acct_session_id[64]; /* Acct-Session-Id; "" unknown */
	char user_name[129];	  /* User-Name; "" unknown */
	uint32_t nas_port;	  /* NAS-Port when has_nas_port */
	bool has_nas_port;
	int64_t updated_ms; /* clock_wall_ms of the last Start/Interim/PUT */
};

enum coa_outcome {
	COA_OK = 0,	/* ACK (RFC 5176), results=true (MnT), 2xx (webhook) */
	COA_REFUSED,	/* NAK / results=false / 4xx: the peer said no; not retried */
	COA_NO_ANSWER,	/* no reply after the sink's own retransmissions: retryable */
	COA_ERROR,	/* could not be sent (config, socket, TLS...): retryable */
	COA_NO_SESSION, /* the peer knows no session for the device (MnT 404, Error-Cause 503) */
};

struct coa_result {
	enum coa_outcome outcome;
	char
	    detail[256]; /* "CoA-NAK Error-Cause=503 (Session-Context-Not-Found)", "HTTP 500" ... */
};

/* Called exactly once per accepted send(), on any thread. */
typedef void (*coa_sink_cb)(void *arg, const struct coa_result *res);

struct coa_sink_ops {
	const char *type; /* "radius", "mnt", "webhook" */
	/* needs_session: send() is called once per known session of the MAC (radius), or once
	 * per event with s == NULL (mnt, webhook: they find the session themselves). */
	bool needs_session;
	/* send: one delivery attempt (a sink may retransmit within it). Returns at once;
	 * MDM_OK means cb will be called. */
	enum mdm_err (*send)(void *sink, const struct transition *ev, const struct coa_session *s,
			     coa_sink_cb cb, void *arg);
	/* destroy: waits for sends still out (their callbacks are called) and frees. */
	void (*destroy)(void *sink);
};

struct coa_sink {
	const struct coa_sink_ops *ops;
	char name[64]; /* "radius", "mnt", "webhook" or the configured name */
	void *priv;
};

/* coa_outcome_name: "ok", "refused", "no_answer", "error", "no_session". */
static inline const char *coa_outcome_name(enum coa_outcome o)
{
	static const char *const names[] = {"ok", "refused", "no_answer", "error", "no_session"};
	return (unsigned)o < sizeof names / sizeof names[0] ? names[o] : "?";
}

#endif
