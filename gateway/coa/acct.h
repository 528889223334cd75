/*
 * acct: the RADIUS accounting listener (RFC 2866) that tells the gateway which network
 * sessions each MAC has, so a CoA can name them. A RADIUS server or the switches copy their
 * accounting to it. One UDP socket and one thread:
 *   - a datagram from an address that is no configured client is dropped (and counted);
 *   - an Accounting-Request (code 4) must carry a Request Authenticator made with that
 *     client's secret, and a valid Message-Authenticator when it has one, else it is dropped;
 *   - Start and Interim-Update put the session (an Interim refreshes it), Stop removes it,
 *     Accounting-On/Off drop every session of that NAS;
 *   - every valid request is answered with an Accounting-Response, a retransmission too (the
 *     update is idempotent), also when the table is full or the MAC unusable: the NAS must
 *     stop retransmitting either way.
 * The thread also expires stale sessions from time to time.
 */
#ifndef MDM_ACCT_H
#define MDM_ACCT_H

#include <stdatomic.h>
#include <stddef.h>

#include "../../core/buf.h"
#include "../../core/prom.h"
#include "../../core/err.h"
#include "sessions.h"

/* --- accounting: the RADIUS accounting listener that feeds the session table --- */
#define CONFIG_MAX_ACCT_CLIENTS 64
#define CONFIG_RADIUS_SECRET_MAX 128

struct config_acct_client {
	char address[64];			   /* source IP or CIDR, as written; required */
	char secret[CONFIG_RADIUS_SECRET_MAX + 1]; /* RADIUS shared secret; required */
	bool secret_set;
	/* filled by the loader from address */
	int family;	       /* AF_INET or AF_INET6 */
	unsigned char net[16]; /* the network, host bits cleared */
	unsigned prefix;       /* 0..32 / 0..128 */
};

struct config_accounting {
	char listen[64];      /* "addr:port" ("[v6]:port"); "" (default, section absent): off */
	char listen_addr[46]; /* filled by the loader from listen */
	unsigned listen_port;
	struct config_acct_client clients[CONFIG_MAX_ACCT_CLIENTS];
	size_t nclients;	/* at least 1 when listen is set */
	int64_t session_ttl_ms; /* a session not refreshed this long is dropped; 1m..7d,
				 * default SESSIONS_DEFAULT_TTL_MS */
	size_t max_sessions;	/* 1..10000000; default SESSIONS_DEFAULT_MAX */
};

#define ACCT_PACKET_MAX 4096 /* RFC 2865's largest packet; a longer datagram is malformed */

/* What the listener saw, for /metrics. */
struct acct_stats {
	atomic_ulong requests;	     /* valid Accounting-Requests (retransmissions included) */
	atomic_ulong responses;	     /* Accounting-Responses sent */
	atomic_ulong unknown_client; /* datagrams from an address that is not a client */
	atomic_ulong bad_auth;	     /* bad Request Authenticator or Message-Authenticator */
	atomic_ulong malformed;	     /* not a well-formed Accounting-Request */
	atomic_ulong starts, interims, stops, nas_resets; /* by Acct-Status-Type */
	atomic_ulong no_mac; /* Start/Interim/Stop without a usable Calling-Station-Id */
};

struct acct;

/*
 * acct_start: binds cfg->listen_addr:cfg->listen_port (port 0: any free port, for tests)
 * and starts the listener thread feeding t, which must outlive it. The clients and secrets
 * are copied. On failure why says what (bind error...) and *out is NULL.
 */
enum mdm_err acct_start(const struct config_accounting *cfg, struct sessions *t, struct acct **out,
			char *why, size_t whysz);

/* acct_port: the UDP port the listener is bound to. */
unsigned acct_port(const struct acct *a);

/* acct_stats: the live counters (valid until acct_stop). */
const struct acct_stats *acct_stats(const struct acct *a);

/* acct_metrics: appends the listener's Prometheus lines to b. */
void acct_metrics(const struct acct *a, struct prom *b);

/* acct_stop: stops the thread (within a poll interval), closes the socket, frees. NULL ok. */
void acct_stop(struct acct *a);

#endif
