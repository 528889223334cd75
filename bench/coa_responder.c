/*
 * coa_responder: a tiny RFC 5176 NAS for `make bench-reconcile`. It answers every valid
 * CoA-Request (43) and Disconnect-Request (40) with an ACK (44, 41) and records when each packet
 * arrived, so the benchmark can time "last listing page -> CoA packet at the NAS".
 *
 *   coa_responder --secret S [--port P] [--address A] [--out FILE] [--no-reply-ma] [--nak]
 *
 * --port 0 (the default) picks a free UDP port; "READY <port>" is printed on stdout once bound.
 * A request is checked as a NAS does: its Request Authenticator (MD5 over the packet with a zero
 * authenticator, then the secret) and, when it carries one, its Message-Authenticator
 * (HMAC-MD5 over the packet with the authenticator and the attribute's value zeroed). A request
 * failing either is dropped, unanswered, as RFC 5176 asks. A request without
 * Message-Authenticator is answered (the gateway's per-NAS setting decides whether it sends one;
 * the record says which it was).
 *
 * The reply carries a Message-Authenticator (unless --no-reply-ma): HMAC-MD5 over the reply with
 * the request's authenticator in the authenticator field and the attribute zeroed; then the
 * Response Authenticator, MD5(code, id, length, request authenticator, attributes, secret), over
 * the finished reply. --nak answers NAKs (42, 45) with Error-Cause 506 (Session Context Not Found)
 * instead, to exercise a gateway's failure path.
 *
 * Every packet received is recorded with its CLOCK_REALTIME ms, taken as recvfrom returns, in
 * --out (default stdout), one line each, written once the reply is sent (so the record never
 * delays the reply) and flushed (so a benchmark can read it while the responder runs):
 *
 *   <ms> <code> <id> <calling-station-id or -> <verdict>
 *
 * where verdict is "ack", "nak", "no-ma-ack" (answered, the request had no Message-Authenticator),
 * "bad-auth", "bad-ma" or "bad-packet" (dropped). On SIGTERM or SIGINT a last line
 * "end <packets> <answered> <dropped>" is written. Exit 0 after a signal, 1 on usage or I/O
 * errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PKT_MAX 4096
#define HDR_LEN 20
#define AUTH_OFF 4
#define AUTH_LEN 16
#define MA_TYPE 80
#define MA_LEN 18
#define CSI_TYPE 31
#define ERROR_CAUSE_TYPE 101
#define CSI_MAX 64

enum verdict { V_ACK, V_NAK, V_NO_MA_ACK, V_BAD_AUTH, V_BAD_MA, V_BAD_PACKET };

static const char *const verdict_names[] = {"ack",	"nak",	  "no-ma-ack",
					    "bad-auth", "bad-ma", "bad-packet"};

struct rec {
	int64_t ms;
	uint8_t code, id;
	uint8_t verdict;
	char csi[CSI_MAX];
};

struct opts {
	const char *secret, *address, *out;
	unsigned port;
	bool reply_ma, nak;
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* MD5 over a then b (either may be empty) into out[16]. */
static bool md5_two(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, uint8_t *out)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned n = 0;
	bool ok;

	if (!c)
		return false;
	ok = EVP_DigestInit_ex(c, EVP_md5(), NULL) == 1 && EVP_DigestUpdate(c, a, alen) == 1 &&
	     EVP_DigestUpdate(c, b, blen) == 1 && EVP_DigestFinal_ex(c, out, &n) == 1 && n == 16;
	EVP_MD_CTX_free(c);
	return ok;
}

static bool hmac_md5(const char *key, const uint8_t *data, size_t len, uint8_t *out)
{
	unsigned n = 0;

	return HMAC(EVP_md5(), key, (int)strlen(key), data, len, out, &n) != NULL && n == 16;
}

/*
 * Walks the attributes of pkt (len bytes, already length-checked): the offset of the
 * Message-Authenticator attribute or 0, the Calling-Station-Id copied into csi. false when an
 * attribute overruns the packet or a Message-Authenticator has the wrong length.
 */
static bool scan_attrs(const uint8_t *pkt, size_t len, size_t *ma_off, char *csi, size_t csisz)
{
	size_t off = HDR_LEN;

	*ma_off = 0;
	snprintf(csi, csisz, "-");
	while (off < len) {
		uint8_t type, alen;

		if (len - off < 2)
			return false;
		type = pkt[off];
		alen = pkt[off + 1];
		if (alen < 2 || alen > len - off)
			return false;
		if (type == MA_TYPE) {
			if (alen != MA_LEN)
				return false;
			*ma_off = off;
		} else if (type == CSI_TYPE && alen > 2) {
			size_t n = (size_t)alen - 2 < csisz - 1 ? (size_t)alen - 2 : csisz - 1;

			for (size_t i = 0; i < n; i++) {
				uint8_t ch = pkt[off + 2 + i];

				csi[i] = ch > 32 && ch < 127 ? (char)ch : '?';
			}
			csi[n] = '\0';
		}
		off += alen;
	}
	return true;
}

/* The request's verdict: its authenticators checked with secret. */
static enum verdict check_request(const uint8_t *pkt, size_t len, const char *secret, char *csi,
				  size_t csisz)
{
	uint8_t copy[PKT_MAX], want[16], got[16];
	size_t ma_off;

	snprintf(csi, csisz, "-"); /* also for a packet too broken to scan */
	if (len < HDR_LEN || ((size_t)pkt[2] << 8 | pkt[3]) != len ||
	    !scan_attrs(pkt, len, &ma_off, csi, csisz))
		return V_BAD_PACKET;
	memcpy(copy, pkt, len);
	memset(copy + AUTH_OFF, 0, AUTH_LEN);
	if (!md5_two(copy, len, (const uint8_t *)secret, strlen(secret), want) ||
	    memcmp(want, pkt + AUTH_OFF, AUTH_LEN) != 0)
		return V_BAD_AUTH;
	if (!ma_off)
		return V_NO_MA_ACK;
	memcpy(got, pkt + ma_off + 2, 16);
	memset(copy + ma_off + 2, 0, 16);
	if (!hmac_md5(secret, copy, len, want) || memcmp(want, got, 16) != 0)
		return V_BAD_MA;
	return V_ACK;
}

