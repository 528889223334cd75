/*
 * transition: a confirmed change of a device's state, as the reconciler's transitions engine
 * (gateway/recon/trans.h) or an admin block reports it, and the sink it is handed to. The
 * engine knows only this sink; the CoA dispatcher (gateway/coa/coa.h) is one such sink, wired
 * by the application. Shared vocabulary: no behaviour here but the call through the sink.
 */
#ifndef MDM_TRANSITION_H
#define MDM_TRANSITION_H

#include <stddef.h>
#include <stdint.h>

/* What the network is asked to do with the device's session(s). */
enum transition_kind { TRANSITION_REAUTH = 0, TRANSITION_DISCONNECT };

/* One confirmed transition. */
struct transition {
	char id[160];	  /* transition id "<device key>@<generation>": unique, stable across HA */
	char mac[13];	  /* the device's MAC, 12 upper-case hex; "" when it has none */
	char guid[129];	  /* the device's MDM GUID; "" when unknown */
	char from[32];	  /* "compliant", "noncompliant", "registered", "unregistered", ... */
	char to[32];	  /* the new state in the same vocabulary; "blocked", "unblocked" too */
	char reason[160]; /* why, for logs and the webhook ("compliance changed in intune") */
	enum transition_kind kind; /* reauthenticate by default; disconnect where configured */
	int64_t at_ms;		   /* clock_wall_ms when the transition was seen */
	uint64_t epoch; /* the reconciler's lease epoch (0 without HA); in every log line */
};

/*
 * Where transitions go. emit is called on the emitter's thread, possibly with the emitter's
 * lock held: it must return quickly and must not call back into the emitter (queue the
 * transition). emit NULL: transitions go nowhere.
 */
struct transition_sink {
	void (*emit)(void *arg, const struct transition *t);
	void *arg;
};

/* transition_emit: hands t to the sink (nothing when it has no emit). */
static inline void transition_emit(const struct transition_sink *s, const struct transition *t)
{
	if (s && s->emit)
		s->emit(s->arg, t);
}

#endif