/*
 * The reply to the request req into out: ACK (code + 1) or, with nak, NAK (code + 2) with
 * Error-Cause 506; Message-Authenticator when reply_ma. Its length, or 0 on a crypto failure.
 */
static size_t build_reply(const uint8_t *req, bool nak, bool reply_ma, const char *secret,
			  uint8_t *out)
{
	size_t len = HDR_LEN, ma_off = 0;
	uint8_t mac[16];

	out[0] = (uint8_t)(req[0] + (nak ? 2 : 1));
	out[1] = req[1];
	memcpy(out + AUTH_OFF, req + AUTH_OFF, AUTH_LEN); /* the request's, for both digests */
	if (nak) {
		static const uint8_t cause[] = {ERROR_CAUSE_TYPE, 6, 0, 0, 0x01, 0xfa}; /* 506 */

		memcpy(out + len, cause, sizeof(cause));
		len += sizeof(cause);
	}
	if (reply_ma) {
		ma_off = len;
		out[len] = MA_TYPE;
		out[len + 1] = MA_LEN;
		memset(out + len + 2, 0, 16);
		len += MA_LEN;
	}
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
	if (reply_ma) {
		if (!hmac_md5(secret, out, len, mac))
			return 0;
		memcpy(out + ma_off + 2, mac, 16);
	}
	if (!md5_two(out, len, (const uint8_t *)secret, strlen(secret), mac))
		return 0;
	memcpy(out + AUTH_OFF, mac, AUTH_LEN);
	return len;
}

static int usage(void)
{
	fprintf(stderr, "usage: coa_responder --secret S [--port P] [--address A] [--out FILE] "
			"[--no-reply-ma] [--nak]\n");
	return 1;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->address = "127.0.0.1";
	o->reply_ma = true;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool more = i + 1 < argc;

		if (!strcmp(a, "--secret") && more)
			o->secret = argv[++i];
		else if (!strcmp(a, "--address") && more)
			o->address = argv[++i];
		else if (!strcmp(a, "--out") && more)
			o->out = argv[++i];
		else if (!strcmp(a, "--port") && more) {
			char *end;
			unsigned long p = strtoul(argv[++i], &end, 10);

			if (*end || p > 65535)
				return usage();
			o->port = (unsigned)p;
		} else if (!strcmp(a, "--no-reply-ma"))
			o->reply_ma = false;
		else if (!strcmp(a, "--nak"))
			o->nak = true;
		else
			return usage();
	}
	if (!o->secret || !o->secret[0])
		return usage();
	return 0;
}

static int open_socket(const struct opts *o)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)o->port);
	if (inet_pton(AF_INET, o->address, &sa.sin_addr) != 1 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
		close(fd);
		return -1;
	}
	printf("READY %u\n", (unsigned)ntohs(sa.sin_port));
	fflush(stdout);
	return fd;
}

static void write_record(FILE *f, const struct rec *r)
{
	fprintf(f, "%lld %u %u %s %s\n", (long long)r->ms, r->code, r->id, r->csi,
		verdict_names[r->verdict]);
	fflush(f);
}

int main(int argc, char **argv)
{
	struct opts o;
	struct sigaction sa;
	FILE *f = NULL;
	size_t nrec = 0, answered = 0;
	int fd = -1, rc = 1;

	if (parse_opts(argc, argv, &o))
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: recvfrom returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	f = o.out ? fopen(o.out, "w") : stdout;
	if (!f) {
		perror(o.out);
		return 1;
	}
	fd = open_socket(&o);
	if (fd < 0) {
		perror("coa_responder: socket");
		goto out;
	}
	while (!stop_flag) {
		uint8_t pkt[PKT_MAX], reply[PKT_MAX];
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&from, &fl);
		int64_t t = now_ms(); /* first: the arrival time is what the benchmark wants */
		struct rec r;
		size_t rlen = 0;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("recvfrom");
			goto out;
		}
		memset(&r, 0, sizeof(r));
		r.ms = t;
		r.code = n > 0 ? pkt[0] : 0;
		r.id = n > 1 ? pkt[1] : 0;
		r.verdict = (uint8_t)check_request(pkt, (size_t)n, o.secret, r.csi, sizeof(r.csi));
		if (r.verdict != V_BAD_PACKET && r.code != 40 && r.code != 43)
			r.verdict = V_BAD_PACKET;
		if (r.verdict == V_ACK || r.verdict == V_NO_MA_ACK) {
			if (o.nak)
				r.verdict = V_NAK;
			rlen = build_reply(pkt, o.nak, o.reply_ma, o.secret, reply);
		}
		if (rlen &&
		    sendto(fd, reply, rlen, 0, (struct sockaddr *)&from, fl) == (ssize_t)rlen)
			answered++;
		nrec++;
		write_record(f, &r);
	}
	fprintf(f, "end %zu %zu %zu\n", nrec, answered, nrec - answered);
	rc = fflush(f) == 0 && !ferror(f) ? 0 : 1;
out:
	if (fd >= 0)
		close(fd);
	if (f && f != stdout && fclose(f) != 0)
		rc = 1;
	return rc;
}
